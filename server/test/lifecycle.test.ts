import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { PREPARATION_STEPS, type StreamEvent } from '@berth/protocol';
import { answerOf, isReady, makeRepo, sleep, startTestServer, tempDir, turnComplete, type TestServer } from './helpers';

const stepsOf = (events: StreamEvent[], state: 'started' | 'done') =>
  events.flatMap((e) => (e.type === 'preparing' && e.data.state === state ? [e.data.step] : []));

describe('session lifecycle on the local provider', () => {
  let t: TestServer;
  let repo: string;
  before(async () => {
    repo = makeRepo({ 'README.md': 'hello\n', 'src/app.txt': 'app\n' }, ['feature']);
    t = await startTestServer({ agentCommand: 'printf "answer[%s] branch=%s" "$(cat)" "$(git rev-parse --abbrev-ref HEAD)"' });
  });
  after(() => t.close());

  it('answers the fast path at once, then streams every step in order, then ready, then the first answer', async () => {
    const alice = t.api('alice');
    const started = await alice.start({ repo: { url: repo, branch: 'feature' }, prompt: 'build it', autoInitiate: true, setup: ['echo setup-ran > setup.txt'] });
    assert.equal(started.status, 202);
    assert.match(started.body.sessionId, /^ses_[A-Za-z0-9]{24}$/);
    assert.equal(started.body.status, 'preparing');
    // A ticket can be minted right after the fast path returns.
    const stream = await alice.stream(started.body.sessionId);
    const ready = await stream.waitFor(isReady, 20_000, 'ready');
    await stream.waitFor(turnComplete, 20_000, 'turn_complete');

    const done = stepsOf(stream.events, 'done');
    // Every pipeline step reported done, in the documented order (the stream may have joined late).
    const expected = PREPARATION_STEPS.filter((s) => done.includes(s));
    assert.deepEqual(done.filter((s) => (PREPARATION_STEPS as readonly string[]).includes(s)), expected);
    assert.ok(done.includes('initiate'), `initiate done before ready: ${done}`);
    assert.ok(stream.events.indexOf(ready) > stream.events.findIndex((e) => e.type === 'preparing' && e.data.step === 'initiate' && e.data.state === 'done'));

    const persisted = stream.persisted();
    assert.deepEqual(
      persisted.map((e) => e.id),
      persisted.map((_, i) => i + 1),
      'persisted ids are 1, 2, 3… in order',
    );
    assert.equal(persisted[0]?.type, 'user_message');
    // The named branch is where the work starts; the session works (and pushes) on a branch of its own.
    const own = `berth/${started.body.sessionId.slice(4, 16)}`;
    assert.equal(answerOf(stream.events), `answer[build it] branch=${own}`);
    assert.ok(stream.events.every((e) => e.id > 0 || ['preparing', 'status', 'connected', 'heartbeat'].includes(e.type)));

    const session = await alice.waitFor(started.body.sessionId, (s) => s.status === 'ready');
    assert.ok(session.preparedAt && session.initiatedAt);
    assert.equal(session.lastError, null);
    assert.equal(session.repo.branch, 'feature');
    assert.equal(session.changes?.branch, own);
    assert.equal(session.changes?.base, execFileSync('git', ['-C', repo, 'rev-parse', 'feature'], { encoding: 'utf8' }).trim(), 'based on the named branch');
    await stream.close();
  });

  it('a branch the start names that does not exist yet is created, and is the work branch', async () => {
    const alice = t.api('alice');
    const started = await alice.start({ repo: { url: repo, branch: 'brand-new' }, prompt: 'start it', autoInitiate: true });
    const stream = await alice.stream(started.body.sessionId);
    await stream.waitFor(turnComplete, 20_000, 'turn_complete');
    assert.equal(answerOf(stream.events), 'answer[start it] branch=brand-new');
    assert.equal((await alice.get(started.body.sessionId)).body.changes?.branch, 'brand-new');
    await stream.close();
  });

  it('runs setup in the workspace, then takes follow-up messages, one turn at a time', async () => {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: repo }, prompt: 'first', autoInitiate: true, setup: ['echo from-setup > marker.txt'] });
    const id = body.sessionId;
    // Sent while it prepares: queued, and run once the first prompt's turn ended.
    const early = await alice.message(id, 'early');
    assert.equal(early.status, 202);
    assert.deepEqual({ status: early.body.status, position: early.body.position }, { status: 'queued', position: 1 });

    const stream = await alice.stream(id);
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === early.body.turnId, 20_000);
    await alice.waitFor(id, (s) => s.status === 'ready' && (s.queue ?? []).length === 0);
    const users = stream.persisted().flatMap((e) => (e.type === 'user_message' ? [e.data.text] : []));
    assert.deepEqual(users, ['first', 'early'], 'the queued message ran after the first prompt');
    const workspace = `${t.dataDir}/workspaces/${id}`;
    assert.ok(readdirSync(workspace).includes('marker.txt'), 'the setup command ran in the workspace');

    const sent = await alice.message(id, 'second');
    assert.equal(sent.status, 202);
    const turnId = sent.body.turnId as string;
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === turnId);
    assert.match(answerOf(stream.events, turnId), /^answer\[second\] branch=berth\//);
    await stream.close();
  });

  it('queues messages sent while a turn runs: they run in order, a cancelled one never runs, a restart keeps the rest', async () => {
    const dataDir = tempDir('berth-queue-');
    let slow = await startTestServer({ dataDir, agentCommand: 'sleep 1; cat' });
    try {
      const alice = slow.api('alice');
      const { body } = await alice.start({ repo: { url: repo }, prompt: 'slow one', autoInitiate: true });
      const id = body.sessionId as string;
      await alice.waitFor(id, (s) => s.status === 'running');
      const sent = [];
      for (const text of ['second', 'third', 'fourth']) sent.push(await alice.message(id, text));
      assert.deepEqual(sent.map((r) => [r.status, r.body.status, r.body.position]), [[202, 'queued', 1], [202, 'queued', 2], [202, 'queued', 3]]);
      assert.deepEqual((await alice.get(id)).body.queue?.map((m: { text: string }) => m.text), ['second', 'third', 'fourth']);
      assert.equal((await alice.request('DELETE', `/v1/sessions/${id}/messages/${sent[1]!.body.turnId}`)).status, 204);
      assert.equal((await alice.request('DELETE', `/v1/sessions/${id}/messages/${sent[1]!.body.turnId}`)).status, 404, 'cancelled once');
      assert.equal((await t.api('bob').request('DELETE', `/v1/sessions/${id}/messages/${sent[2]!.body.turnId}`)).status, 404, "not another user's");

      // A restart while the queue waits: the turn in flight fails, the queue is kept and runs.
      await alice.waitFor(id, (s) => s.status === 'running' && s.queue?.length === 2);
      await slow.close();
      slow = await startTestServer({ dataDir, agentCommand: 'sleep 1; cat' });
      const again = slow.api('alice');
      const done = await again.waitFor(id, (s) => s.status === 'ready' && (s.queue ?? []).length === 0, 60_000);
      assert.deepEqual(done.queue, []);
      const stream = await again.stream(id);
      await stream.waitFor((e) => e.type === 'connected');
      await sleep(300);
      const events = stream.persisted();
      await stream.close();
      const users = events.flatMap((e) => (e.type === 'user_message' ? [e.data.text] : []));
      assert.deepEqual(users, ['slow one', 'second', 'fourth'], 'in order; the cancelled one never ran');
      const answered = (turnId: string) => events.filter((e) => e.type === 'turn_complete' && e.data.turnId === turnId);
      for (const r of [sent[0]!, sent[2]!]) assert.equal(answered(r.body.turnId).length, 1, 'each queued message ended once');
    } finally {
      await slow.close();
    }
  });

  it('keeps the synchronous path: 201 once prepared, no first prompt run', async () => {
    const alice = t.api('alice');
    const r = await alice.start({ repo: { url: repo }, prompt: 'not sent' });
    assert.equal(r.status, 201);
    assert.equal(r.body.status, 'ready');
    const s = await alice.get(r.body.sessionId);
    assert.equal(s.body.status, 'ready');
    assert.equal(s.body.initiatedAt, null);
    assert.equal(s.body.lastEventId, 0, 'no prompt was sent');
  });

  it('interrupts a running turn cleanly', async () => {
    const slow = await startTestServer({ agentCommand: 'echo working; sleep 30' });
    try {
      const alice = slow.api('alice');
      const { body } = await alice.start({ repo: { url: repo }, prompt: 'long', autoInitiate: true });
      const stream = await alice.stream(body.sessionId);
      await stream.waitFor((e) => e.type === 'assistant_output');
      const r = await alice.request('POST', `/v1/sessions/${body.sessionId}/interrupt`);
      assert.equal(r.status, 202);
      const done = await stream.waitFor(turnComplete, 10_000);
      assert.equal(done.type === 'turn_complete' && done.data.status, 'interrupted');
      await alice.waitFor(body.sessionId, (s) => s.status === 'ready');
      await stream.close();
    } finally {
      await slow.close();
    }
  });

  it('an interrupt stops the current turn; the queue goes on', async () => {
    // The first prompt runs long; the queued message is answered at once.
    const slow = await startTestServer({ agentCommand: 'read -r prompt; case "$prompt" in long*) echo working; sleep 30 ;; *) echo "quick: $prompt" ;; esac' });
    try {
      const alice = slow.api('alice');
      const { body } = await alice.start({ repo: { url: repo }, prompt: 'long', autoInitiate: true });
      const id = body.sessionId as string;
      const stream = await alice.stream(id);
      await stream.waitFor((e) => e.type === 'assistant_output');
      const queued = await alice.message(id, 'next');
      assert.equal(queued.body.status, 'queued');
      assert.equal((await alice.request('POST', `/v1/sessions/${id}/interrupt`)).status, 202);
      const next = await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === queued.body.turnId, 15_000);
      assert.equal(next.type === 'turn_complete' && next.data.status, 'completed');
      const ends = stream.persisted().flatMap((e) => (e.type === 'turn_complete' ? [e.data.status] : []));
      assert.deepEqual(ends, ['interrupted', 'completed']);
      assert.match(answerOf(stream.events, queued.body.turnId), /quick: next/);
      await stream.close();
    } finally {
      await slow.close();
    }
  });

  it('deletes a session while it prepares: cancelled, sandbox processes gone, data removed', async () => {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: repo }, prompt: 'x', autoInitiate: true, setup: ['sleep 30'] });
    await alice.waitFor(body.sessionId, (s) => s.step === 'setup');
    const r = await alice.request('DELETE', `/v1/sessions/${body.sessionId}`);
    assert.equal(r.status, 204);
    assert.equal((await alice.get(body.sessionId)).status, 404);
    assert.ok(!readdirSync(`${t.dataDir}/workspaces`).includes(body.sessionId));
  });
});

describe('a first turn that completes before preparation has written its last status', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ agentCommand: 'cat' });
  });
  after(() => t.close());

  it('ends ready, not running for ever', async () => {
    // The initiate step's write (initiatedAt) is held back until the turn has completed and
    // written `ready`: on PostgreSQL, writes on separate connections can land in this order.
    const store = t.server.ctx.store;
    const update = store.updateSession.bind(store);
    let turnDone!: () => void;
    const turnCompleted = new Promise<void>((resolve) => (turnDone = resolve));
    store.updateSession = async (id, patch) => {
      if (patch.initiatedAt) await Promise.race([turnCompleted, new Promise((r) => setTimeout(r, 5_000))]);
      await update(id, patch);
      if (patch.status === 'ready') turnDone();
    };
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'quick', autoInitiate: true });
      const stream = await alice.stream(body.sessionId);
      await stream.waitFor(turnComplete, 20_000, 'turn_complete');
      await stream.waitFor(isReady, 20_000, 'ready');
      const settled = await alice.waitFor(body.sessionId, (s) => s.status !== 'preparing', 10_000);
      await new Promise((r) => setTimeout(r, 300)); // any late write would land now
      assert.equal((await alice.get(body.sessionId)).body.status, 'ready', `settled as ${settled.status}`);
      await stream.close();
    } finally {
      store.updateSession = update;
    }
  });
});
