// One test (at least) per invariant of DESIGN.md; each fails when its invariant is broken.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { AGENT_PROTOCOL_VERSION } from '@berth/protocol';
import {
  answerOf,
  fakeAgentHost,
  isFailed,
  isReady,
  makeRepo,
  queryTestDb,
  sandboxPids,
  sleep,
  startTestServer,
  tempDir,
  turnComplete,
  type TestServer,
} from './helpers';

describe('invariant 1: the fast path does no slow work', () => {
  it('answers 202 while the remote would hang, in the same time for any repo', async () => {
    // A git server that accepts connections and never answers: any clone on the request path would hang.
    const hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const port = (hang.address() as { port: number }).port;
    const t = await startTestServer({ timeouts: { cloneMs: 1500 } as never });
    try {
      const alice = t.api('alice');
      const startedAt = performance.now();
      const r = await alice.start({ repo: { url: `git://127.0.0.1:${port}/never.git` }, prompt: 'hi', autoInitiate: true });
      const ms = performance.now() - startedAt;
      assert.equal(r.status, 202);
      assert.ok(ms < 500, `fast path took ${ms} ms`);
      const s = await alice.get(r.body.sessionId);
      assert.equal(s.body.status, 'preparing');
      // The clone then times out in the background with a clear message.
      const failed = await alice.waitFor(r.body.sessionId, (v) => v.status === 'failed', 15_000);
      assert.equal(failed.lastError?.step, 'clone');
      assert.match(failed.lastError.message, /did not finish within/);
    } finally {
      await t.close();
      hang.close();
    }
  });
});

describe('invariants 2 and 3: ready only after initiate; a failed initiate is never left initiated', () => {
  let t: TestServer;
  let gate: string;
  before(async () => {
    gate = join(tempDir(), 'allow');
    t = await startTestServer({ agentHostScript: fakeAgentHost({ FAKE_REJECT_UNLESS: gate, FAKE_REAL_VERSION: AGENT_PROTOCOL_VERSION }) });
  });
  after(() => t.close());

  it('emits failed (never ready), keeps initiatedAt unset, records an error; retry then works', async () => {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'do it', autoInitiate: true });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(isFailed);
    assert.equal(stream.events.find(isReady), undefined, 'ready must not be emitted when initiate failed');
    const failed = await alice.waitFor(body.sessionId, (s) => s.status === 'failed');
    assert.equal(failed.initiatedAt, null);
    assert.equal(failed.lastError?.step, 'initiate');
    assert.match(failed.lastError.message, /refused the request \(401\)/);
    const errors = stream.persisted().filter((e) => e.type === 'error');
    assert.equal(errors.length, 1, 'a persisted error');
    // A message cannot reach a session whose first prompt was dropped.
    assert.equal((await alice.message(body.sessionId, 'follow-up')).status, 409);

    writeFileSync(gate, 'ok');
    assert.equal((await alice.request('POST', `/v1/sessions/${body.sessionId}/retry`)).status, 202);
    await stream.waitFor((e) => isReady(e) && stream.events.indexOf(e) > stream.events.findIndex(isFailed));
    const ready = await alice.waitFor(body.sessionId, (s) => s.status === 'ready');
    assert.ok(ready.initiatedAt, 'initiatedAt is set once the prompt was accepted');
    const userMessages = stream.persisted().filter((e) => e.type === 'user_message');
    assert.equal(userMessages.length, 1, 'the retried prompt is not repeated in the conversation');
    assert.equal(answerOf(stream.events), 'fake answer to: do it');
    await stream.close();
  });

  it('ready comes after the initiate step is done, for the real agent host', async () => {
    const real = await startTestServer({ agentCommand: 'cat' });
    try {
      const alice = real.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'ping', autoInitiate: true });
      const stream = await alice.stream(body.sessionId);
      const ready = await stream.waitFor(isReady);
      const initiateDone = stream.events.findIndex((e) => e.type === 'preparing' && e.data.step === 'initiate' && e.data.state === 'done');
      assert.ok(initiateDone >= 0 && initiateDone < stream.events.indexOf(ready));
      const s = await alice.get(body.sessionId);
      assert.ok(s.body.initiatedAt, 'initiatedAt is already set when ready is seen');
      await stream.close();
    } finally {
      await real.close();
    }
  });
});

describe('invariant 4: rollback deletes a session only if it holds no data', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ agentCommand: 'cat', idleTimeoutMs: 300 });
  });
  after(() => t.close());

  it('a failed synchronous start rolls back: 422, session deleted, workspace removed', async () => {
    const alice = t.api('alice');
    const r = await alice.start({ repo: { url: makeRepo() }, setup: ['echo compiling; echo "error: missing dep" >&2; exit 7'] });
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, 'preparation_failed');
    assert.match(r.body.error.message, /exited with code 7[\s\S]*error: missing dep/);
    const list = await alice.request('GET', '/v1/sessions');
    assert.equal(list.body.sessions.filter((s: { status: string }) => s.status === 'failed').length, 0);
    assert.deepEqual(readdirSync(join(t.dataDir, 'workspaces')).filter((d) => !list.body.sessions.some((s: { id: string }) => s.id === d)), []);
  });

  it('a session with a conversation is kept and marked failed when its resume fails', async () => {
    const alice = t.api('alice');
    const repoDir = makeRepo();
    const { body } = await alice.start({ repo: { url: repoDir }, prompt: 'remember me', autoInitiate: true });
    const id = body.sessionId;
    await alice.waitFor(id, (s) => s.status === 'sleeping', 10_000); // reaped after the idle timeout
    // Take away everything the resume needs: the workspace and the remote.
    rmSync(join(t.dataDir, 'workspaces', id), { recursive: true, force: true });
    rmSync(repoDir, { recursive: true, force: true });
    assert.equal((await alice.message(id, 'are you there?')).status, 202);
    const failed = await alice.waitFor(id, (s) => s.status === 'failed');
    assert.equal(failed.lastError?.step, 'clone');
    const stream = await alice.stream(id);
    await stream.waitFor((e) => e.type === 'connected');
    await sleep(200);
    const types = stream.persisted().map((e) => e.type);
    assert.deepEqual(types.slice(0, 3), ['user_message', 'assistant_output', 'turn_complete'], 'earlier conversation intact');
    assert.ok(types.includes('error'));
    await stream.close();
  });
});

describe('invariant 5: the session-import temp file is removed on every path', () => {
  const importFiles = (dataDir: string) =>
    existsSync(join(dataDir, 'shared'))
      ? readdirSync(join(dataDir, 'shared'), { recursive: true }).map(String).filter((f) => f.includes('import-'))
      : [];

  it('after success', async () => {
    const t = await startTestServer({ agentCommand: 'cat' });
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true });
      await alice.waitFor(body.sessionId, (s) => s.status === 'ready');
      assert.deepEqual(importFiles(t.dataDir), []);
    } finally {
      await t.close();
    }
  });

  for (const mode of ['crash', 'hang'] as const) {
    it(`after the agent host ${mode === 'crash' ? 'crashes on' : 'never answers'} the import`, async () => {
      const t = await startTestServer({
        agentHostScript: fakeAgentHost({ FAKE_IMPORT: mode, FAKE_REAL_VERSION: AGENT_PROTOCOL_VERSION }),
        timeouts: { sessionImportMs: 800 } as never,
      });
      try {
        const alice = t.api('alice');
        const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true });
        const s = await alice.waitFor(body.sessionId, (v) => v.status === 'failed');
        assert.equal(s.lastError?.step, 'session_import');
        assert.deepEqual(importFiles(t.dataDir), []);
      } finally {
        await t.close();
      }
    });
  }
});

describe('invariant 7: volatile events are never persisted or replayed', () => {
  it('a reconnect after ready gets the snapshot and persisted events only; after=N skips what was seen', async () => {
    const t = await startTestServer({ agentCommand: 'cat' });
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'hello', autoInitiate: true, setup: ['true'] });
      const live = await alice.stream(body.sessionId);
      await live.waitFor(turnComplete);
      assert.ok(live.events.some((e) => e.type === 'preparing'), 'live clients saw progress');
      await live.close();

      const again = await alice.stream(body.sessionId, 0);
      await again.waitFor(turnComplete);
      await sleep(150);
      assert.equal(again.events[0]?.type, 'connected');
      const connected = again.events[0];
      assert.ok(connected?.type === 'connected' && connected.data.session.status === 'ready');
      assert.equal(again.events.filter((e) => e.type === 'preparing').length, 0, 'no stale progress replayed');
      const ids = again.persisted().map((e) => e.id);
      assert.deepEqual(ids, [1, 2, 3]);
      await again.close();

      const partial = await alice.stream(body.sessionId, 2);
      await partial.waitFor(turnComplete);
      await sleep(100);
      assert.deepEqual(partial.persisted().map((e) => e.id), [3]);
      await partial.close();

      const types = (await queryTestDb<{ type: string }>(t.dataDir, 'SELECT DISTINCT type FROM events')).map((r) => r.type);
      for (const volatile of ['preparing', 'status', 'connected', 'heartbeat']) assert.ok(!types.includes(volatile));
    } finally {
      await t.close();
    }
  });
});

describe('invariant 8: the agent runtime version is pinned', () => {
  it('fails agent_start with a clear message on a mismatch', async () => {
    const t = await startTestServer({ agentHostScript: fakeAgentHost({ FAKE_VERSION: '0.9.0' }) });
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true });
      const s = await alice.waitFor(body.sessionId, (v) => v.status === 'failed');
      assert.equal(s.lastError?.step, 'agent_start');
      assert.match(s.lastError.message, new RegExp(`0\\.9\\.0 does not match the pinned version ${AGENT_PROTOCOL_VERSION.replace(/\./g, '\\.')}`));
      assert.deepEqual(sandboxPids(body.sessionId), [], 'the mismatched agent host was stopped');
    } finally {
      await t.close();
    }
  });
});

describe('cancellation leaves nothing running', () => {
  it('DELETE during a slow setup kills its processes', async () => {
    const t = await startTestServer();
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true, setup: ['sleep 60'] });
      await alice.waitFor(body.sessionId, (s) => s.step === 'setup');
      await sleep(200);
      assert.ok(sandboxPids(body.sessionId).length > 0, 'the setup command runs');
      assert.equal((await alice.request('DELETE', `/v1/sessions/${body.sessionId}`)).status, 204);
      assert.deepEqual(sandboxPids(body.sessionId), []);
    } finally {
      await t.close();
    }
  });
});
