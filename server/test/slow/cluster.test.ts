// Several real berth-server processes on one PostgreSQL: placement, routing, fan-out, takeover.
// Runs in the store matrix's PostgreSQL pass (BERTH_TEST_PG_URL); skipped on SQLite alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import type { StreamEvent } from '@berth/protocol';
import { answerOf, ApiClient, isReady, makeRepo, sandboxPids, sleep, spawnCli, tempDir, testDatabase, TEST_PG_URL, turnComplete, wsStatus, type StreamRecorder } from '../helpers';

const TOKEN = 'tok_cluster_test_0123456789';
const LEASE_S = 2;
// Answers with the number of earlier user turns it was given and the last of them: proves the transcript.
// A message starting with "hold" says so and then works for a minute (until interrupted); "write X"
// writes X.txt into the work tree; "files" lists the .txt files there.
const TRANSCRIPT_AGENT = `node -e '
const fs = require("fs");
const t = JSON.parse(fs.readFileSync(process.env.BERTH_TRANSCRIPT_FILE, "utf8"));
const users = t.filter((e) => e.role === "user").map((e) => e.text);
let input = ""; process.stdin.on("data", (d) => input += d).on("end", () => {
  if (input.startsWith("hold")) { process.stdout.write("holding\\n"); setTimeout(() => {}, 60000); return; }
  if (input.startsWith("write ")) fs.writeFileSync(input.slice(6).trim() + ".txt", "written\\n");
  if (input.startsWith("files")) { process.stdout.write("files=" + fs.readdirSync(".").filter((f) => f.endsWith(".txt")).sort().join(",")); return; }
  process.stdout.write("earlier=" + users.length + " last=" + (users.at(-1) ?? "-") + " now=" + input); });'`;

interface Instance {
  name: string;
  child: ChildProcess;
  api: ApiClient;
}

async function startInstance(name: string, store: string, wrapper: string[] = []): Promise<Instance> {
  const args = ['--store', store, '--instance-id', name, '--job-lease', String(LEASE_S), '--allow-local-repos', '--agent-command', TRANSCRIPT_AGENT];
  const { child, url } = await spawnCli(tempDir(`berth-${name}-`), args, `alice:${TOKEN}`, {}, wrapper);
  return { name, child, api: new ApiClient(url, TOKEN) };
}

const running = (i: Instance) => i.child.exitCode === null && i.child.signalCode === null;

async function kill9(i: Instance): Promise<void> {
  if (!running(i)) return;
  const exited = new Promise((res) => i.child.once('exit', res));
  i.child.kill('SIGKILL');
  await exited;
}

/** Every persisted event once, ids 1…n in order: nothing lost, nothing repeated. */
function assertComplete(events: StreamEvent[], what: string): number[] {
  const ids = events.filter((e) => e.id > 0).map((e) => e.id);
  assert.deepEqual(ids, ids.map((_, i) => i + 1), `${what}: ids ${ids.join(',')}`);
  return ids;
}

const persistedJson = (r: StreamRecorder) => r.persisted().map((e) => JSON.stringify(e));

/** A TCP relay to the database that the test can cut (every connection dropped, the port closed) and restore. */
class CuttableRelay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    const server = createServer((down) => {
      const up = connect(this.targetPort, this.host);
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          (s === up ? down : up).destroy();
        });
      }
      down.pipe(up).pipe(down);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => server?.close(resolve));
  }
}

describe('several instances on one PostgreSQL', { skip: TEST_PG_URL ? false : 'needs BERTH_TEST_PG_URL (npm test starts a PostgreSQL)' }, () => {
  let store: string;
  let db: pg.Client;
  const instances: Instance[] = [];
  const placement = async (id: string) =>
    (await db.query<{ instance: string | null }>('SELECT instance FROM sessions WHERE id = $1', [id])).rows[0]?.instance ?? null;
  const byName = (name: string | null) => instances.find((i) => i.name === name);

  before(async () => {
    store = await testDatabase(`berth_cluster_${randomBytes(4).toString('hex')}`);
    for (const name of ['inst_a', 'inst_b', 'inst_c']) instances.push(await startInstance(name, store));
    db = new pg.Client({ connectionString: store });
    await db.connect();
  });
  after(async () => {
    await db?.end();
    await Promise.all(instances.map(kill9));
  });

  it('starts on A, streams from B, takes a message through C; every stream sees every event once, in order', async () => {
    const [a, b] = instances as [Instance, Instance, Instance];
    const { status, body } = await a.api.start({ repo: { url: makeRepo() }, prompt: 'my name is Ada', autoInitiate: true });
    assert.equal(status, 202);
    const id = body.sessionId as string;
    const onB = await b.api.stream(id);
    await onB.waitFor(isReady, 20_000, 'ready on B');
    await onB.waitFor(turnComplete, 20_000);
    assert.equal(answerOf(onB.events), 'earlier=0 last=- now=my name is Ada');

    // C: an instance that does not hold the sandbox, so the message must be routed to the one that does.
    const owner = await placement(id);
    const c = instances.find((i) => i.name !== owner && i !== b) ?? b;
    assert.notEqual(c.name, owner);
    const onC = await c.api.stream(id);
    const sent = await c.api.message(id, 'what is my name?');
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const turnId = sent.body.turnId as string;
    const done = (e: StreamEvent) => e.type === 'turn_complete' && e.data.turnId === turnId;
    const started = Date.now();
    await onB.waitFor(done, 15_000);
    await onC.waitFor(done, 15_000);
    assert.ok(Date.now() - started < 5_000, 'routed without waiting for a poll');
    assert.equal(answerOf(onB.events, turnId), 'earlier=1 last=my name is Ada now=what is my name?');
    const routed = await db.query("SELECT target FROM jobs WHERE session_id = $1 AND kind = 'message'", [id]);
    assert.deepEqual(routed.rows, [{ target: owner }], 'the message went to the sandbox\'s instance as a job');
    assert.equal(await placement(id), owner, 'the sandbox stayed where it was');

    const replay = await a.api.stream(id, 0);
    await replay.waitFor(done);
    const ids = assertComplete(onB.events, 'live on B');
    assert.deepEqual(assertComplete(onC.events, 'live on C'), ids);
    assert.deepEqual(assertComplete(replay.events, 'replay on A'), ids);
    assert.deepEqual(persistedJson(onB), persistedJson(replay), 'the same events, byte for byte');
    assert.deepEqual(persistedJson(onC), persistedJson(replay));
    assert.ok(onB.events.some((e) => e.type === 'preparing'), 'volatile progress reached another instance');
    await Promise.all([onB.close(), onC.close(), replay.close()]);
  });

  it('a stream ticket issued by A opens a stream on B, and only once in the whole cluster', async () => {
    const [a, b, c] = instances as [Instance, Instance, Instance];
    const { body } = await a.api.start({ repo: { url: makeRepo() }, prompt: 'tickets', autoInitiate: false });
    const id = body.sessionId as string;
    const ticket = await a.api.ticket(id);
    const url = (i: Instance, t: string) => `${i.api.baseUrl.replace(/^http/, 'ws')}/v1/sessions/${id}/stream?ticket=${encodeURIComponent(t)}`;
    assert.equal(await wsStatus(url(b, ticket)), 101, "A's ticket works on B");
    assert.equal(await wsStatus(url(c, ticket)), 401, 'replayed on C');
    assert.equal(await wsStatus(url(a, ticket)), 401, 'replayed on A, which issued it');
    // Redeemed on two instances at the same moment: one stream opens.
    const raced = await b.api.ticket(id);
    const statuses = await Promise.all([a, b, c].map((i) => wsStatus(url(i, raced))));
    assert.deepEqual(statuses.sort(), [101, 401, 401]);
    const spent = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM spent_tickets');
    assert.ok(spent.rows[0]!.n >= 2, 'spent nonces are recorded in the shared store');
  });

  it('synchronous starts on A are prepared by A, whose request waits for them (never by B or C)', async () => {
    const a = instances[0]!;
    // Each answer must come within the time a preparation takes, not hang on a job another instance took.
    const starts = Array.from({ length: 6 }, (_, i) =>
      fetch(`${a.api.baseUrl}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ repo: { url: makeRepo() }, prompt: `sync ${i}` }),
        signal: AbortSignal.timeout(30_000),
      }),
    );
    const replies = await Promise.all(starts);
    assert.deepEqual(replies.map((r) => r.status), replies.map(() => 201));
    for (const r of replies) {
      const { sessionId } = (await r.json()) as { sessionId: string };
      assert.equal(await placement(sessionId), a.name, 'the sandbox is on the instance that answered');
    }
  });

  it('interrupts a turn through an instance that does not hold the sandbox', async () => {
    const entry = instances[0]!;
    const { body } = await entry.api.start({ repo: { url: makeRepo() }, prompt: 'hello', autoInitiate: true });
    const id = body.sessionId as string;
    const first = await entry.api.stream(id);
    await first.waitFor(turnComplete, 20_000);
    await first.close();
    await entry.api.waitFor(id, (s) => s.status === 'ready', 10_000);
    const owner = await placement(id);
    const other = instances.find((i) => i.name !== owner)!;
    const watch = await other.api.stream(id);
    const sent = await other.api.message(id, 'hold on');
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const turnId = sent.body.turnId as string;
    await watch.waitFor((e) => e.type === 'assistant_output' && e.data.turnId === turnId, 15_000);
    const interrupted = await other.api.request('POST', `/v1/sessions/${id}/interrupt`);
    assert.equal(interrupted.status, 202, JSON.stringify(interrupted.body));
    const done = await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === turnId, 10_000);
    assert.equal(done.type === 'turn_complete' && done.data.status, 'interrupted');
    await other.api.waitFor(id, (s) => s.status === 'ready', 10_000);
    const again = await other.api.request('POST', `/v1/sessions/${id}/interrupt`);
    assert.equal(again.status, 409, 'nothing left to interrupt');
    await watch.close();
  });

  it('/healthz answers 503 with the standard error body while the database is unreachable, 200 again after', async () => {
    const target = new URL(store);
    const relay = new CuttableRelay(target.hostname, Number(target.port || 5432));
    await relay.open();
    const via = new URL(store);
    via.hostname = '127.0.0.1';
    via.port = String(relay.port);
    const cut = await startInstance('inst_cut', via.toString());
    const health = async () => {
      const r = await fetch(`${cut.api.baseUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    try {
      assert.deepEqual(await health(), { status: 200, body: { ok: true } });
      await relay.cut();
      const started = Date.now();
      const down = await health();
      assert.equal(down.status, 503);
      const error = down.body.error as { code: string; message: string };
      assert.equal(error.code, 'internal');
      assert.match(error.message, /database/);
      assert.ok(!JSON.stringify(down.body).includes(target.password || 'no password'), 'no secret in the answer');
      assert.ok(Date.now() - started < 5_000, 'answered within the check timeout');
      await relay.open(); // the same port again: the pool reconnects
      const deadline = Date.now() + 10_000;
      let up = await health();
      while (up.status !== 200 && Date.now() < deadline) {
        await sleep(200);
        up = await health();
      }
      assert.deepEqual(up, { status: 200, body: { ok: true } });
    } finally {
      await kill9(cut);
      await relay.cut();
    }
  });

  it('a session deleted through another instance leaves no sandbox running', async () => {
    const entry = instances.find(running)!;
    const { body } = await entry.api.start({ repo: { url: makeRepo() }, prompt: 'short-lived', autoInitiate: true });
    const id = body.sessionId as string;
    await entry.api.waitFor(id, (s) => s.status === 'ready', 20_000);
    assert.ok(sandboxPids(id).length > 0, 'the agent host runs');
    const owner = await placement(id);
    const other = instances.find((i) => running(i) && i.name !== owner)!;
    assert.equal((await other.api.request('DELETE', `/v1/sessions/${id}`)).status, 204);
    const deadline = Date.now() + LEASE_S * 1000 + 3000;
    while (sandboxPids(id).length > 0 && Date.now() < deadline) await sleep(100);
    // On one host the deleting instance reaches the sandbox itself; on separate hosts the owner's sweep does.
    assert.deepEqual(sandboxPids(id), [], 'the sandbox of the deleted session was stopped');
  });

  it("a session deleted where its sandbox cannot be reached (another host): the owner's sweep stops it", async () => {
    const entry = instances.find(running)!;
    const { body } = await entry.api.start({ repo: { url: makeRepo() }, prompt: 'far away', autoInitiate: true });
    const id = body.sessionId as string;
    await entry.api.waitFor(id, (s) => s.status === 'ready', 20_000);
    assert.ok(sandboxPids(id).length > 0, 'the agent host runs');
    // What an instance on another host does to a sandbox it cannot reach: the row goes, the sandbox stays.
    await db.query('DELETE FROM sessions WHERE id = $1', [id]);
    const deadline = Date.now() + LEASE_S * 1000 + 3000;
    while (sandboxPids(id).length > 0 && Date.now() < deadline) await sleep(100);
    assert.deepEqual(sandboxPids(id), [], 'the owning instance stopped the sandbox of the deleted session');
  });

  it('kill -9 of the instance preparing a session: another one finishes it within the lease time', async () => {
    const entry = instances.find(running)!;
    const { body } = await entry.api.start({ repo: { url: makeRepo() }, prompt: 'survive', autoInitiate: true, setup: ['sleep 2'] });
    const id = body.sessionId as string;
    await entry.api.waitFor(id, (s) => s.step === 'setup', 20_000);
    const owner = byName(await placement(id));
    assert.ok(owner, 'the session is placed on an instance');
    await kill9(owner);
    const killedAt = Date.now();
    const survivor = instances.find(running)!;
    const watch = await survivor.api.stream(id);
    const settled = await survivor.api.waitFor(id, (s) => s.status === 'ready' || s.status === 'failed', 30_000);
    assert.equal(settled.status, 'ready', JSON.stringify(settled.lastError));
    // Lease expiry, the next poll, and the preparation again (clone, setup of 2 s, agent).
    assert.ok(Date.now() - killedAt < LEASE_S * 1000 + 12_000, `took over after ${Date.now() - killedAt} ms`);
    assert.notEqual(await placement(id), owner.name);
    await watch.waitFor(turnComplete, 15_000);
    const replay = await survivor.api.stream(id, 0);
    await replay.waitFor(turnComplete);
    assertComplete(watch.events, 'live');
    assertComplete(replay.events, 'replay');
    assert.equal(replay.persisted().filter((e) => e.type === 'user_message').length, 1, 'the prompt was not repeated');
    await Promise.all([watch.close(), replay.close()]);
  });

  it('kill -9 of the instance holding a ready session: the next message resumes it elsewhere with its transcript', async () => {
    const alive = () => instances.filter(running);
    if (alive().length < 2) instances.push(await startInstance('inst_d', store));
    const entry = alive()[0]!;
    const { body } = await entry.api.start({ repo: { url: makeRepo() }, prompt: 'my name is Grace', autoInitiate: true });
    const id = body.sessionId as string;
    await entry.api.waitFor(id, (s) => s.status === 'ready', 20_000);
    const owner = byName(await placement(id))!;
    const other = alive().find((i) => i !== owner)!;
    const watch = await other.api.stream(id);
    await watch.waitFor(turnComplete);
    await kill9(owner);

    const sent = await other.api.message(id, 'who am I?');
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const turnId = sent.body.turnId as string;
    const done = (e: StreamEvent) => e.type === 'turn_complete' && e.data.turnId === turnId;
    await watch.waitFor(done, LEASE_S * 1000 + 20_000);
    assert.equal(answerOf(watch.events, turnId), 'earlier=1 last=my name is Grace now=who am I?');
    assert.notEqual(await placement(id), owner.name);
    const replay = await other.api.stream(id, 0);
    await replay.waitFor(done);
    assertComplete(watch.events, 'live across the kill');
    assert.deepEqual(persistedJson(watch), persistedJson(replay), 'no event lost or repeated across the takeover');
    assert.equal(replay.persisted().filter((e) => e.type === 'user_message').length, 2);
    await Promise.all([watch.close(), replay.close()]);
  });

  it('an instance whose clock is 5 minutes ahead and one 5 minutes behind: nobody adopts a healthy session, tickets and messages cross them', async () => {
    const ahead = await startInstance('inst_ahead', store, ['faketime', '-f', '+5m']);
    const behind = await startInstance('inst_behind', store, ['faketime', '-f', '-5m']);
    instances.push(ahead, behind);
    const normal = instances.find((i) => running(i) && i !== ahead && i !== behind)!;
    const sessions: { id: string; host: Instance }[] = [];
    for (const host of [normal, ahead, behind]) {
      // A synchronous start is prepared by the instance that took it: each holds one session.
      const { body, status } = await host.api.start({ repo: { url: makeRepo() }, prompt: `on ${host.name}` });
      assert.equal(status, 201, JSON.stringify(body));
      assert.equal(await placement(body.sessionId), host.name);
      sessions.push({ id: body.sessionId, host });
    }
    const jobsBefore = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM jobs')).rows[0]!.n);
    // Three leases: a janitor judging others' heartbeats by its own clock would have adopted by now.
    await sleep(LEASE_S * 3000 + 500);
    for (const { id, host } of sessions) {
      assert.equal(await placement(id), host.name, `${id} stays on ${host.name}`);
      const view = (await normal.api.get(id)).body;
      assert.equal(view.status, 'ready', `${id} on ${host.name}: ${view.status}`);
      const events = await host.api.stream(id);
      await events.waitFor((e) => e.type === 'connected');
      assert.ok(!events.persisted().some((e) => e.type === 'error'), `no takeover error on ${id}`);
      await events.close();
    }
    assert.equal(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM jobs')).rows[0]!.n), jobsBefore, 'no preparation ran twice');
    // A ticket issued by the instance ahead opens a stream on the one behind, and a message there runs.
    const ticket = (await ahead.api.request('POST', `/v1/sessions/${sessions[0]!.id}/stream-ticket`)).body.ticket as string;
    const wsUrl = `${behind.api.baseUrl.replace(/^http/, 'ws')}/v1/sessions/${sessions[0]!.id}/stream?ticket=${encodeURIComponent(ticket)}`;
    assert.equal(await wsStatus(wsUrl), 101);
    const sent = await behind.api.message(sessions[0]!.id, 'across the skew');
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const watch = await normal.api.stream(sessions[0]!.id);
    await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === sent.body.turnId, 20_000);
    await watch.close();
    for (const i of [ahead, behind]) await kill9(i);
  });

  it('an instance that stalls longer than a lease (SIGSTOP) and comes back: what was adopted is stopped there, no turn ends twice, one agent host after', async () => {
    const stalled = await startInstance('inst_stall', store);
    instances.push(stalled);
    const other = instances.find((i) => running(i) && i !== stalled)!;
    const { body, status } = await stalled.api.start({ repo: { url: makeRepo() }, prompt: 'first' });
    assert.equal(status, 201, JSON.stringify(body));
    const id = body.sessionId as string;
    assert.equal(await placement(id), stalled.name);
    const watch = await other.api.stream(id);
    const hold = await stalled.api.message(id, 'hold on');
    assert.equal(hold.status, 202);
    await watch.waitFor((e) => e.type === 'assistant_output' && e.data.turnId === hold.body.turnId, 20_000);
    const agentPids = sandboxPids(id);
    assert.ok(agentPids.length > 0);

    stalled.child.kill('SIGSTOP');
    await other.api.waitFor(id, (s) => s.status === 'sleeping', LEASE_S * 1000 * 4 + 10_000);
    await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === hold.body.turnId, 10_000);
    stalled.child.kill('SIGCONT');
    await sleep(LEASE_S * 1000 + 1500); // its next heartbeat finds it was taken for dead
    const alive = agentPids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, [], 'its sandbox processes are stopped');
    const ends = watch.persisted().filter((e) => e.type === 'turn_complete' && e.data.turnId === hold.body.turnId);
    assert.equal(ends.length, 1, 'the held turn ended once (by the adopter), not again when the stalled instance woke');
    assert.equal((await other.api.get(id)).body.status, 'sleeping', 'the stalled instance did not take the session back');
    const next = await other.api.message(id, 'files');
    assert.equal(next.status, 202, JSON.stringify(next.body));
    await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === next.body.turnId, 30_000);
    const hosts = sandboxPids(id).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent-host');
      } catch {
        return false;
      }
    });
    assert.equal(hosts.length, 1, `one agent host for the session (${hosts.join(', ')})`);
    await watch.close();
  });

  it('20 concurrent messages to a sleeping session through two instances: one preparation, each accepted message answered once, nothing of the refused', async () => {
    while (instances.filter(running).length < 2) instances.push(await startInstance(`inst_${randomBytes(2).toString('hex')}`, store));
    const [a, b] = instances.filter(running) as [Instance, Instance];
    const { body } = await a.api.start({ repo: { url: makeRepo() }, prompt: 'first', autoInitiate: true });
    const id = body.sessionId as string;
    await a.api.waitFor(id, (s) => s.status === 'ready', 20_000);
    assert.equal((await a.api.request('POST', `/v1/sessions/${id}/stop`)).status, 200);
    await a.api.waitFor(id, (s) => s.status === 'sleeping', 20_000);
    const jobsBefore = (await db.query<{ n: string }>('SELECT count(*) AS n FROM jobs WHERE session_id = $1', [id])).rows[0]!.n;
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).api.message(id, `message ${i}`)));
    const accepted = answers.filter((r) => r.status === 202).map((r) => r.body.turnId as string);
    assert.ok(accepted.length >= 1);
    for (const r of answers.filter((x) => x.status !== 202)) assert.equal(r.status, 409);
    const watch = await b.api.stream(id);
    for (const turnId of accepted) await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === turnId, 30_000);
    const jobs = (await db.query<{ n: string }>('SELECT count(*) AS n FROM jobs WHERE session_id = $1', [id])).rows[0]!.n;
    const queued = answers.filter((r) => r.body?.status === 'queued').length;
    assert.ok(queued >= 1, 'messages sent while the session resumes wait in its queue');
    assert.equal(Number(jobs) - Number(jobsBefore), accepted.length - queued, 'one job per message not queued: one preparation, any others routed');
    assert.equal((await db.query("SELECT 1 FROM jobs WHERE session_id = $1 AND kind = 'resume' AND id > (SELECT max(id) - $2 FROM jobs WHERE session_id = $1)", [id, accepted.length])).rowCount, 1, 'one resume');
    const users = watch.persisted().filter((e) => e.type === 'user_message').map((e) => (e.type === 'user_message' ? e.data.turnId : ''));
    for (const turnId of accepted) assert.equal(users.filter((u) => u === turnId).length, 1, `${turnId} recorded once`);
    assert.equal(users.filter((u) => !accepted.includes(u)).length, 1, 'besides them, only the first prompt');
    for (const turnId of accepted) assert.equal(watch.persisted().filter((e) => e.type === 'turn_complete' && e.data.turnId === turnId).length, 1);
    await watch.close();
  });

  it('kill -9 of the instance holding the work: another instance serves the checkpoints, and a resume there restores the work tree', async () => {
    const alive = () => instances.filter(running);
    while (alive().length < 2) instances.push(await startInstance(`inst_${randomBytes(2).toString('hex')}`, store));
    const entry = alive()[0]!;
    const { body } = await entry.api.start({ repo: { url: makeRepo() }, prompt: 'write alpha', autoInitiate: true });
    const id = body.sessionId as string;
    const owner = byName(await placement(id)) ?? entry;
    const other = alive().find((i) => i !== owner)!;
    const watch = await other.api.stream(id);
    await watch.waitFor((e) => e.type === 'changes', 20_000, 'the first checkpoint');
    await watch.waitFor(turnComplete);
    await kill9(owner);

    // The checkpoint is served from the shared store (its bundle) and the repository: no sandbox, no owner.
    const changes = await other.api.request('GET', `/v1/sessions/${id}/changes`);
    assert.equal(changes.status, 200, JSON.stringify(changes.body));
    assert.deepEqual(changes.body.files.map((f: { path: string }) => f.path), ['alpha.txt']);
    const content = await other.api.request('GET', `/v1/sessions/${id}/content?ref=${changes.body.head}&path=alpha.txt`);
    assert.equal(content.body, 'written\n');
    const sent = await other.api.message(id, 'files');
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === sent.body.turnId, LEASE_S * 1000 + 30_000);
    assert.equal(answerOf(watch.events, sent.body.turnId), 'files=alpha.txt', 'the resumed work tree is the checkpoint');
    const next = await other.api.message(id, 'write beta');
    await watch.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === next.body.turnId, 30_000);
    const latest = await other.api.request('GET', `/v1/sessions/${id}/changes`);
    assert.deepEqual(latest.body.files.map((f: { path: string }) => f.path), ['alpha.txt', 'beta.txt']);
    assert.equal(latest.body.checkpoints.length, 2);
    await watch.close();
  });
});
