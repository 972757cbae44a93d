// The whole client data path against the real server: api client → stream client → state machine.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { SessionController } from '../src/session/sessionController';
import { inputLock, type SessionMachineState } from '../src/session/stateMachine';
import { presentStatus } from '../src/statusBarModel';
import { createBareRepo, startRealServer, waitFor, type RealServer } from './helpers/realServer';

const fast = { backoff: { initialMs: 20, maxMs: 200, jitter: 0.5 } };

describe('SessionController (real server on loopback)', () => {
  let real: RealServer;
  before(async () => {
    real = await startRealServer({ agentCommand: 'cat' });
  });
  after(async () => {
    await real?.close();
  });

  const until = (c: SessionController, what: string, check: (s: SessionMachineState) => boolean, timeoutMs?: number) =>
    waitFor(what, () => (check(c.state) ? true : undefined), timeoutMs);

  it('start: "preparing" at once, the fast path answers quickly, ready unlocks input after the first turn', async () => {
    const c = new SessionController(real.api, { stream: fast });
    const states: SessionMachineState[] = [];
    c.onDidChange((s) => states.push(s));
    const pressed = performance.now();
    const started = c.start({ repo: { url: real.repoUrl }, prompt: 'echo me', setup: ['sleep 0.3'], autoInitiate: true });
    // Synchronously, before any I/O: the chat can paint "preparing" now.
    assert.equal(c.state.session?.status, 'preparing');
    assert.equal(presentStatus(c.state).text, '$(sync~spin) Berth: queued…');
    const id = await started;
    const answeredMs = performance.now() - pressed;
    assert.ok(id);
    assert.ok(answeredMs < 300, `the fast path answered in ${answeredMs.toFixed(0)} ms`);

    await until(c, 'status bar at a pipeline step', (s) => s.session?.steps.some((x) => x.state === 'running') ?? false);
    assert.match(presentStatus(c.state).text, /^\$\(sync~spin\) Berth: .+…$/);
    await until(c, 'ready and idle', (s) => s.session?.status === 'ready' && inputLock(s).enabled, 20_000);
    c.dispose();

    // Never unlocked before the server said the first prompt was accepted (running, then ready):
    // from then on a message waits in the queue while the turn runs.
    const firstUnlocked = states.findIndex((s) => inputLock(s).enabled);
    const acceptedAt = states.findIndex((s) => s.session?.status === 'running' || s.session?.status === 'ready');
    assert.ok(acceptedAt >= 0 && firstUnlocked >= acceptedAt, `unlocked at state ${firstUnlocked}, accepted at ${acceptedAt}`);
    assert.ok(states.slice(0, acceptedAt).every((s) => !inputLock(s).enabled && s.session?.status !== 'ready'));
    const items = c.state.session.items;
    assert.deepEqual(items.map((i) => i.kind), ['user', 'assistant', 'turn']);
    assert.equal(items[1]?.kind === 'assistant' && items[1].text, 'echo me');
    assert.equal(presentStatus(c.state).text, '$(check) Berth: ready');
  });

  it('send: the input is locked while a follow-up is sent; reopening rebuilds the same conversation from the server', async () => {
    const c = new SessionController(real.api, { stream: fast });
    const id = await c.start({ repo: { url: real.repoUrl }, prompt: 'one', autoInitiate: true });
    await until(c, 'ready', (s) => s.session?.status === 'ready' && inputLock(s).enabled, 20_000);
    const sending = c.send('two');
    assert.equal(inputLock(c.state).enabled, false);
    await sending;
    await until(c, 'second turn done and ready', (s) => s.session!.items.filter((i) => i.kind === 'turn').length === 2 && inputLock(s).enabled);
    const live = c.state.session!;
    c.dispose();

    const reopened = new SessionController(real.api, { stream: fast });
    await reopened.open(id!);
    await until(reopened, 'replayed', (s) => s.session!.items.filter((i) => i.kind === 'turn').length === 2);
    assert.deepEqual(reopened.state.session!.items, live.items);
    assert.equal(reopened.state.session!.status, 'ready');
    assert.equal(reopened.state.session!.prompt, 'one');
    assert.equal(reopened.streamClient?.cursor, (await real.api.getSession(id!)).lastEventId);
    reopened.dispose();
  });

  it('a connection drop after ready keeps the state and does not replay progress', async () => {
    const c = new SessionController(real.api, { stream: fast });
    await c.start({ repo: { url: real.repoUrl }, prompt: 'stay', autoInitiate: true });
    await until(c, 'ready', (s) => s.session?.status === 'ready' && inputLock(s).enabled, 20_000);
    const before = c.state.session!;
    const states: SessionMachineState[] = [];
    c.onDidChange((s) => states.push(s));
    c.streamClient!.dropConnection();
    await until(c, 'reconnected', (s) => s.connection === 'open' && states.some((x) => x.connection === 'reconnecting'));
    assert.ok(states.every((s) => s.session?.status === 'ready'), 'never back to preparing');
    assert.deepEqual(c.state.session!.items, before.items);
    assert.deepEqual(c.state.session!.steps, before.steps);
    c.dispose();
  });

  it('while the stream reconnects the input is locked and a message is refused; the snapshot unlocks it again', async () => {
    const c = new SessionController(real.api, { stream: fast });
    const id = await c.start({ repo: { url: real.repoUrl }, prompt: 'hold on', autoInitiate: true });
    await until(c, 'ready', (s) => s.session?.status === 'ready' && inputLock(s).enabled, 20_000);
    const turns = () => c.state.session!.items.filter((i) => i.kind === 'user').length;
    const usersBefore = turns();
    const down: SessionMachineState[] = [];
    const refused: Promise<unknown>[] = [];
    c.onDidChange((s) => {
      if (s.connection !== 'reconnecting') return;
      down.push(s);
      // Enter pressed in this very state: the controller must not send it.
      refused.push(c.send('lost?').then(() => 'sent', (err: unknown) => String(err)));
    });
    c.streamClient!.dropConnection();
    await until(c, 'reconnected and ready', (s) => s.connection === 'open' && down.length > 0 && inputLock(s).enabled);
    assert.ok(down.every((s) => !inputLock(s).enabled && /Reconnecting to the Berth server/.test(inputLock(s).reason)));
    assert.ok(down.every((s) => /reconnecting/.test(presentStatus(s).text) && !/ready/.test(presentStatus(s).text)));
    for (const result of await Promise.all(refused)) assert.match(String(result), /Reconnecting/);
    assert.equal(turns(), usersBefore, 'nothing was sent while reconnecting');
    // The server told the step order (local provider: setup before sandbox), on GET and on connect.
    const order = ['disk_check', 'clone', 'branch', 'setup', 'sandbox', 'agent_start', 'session_import', 'initiate'];
    assert.deepEqual((await real.api.getSession(id!)).steps, order);
    assert.deepEqual(c.state.stepOrder, order);
    assert.deepEqual(c.state.session!.steps.map((x) => x.step), order);
    c.dispose();
  });

  it('a failed preparation shows the error; Retry after the cause is fixed reaches ready', async () => {
    const missing = join(real.tmp, 'later', 'origin.git');
    const c = new SessionController(real.api, { stream: fast });
    await c.start({ repo: { url: missing }, prompt: 'retry me', autoInitiate: true });
    await until(c, 'failed', (s) => s.session?.status === 'failed', 20_000);
    assert.ok(c.state.session!.error?.message);
    assert.equal(presentStatus(c.state).text, '$(error) Berth: failed');
    assert.equal(presentStatus(c.state).action, 'revealError');
    assert.equal(inputLock(c.state).enabled, false);

    createBareRepo(join(real.tmp, 'later'));
    await c.retry();
    await until(c, 'ready after retry', (s) => s.session?.status === 'ready' && inputLock(s).enabled, 20_000);
    assert.equal(c.state.session!.error, null);
    assert.ok(c.state.session!.items.some((i) => i.kind === 'assistant' && i.text === 'retry me'));
    c.dispose();
  });

  it('a start the server refuses is a failed session with the server message, and the token is not in it', async () => {
    const c = new SessionController(real.api, { stream: fast });
    const id = await c.start({ repo: { url: 'ftp://example.com/x' }, prompt: 'x', autoInitiate: true });
    assert.equal(id, null);
    assert.equal(c.state.session?.status, 'failed');
    assert.ok(c.state.session?.error?.message);
    assert.ok(!JSON.stringify(c.state).includes(real.server.token));
    c.dispose();
  });

  it('deleting the session clears the state', async () => {
    const c = new SessionController(real.api, { stream: fast });
    const id = await c.start({ repo: { url: real.repoUrl }, prompt: 'bye', autoInitiate: true });
    await until(c, 'ready', (s) => s.session?.status === 'ready' && inputLock(s).enabled, 20_000);
    await c.deleteSession();
    assert.equal(c.state.session, null);
    await assert.rejects(real.api.getSession(id!), /not found|no such/i);
    c.dispose();
  });
});
