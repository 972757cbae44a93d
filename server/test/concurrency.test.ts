// One active job per session, held by the database; every status change a compare-and-set:
// real concurrency against a real server (SQLite, and PostgreSQL in the store matrix).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeRepo, queryTestDb, sandboxPids, sleep, startTestServer, tempDir, type TestServer } from './helpers';

describe('concurrent messages and retries', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ agentCommand: 'sleep 0.3; printf "answer to %s" "$(cat)"' });
  });
  after(async () => t?.close());

  it('20 concurrent messages to a sleeping session: one preparation, one agent host, each accepted message answered once, the refused leave nothing', async () => {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'first', autoInitiate: true });
    const id = body.sessionId as string;
    await alice.waitFor(id, (s) => s.status === 'ready', 20_000);
    assert.equal((await alice.request('POST', `/v1/sessions/${id}/stop`)).body.status, 'sleeping');
    const jobsBefore = (await queryTestDb<{ n: number }>(t.dataDir, 'SELECT count(*) AS n FROM jobs WHERE session_id = ?', [id]))[0]!.n;
    const eventsBefore = (await alice.get(id)).body.lastEventId;

    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => alice.message(id, `message ${i}`)));
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status !== 202);
    assert.ok(accepted.length >= 1, 'at least one message is taken');
    const queued = accepted.filter((a) => a.body.status === 'queued');
    assert.ok(queued.length >= 1, `messages sent while it resumes are queued, not refused (${JSON.stringify(answers.map((a) => a.body.status ?? a.status))})`);
    for (const r of refused) assert.equal(r.status, 409, JSON.stringify(r.body));
    // The first resumes the session; the others wait in its queue and run one after another.
    const idle = (s: { status: string; queue?: unknown[] }) => s.status === 'ready' && (s.queue ?? []).length === 0;
    await alice.waitFor(id, idle, 60_000);
    await sleep(500);
    await alice.waitFor(id, idle, 30_000);

    const jobs = (await queryTestDb<{ n: number }>(t.dataDir, 'SELECT count(*) AS n FROM jobs WHERE session_id = ?', [id]))[0]!.n;
    assert.equal(jobs - Number(jobsBefore), 1, 'one preparation');
    const agentHosts = sandboxPids(id).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent-host');
      } catch {
        return false;
      }
    });
    assert.equal(agentHosts.length, 1, `one agent host (${agentHosts.join(', ')})`);

    const stream = await alice.stream(id, eventsBefore);
    await stream.waitFor((e) => e.type === 'connected');
    await sleep(200);
    const events = stream.persisted();
    await stream.close();
    const users = events.filter((e) => e.type === 'user_message');
    const acceptedIds = new Set(accepted.map((a) => a.body.turnId as string));
    assert.deepEqual(new Set(users.map((e) => (e.type === 'user_message' ? e.data.turnId : ''))), acceptedIds, 'exactly the accepted messages were recorded');
    for (const turnId of acceptedIds) {
      const ends = events.filter((e) => e.type === 'turn_complete' && e.data.turnId === turnId);
      assert.equal(ends.length, 1, `turn ${turnId} ended once`);
    }
  });

  it('10 concurrent Retries of a failed session: one preparation (setup runs once)', async () => {
    const marker = join(tempDir('berth-retry-'), 'setup-runs');
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true, setup: [`echo run >> ${marker}; exit 3`] });
    const id = body.sessionId as string;
    await alice.waitFor(id, (s) => s.status === 'failed', 20_000);
    assert.equal(readFileSync(marker, 'utf8').trim().split('\n').length, 1);
    const answers = await Promise.all(Array.from({ length: 10 }, () => alice.request('POST', `/v1/sessions/${id}/retry`)));
    assert.equal(answers.filter((a) => a.status === 202).length, 1, JSON.stringify(answers.map((a) => a.status)));
    for (const a of answers.filter((x) => x.status !== 202)) assert.equal(a.status, 409);
    await sleep(300);
    await alice.waitFor(id, (s) => s.status === 'failed', 20_000);
    assert.ok(existsSync(marker));
    assert.equal(readFileSync(marker, 'utf8').trim().split('\n').length, 2, 'setup ran once more, not ten times');
  });

  it('the database holds it: a second active job for a session is refused by the unique index', async () => {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true, setup: ['sleep 2'] });
    const id = body.sessionId as string;
    await assert.rejects(
      t.server.ctx.store.enqueueJob({ sessionId: id, kind: 'resume', payload: { mode: 'async' }, runAt: Date.now() }),
      /UNIQUE|duplicate key|unique/i,
    );
    await alice.waitFor(id, (s) => s.status === 'ready', 20_000);
  });
});
