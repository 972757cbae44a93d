import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PreparationStep, PreparingData, SessionStatus, SessionView, StreamEvent } from '@berth/protocol';
import { presentStatus } from '../src/statusBarModel';
import type { ChangesData, ChangesSummary } from '@berth/protocol';
import {
  canInterrupt,
  canRetry,
  findChangedFile,
  hasChanges,
  initialState,
  isKnownRange,
  RECONNECTING_REASON,
  inputLock,
  reduce,
  toViewState,
  type SessionAction,
  type SessionMachineState,
} from '../src/session/stateMachine';

const ID = 'ses_aaaaaaaaaaaaaaaaaaaaaaaa';
const ts = '2026-01-01T00:00:00.000Z';

function run(actions: SessionAction[], from: SessionMachineState = initialState): SessionMachineState {
  return actions.reduce(reduce, from);
}
const ev = (event: StreamEvent): SessionAction => ({ type: 'event', event });
const prep = (data: Partial<PreparingData> & Pick<PreparingData, 'step'>): SessionAction =>
  ev({ id: 0, sessionId: ID, type: 'preparing', ts, data: { state: 'started', message: data.step, elapsedMs: 0, ...data } });
const status = (s: SessionStatus, step: SessionView['step'] = null): SessionAction =>
  ev({ id: 0, sessionId: ID, type: 'status', ts, data: { status: s, step } });
const userMessage = (id: number, turnId: string, text: string): SessionAction =>
  ev({ id, sessionId: ID, type: 'user_message', ts, data: { turnId, text } });
const output = (id: number, turnId: string, text: string): SessionAction =>
  ev({ id, sessionId: ID, type: 'assistant_output', ts, data: { turnId, text } });
const turnComplete = (id: number, turnId: string): SessionAction =>
  ev({ id, sessionId: ID, type: 'turn_complete', ts, data: { turnId, status: 'completed', durationMs: 5 } });
function view(overrides: Partial<SessionView> = {}): SessionView {
  return {
    id: ID,
    repo: { url: 'https://example.com/r.git', branch: 'main' },
    prompt: 'do it',
    setup: [],
    autoInitiate: true,
    status: 'ready',
    step: null,
    createdAt: ts,
    updatedAt: ts,
    preparedAt: ts,
    initiatedAt: ts,
    lastError: null,
    lastEventId: 0,
    ...overrides,
  };
}
const connected = (v: SessionView): SessionAction => ev({ id: 0, sessionId: ID, type: 'connected', ts, data: { session: v } });
const started: SessionAction[] = [
  { type: 'start_requested', repo: { url: 'https://example.com/r.git' }, prompt: 'do it' },
  { type: 'start_accepted', sessionId: ID, status: 'preparing' },
];
const stepStates = (s: SessionMachineState) => Object.fromEntries(s.session!.steps.map((x) => [x.step, x.state]));

describe('state machine: start and preparation', () => {
  it('shows preparing the moment Enter is pressed, before the server answered', () => {
    const s = reduce(initialState, started[0]!);
    assert.equal(s.session?.status, 'preparing');
    assert.equal(s.session?.sessionId, null);
    assert.equal(s.session?.step, 'queued');
    assert.deepEqual(inputLock(s), { enabled: false, reason: 'Starting the session…' });
  });

  it('follows every step: done, running, with message, elapsed time and the latest log line', () => {
    const s = run([
      ...started,
      prep({ step: 'disk_check', state: 'done', message: '79 GiB free', elapsedMs: 2 }),
      prep({ step: 'clone', message: 'cloning', detail: 'Receiving objects: 10%' }),
      prep({ step: 'clone', message: 'cloning', detail: 'Receiving objects: 90%', elapsedMs: 900 }),
    ]);
    const steps = stepStates(s);
    assert.equal(steps.disk_check, 'done');
    assert.equal(steps.clone, 'running');
    assert.equal(steps.branch, 'pending');
    const clone = s.session!.steps.find((x) => x.step === 'clone')!;
    assert.equal(clone.detail, 'Receiving objects: 90%');
    assert.equal(clone.elapsedMs, 900);
    assert.equal(s.session!.step, 'clone');
    assert.match(inputLock(s).reason, /cloning/);
  });

  it('marks a step that never reported as skipped once a later one starts', () => {
    const s = run([...started, prep({ step: 'clone', state: 'done' }), prep({ step: 'sandbox' })]);
    const steps = stepStates(s);
    assert.equal(steps.clone, 'done');
    assert.equal(steps.branch, 'skipped');
    assert.equal(steps.sandbox, 'running');
  });

  it('shows sandbox before setup when the sandbox starts first (setup inside a devcontainer)', () => {
    let s = run([...started, prep({ step: 'branch', state: 'done' }), prep({ step: 'sandbox' })]);
    assert.deepEqual(s.session!.steps.map((x) => x.step).slice(3, 5), ['sandbox', 'setup']);
    assert.equal(stepStates(s).setup, 'pending', 'setup has not run yet, it is not skipped');
    s = run([prep({ step: 'sandbox', state: 'done' }), prep({ step: 'setup' }), prep({ step: 'setup', state: 'failed', message: 'exit 3' }), prep({ step: 'failed', message: 'preparation failed' })], s);
    assert.equal(stepStates(s).sandbox, 'done');
    assert.equal(stepStates(s).setup, 'failed');
    assert.equal(s.session!.error?.step, 'setup', 'the final failed event keeps the failed step');
    assert.equal(s.session!.error?.message, 'exit 3');
  });

  it('keeps the persisted error that arrives before the failed status (as the server orders them)', () => {
    let s = run([...started, prep({ step: 'setup' })]);
    s = run([ev({ id: 2, sessionId: ID, type: 'error', ts, data: { code: 'setup_failed', message: 'setup exited with code 3', step: 'setup' } }), prep({ step: 'failed', message: 'failed' })], s);
    assert.equal(s.session!.status, 'failed');
    assert.deepEqual(s.session!.error, { code: 'setup_failed', message: 'setup exited with code 3', step: 'setup' });
    assert.equal(stepStates(s).setup, 'failed');
  });

  it('unlocks input only on ready — never on a step done, not even initiate', () => {
    let s = run([...started, prep({ step: 'initiate' }), prep({ step: 'initiate', state: 'done' })]);
    assert.equal(inputLock(s).enabled, false, 'initiate done is not ready');
    s = reduce(s, prep({ step: 'ready', state: 'done', elapsedMs: 1234 }));
    assert.equal(s.session?.status, 'ready');
    assert.equal(inputLock(s).enabled, true);
    assert.ok(s.session.steps.every((x) => x.state === 'done' || x.state === 'skipped'));
  });

  it('keeps input locked until `ready`, however the events interleave (as the real server orders them); then a message queues', () => {
    // Fast path persists the prompt as user_message #1; `status running` precedes the `ready` progress event.
    let s = run([...started, userMessage(1, 't1', 'do it'), prep({ step: 'initiate', state: 'done' })]);
    assert.equal(canInterrupt(s), false, 'a preparation is not a turn that Stop could interrupt');
    s = reduce(s, status('running'));
    assert.equal(inputLock(s).enabled, false, 'running, but `ready` has not come yet');
    assert.match(inputLock(s).reason, /starting on your prompt/);
    s = reduce(s, prep({ step: 'ready', state: 'done' }));
    assert.equal(s.session?.status, 'running', 'ready progress does not downgrade a running turn');
    assert.equal(inputLock(s).enabled, true, 'ready: a message sent during the turn waits in the queue');
    assert.equal(canInterrupt(s), true);
    s = run([output(2, 't1', 'done'), turnComplete(3, 't1'), status('ready')], s);
    assert.deepEqual(inputLock(s), { enabled: true, reason: '' });
    assert.equal(canInterrupt(s), false);
  });

  it('a failed step fails the session with its message; Retry resets the run', () => {
    let s = run([...started, prep({ step: 'clone' }), prep({ step: 'clone', state: 'failed', message: 'repository not found' })]);
    assert.equal(s.session?.status, 'failed');
    assert.deepEqual(s.session?.error, { code: 'preparation_failed', message: 'repository not found', step: 'clone' });
    assert.equal(stepStates(s).clone, 'failed');
    assert.equal(canRetry(s), true);
    assert.equal(inputLock(s).enabled, false);
    s = reduce(s, { type: 'retry_requested' });
    assert.equal(s.session?.status, 'preparing');
    assert.equal(s.session?.error, null);
    assert.ok(s.session.steps.every((x) => x.state === 'pending'));
    assert.equal(canRetry(s), false);
  });

  it('the `failed` progress event fails the running step; the persisted error refines the error', () => {
    let s = run([...started, prep({ step: 'agent_start' }), prep({ step: 'failed', state: 'failed', message: 'agent version mismatch' })]);
    assert.equal(s.session?.status, 'failed');
    assert.equal(stepStates(s).agent_start, 'failed');
    assert.equal(s.session?.error?.step, 'agent_start');
    s = reduce(s, ev({ id: 2, sessionId: ID, type: 'error', ts, data: { code: 'agent_version_mismatch', message: 'want 1.0.0, got 2.0.0', step: 'agent_start' } }));
    assert.equal(s.session?.error?.code, 'agent_version_mismatch');
    assert.equal(s.session?.items.length, 0, 'a preparation error is the banner, not a chat item');
  });

  it('a start request that failed is a failed session that Retry can repeat', () => {
    const s = run([started[0]!, { type: 'request_failed', error: { code: 'network', message: 'Cannot reach the Berth server' } }]);
    assert.equal(s.session?.status, 'failed');
    assert.equal(s.session?.sessionId, null);
    assert.equal(canRetry(s), true);
  });
});

describe('state machine: snapshots (connected) and reconnects', () => {
  it('a reconnect after ready shows ready without replaying old progress', () => {
    const before = run([...started, prep({ step: 'clone' }), prep({ step: 'ready', state: 'done' }), userMessage(1, 't1', 'do it'), turnComplete(2, 't1'), status('ready')]);
    const after = reduce(before, connected(view({ status: 'ready', lastEventId: 2 })));
    assert.equal(after.session?.status, 'ready');
    assert.deepEqual(after.session?.steps, before.session?.steps, 'steps are not reset');
    assert.deepEqual(after.session?.items, before.session?.items, 'the conversation is kept');
    assert.equal(inputLock(after).enabled, true);
  });

  it('reopening from a snapshot infers the steps already done and the one running', () => {
    const s = run([{ type: 'opened', sessionId: ID }, { type: 'snapshot', session: view({ status: 'preparing', step: 'sandbox', preparedAt: null, initiatedAt: null }) }]);
    const steps = stepStates(s);
    assert.equal(steps.clone, 'done', 'the pipeline got past it (its events were volatile), it was not skipped');
    assert.equal(steps.sandbox, 'running');
    assert.equal(steps.agent_start, 'pending');
    assert.equal(s.session?.repo?.branch, 'main');
    assert.equal(inputLock(s).enabled, false);
  });

  it('a snapshot of a failed session shows its last error and offers Retry', () => {
    const s = run([
      { type: 'opened', sessionId: ID },
      connected(view({ status: 'failed', lastError: { code: 'clone_failed', message: 'no such repo', step: 'clone' } })),
    ]);
    assert.equal(s.session?.error?.message, 'no such repo');
    assert.equal(stepStates(s).clone, 'failed');
    assert.equal(canRetry(s), true);
  });

  it('replayed history of a retried session does not mark it failed again', () => {
    const s = run([
      { type: 'opened', sessionId: ID },
      connected(view({ status: 'ready' })),
      userMessage(1, 't1', 'do it'),
      ev({ id: 2, sessionId: ID, type: 'error', ts, data: { code: 'clone_failed', message: 'old failure', step: 'clone' } }),
      output(3, 't1', 'hi'),
      turnComplete(4, 't1'),
    ]);
    assert.equal(s.session?.status, 'ready');
    assert.equal(s.session?.error, null);
    assert.equal(inputLock(s).enabled, true);
  });

  it('a session that was sleeping starts a resume run when preparation begins again', () => {
    const s = run([{ type: 'opened', sessionId: ID }, connected(view({ status: 'sleeping' })), prep({ step: 'sandbox', resume: true })]);
    assert.equal(s.session?.status, 'preparing');
    assert.equal(s.session?.resume, true);
    assert.equal(stepStates(s).sandbox, 'running');
  });

  it('sleeping accepts input (a message resumes it)', () => {
    const s = run([{ type: 'opened', sessionId: ID }, connected(view({ status: 'sleeping' }))]);
    assert.equal(inputLock(s).enabled, true);
  });

  it('heartbeats and unchanged statuses do not produce a new state', () => {
    const s = run([...started, prep({ step: 'ready', state: 'done' })]);
    assert.equal(reduce(s, ev({ id: 0, sessionId: ID, type: 'heartbeat', ts, data: {} })), s);
    assert.equal(reduce(s, { type: 'connection', connection: s.connection }), s);
  });
});

describe('state machine: conversation', () => {
  const ready = run([...started, prep({ step: 'ready', state: 'done' }), status('ready')]);

  it('concatenates assistant deltas per turn and folds tool calls with their results', () => {
    const s = run(
      [
        userMessage(1, 't1', 'hi'),
        output(2, 't1', 'Hel'),
        output(3, 't1', 'lo'),
        ev({ id: 4, sessionId: ID, type: 'tool_call', ts, data: { turnId: 't1', callId: 'c1', name: 'read_file', args: { path: 'a.ts' } } }),
        ev({ id: 5, sessionId: ID, type: 'tool_result', ts, data: { turnId: 't1', callId: 'c1', ok: true, output: 'contents' } }),
        output(6, 't1', 'Done.'),
        turnComplete(7, 't1'),
      ],
      ready,
    );
    const items = s.session!.items;
    assert.deepEqual(
      items.map((i) => i.kind),
      ['user', 'assistant', 'tool', 'assistant', 'turn'],
    );
    assert.equal(items[1]?.kind === 'assistant' && items[1].text, 'Hello');
    const tool = items[2];
    assert.ok(tool?.kind === 'tool');
    assert.equal(tool.name, 'read_file');
    assert.match(tool.args, /"path": "a.ts"/);
    assert.deepEqual(tool.result, { ok: true, output: 'contents' });
    assert.equal(new Set(items.map((i) => i.key)).size, items.length, 'keys are unique');
    assert.equal(s.session!.activeTurnId, null);
  });

  it('caps huge tool output', () => {
    const s = run(
      [
        ev({ id: 1, sessionId: ID, type: 'tool_call', ts, data: { turnId: 't', callId: 'c', name: 'x', args: {} } }),
        ev({ id: 2, sessionId: ID, type: 'tool_result', ts, data: { turnId: 't', callId: 'c', ok: true, output: 'y'.repeat(50_000) } }),
      ],
      ready,
    );
    const tool = s.session!.items[0];
    assert.ok(tool?.kind === 'tool' && tool.result);
    assert.ok(tool.result.output.length < 21_000);
    assert.match(tool.result.output, /30000 more characters/);
  });

  it('a turn error is a chat item, not a session failure', () => {
    const s = run([userMessage(1, 't1', 'x'), ev({ id: 2, sessionId: ID, type: 'error', ts, data: { code: 'agent_command_failed', message: 'exit 1', turnId: 't1' } })], ready);
    assert.equal(s.session?.status, 'ready');
    assert.equal(s.session?.items.at(-1)?.kind, 'error');
  });

  it('locks input while a message is being sent; during the turn the next one is queued', () => {
    let s = reduce(ready, { type: 'send_started' });
    assert.deepEqual(inputLock(s), { enabled: false, reason: 'Sending…' });
    s = reduce(s, { type: 'send_finished', turnId: 't9', status: 'running', text: 'q' });
    assert.equal(s.session?.activeTurnId, 't9');
    assert.equal(inputLock(s).enabled, true, 'a message sent now waits in the queue');
    s = run([userMessage(1, 't9', 'q'), { type: 'send_started' }, { type: 'send_finished', turnId: 't10', status: 'queued', text: 'next' }], s);
    assert.deepEqual(s.session?.queue, [{ turnId: 't10', text: 'next' }], 'shown as queued at once');
    const queueEvent = ev({ id: 0, sessionId: ID, type: 'queue', ts, data: { messages: [{ turnId: 't10', text: 'next' }] } });
    s = run([queueEvent, turnComplete(2, 't9'), status('running'), userMessage(3, 't10', 'next')], s);
    assert.deepEqual(s.session?.queue, [], 'a queued message that started leaves the queue');
    assert.equal(s.session?.items.filter((i) => i.kind === 'user').length, 2);
  });

  it('a turn that completed before the POST answered does not re-lock input', () => {
    const s = run([{ type: 'send_started' }, userMessage(1, 't9', 'q'), turnComplete(2, 't9'), status('ready'), { type: 'send_finished', turnId: 't9', status: 'running', text: 'q' }], ready);
    assert.equal(s.session?.activeTurnId, null);
    assert.equal(s.session?.status, 'ready');
    assert.equal(inputLock(s).enabled, true);
  });

  it('a failed send unlocks input and shows the error', () => {
    const s = run([{ type: 'send_started' }, { type: 'send_failed', error: { code: 'turn_in_progress', message: 'busy' } }], ready);
    assert.equal(s.sending, false);
    assert.equal(s.session?.items.at(-1)?.kind, 'error');
    assert.equal(inputLock(s).enabled, true);
  });

  it('toViewState derives the input lock and buttons from the state', () => {
    const v = toViewState(ready, 'signed_in', 7);
    assert.equal(v.revision, 7);
    assert.equal(v.input.enabled, true);
    assert.equal(v.canRetry, false);
    const none = toViewState(initialState, 'signed_out', 1);
    assert.equal(none.session, null);
    assert.equal(none.input.enabled, false);
  });
});

describe('state machine: the server says the step order', () => {
  // The orders of server/src/preparation/pipeline.ts stepOrder(setupInsideSandbox).
  const DEVCONTAINER: PreparationStep[] = ['disk_check', 'clone', 'branch', 'sandbox', 'setup', 'agent_start', 'session_import', 'initiate'];
  const LOCAL: PreparationStep[] = ['disk_check', 'clone', 'branch', 'setup', 'sandbox', 'agent_start', 'session_import', 'initiate'];
  const order = (s: SessionMachineState) => s.session!.steps.map((x) => x.step);
  const preparingAt = (step: PreparationStep, steps?: PreparationStep[]) =>
    view({ status: 'preparing', step, preparedAt: null, initiatedAt: null, ...(steps ? { steps } : {}) });

  it('reopening a devcontainer session at setup: sandbox (before it) is done, setup runs, in that order', () => {
    const s = run([{ type: 'opened', sessionId: ID }, { type: 'snapshot', session: preparingAt('setup', DEVCONTAINER) }]);
    assert.deepEqual(order(s), DEVCONTAINER);
    assert.equal(stepStates(s).sandbox, 'done', 'the sandbox ran before setup: not pending');
    assert.equal(stepStates(s).setup, 'running');
    assert.equal(stepStates(s).agent_start, 'pending');
    assert.deepEqual(s.stepOrder, DEVCONTAINER);
  });

  it('reconnecting to a local session at sandbox: setup is done before it, no devcontainer guess', () => {
    const before = run([...started, connected(preparingAt('clone', LOCAL)), prep({ step: 'clone' })]);
    const s = reduce(before, connected(preparingAt('sandbox', LOCAL)));
    assert.deepEqual(order(s), LOCAL);
    assert.equal(stepStates(s).setup, 'done');
    assert.equal(stepStates(s).sandbox, 'running');
  });

  it('a snapshot with the order rearranges a list laid out before it, keeping what each step shows', () => {
    const before = run([...started, prep({ step: 'disk_check', state: 'done', message: '9 GiB free', elapsedMs: 3 })]);
    assert.deepEqual(order(before), LOCAL, 'no order known yet: the default layout');
    const s = reduce(before, connected(preparingAt('disk_check', DEVCONTAINER)));
    assert.deepEqual(order(s), DEVCONTAINER);
    assert.equal(s.session!.steps[0]!.message, '9 GiB free');
  });

  it('keeps the order for the next run and the next session of the same server', () => {
    const failed = run([
      ...started,
      connected(preparingAt('disk_check', DEVCONTAINER)),
      prep({ step: 'sandbox' }),
      prep({ step: 'sandbox', state: 'failed', message: 'no docker' }),
    ]);
    assert.deepEqual(order(reduce(failed, { type: 'retry_requested' })), DEVCONTAINER);
    const next = reduce(failed, { type: 'start_requested', repo: { url: 'https://example.com/r.git' }, prompt: 'again' });
    assert.deepEqual(order(next), DEVCONTAINER, 'the step list of a new start shows the server order at once');
    assert.deepEqual(order(reduce(failed, { type: 'opened', sessionId: ID })), DEVCONTAINER);
    assert.equal(reduce(failed, { type: 'cleared' }).stepOrder, null, 'another server may have another provider');
  });

  it('an older server (no order) still gets the devcontainer guess on live events', () => {
    const s = run([...started, connected(preparingAt('branch')), prep({ step: 'sandbox' })]);
    assert.equal(s.stepOrder, null);
    assert.deepEqual(order(s).slice(3, 5), ['sandbox', 'setup']);
    assert.equal(stepStates(s).setup, 'pending');
  });

  it('a preparation restarted from an earlier step (server restart) resets the stale later steps', () => {
    const before = run([...started, connected(preparingAt('disk_check', LOCAL)), prep({ step: 'clone', state: 'done' }), prep({ step: 'setup', message: 'npm ci' })]);
    const s = reduce(before, connected(preparingAt('clone', LOCAL)));
    assert.equal(stepStates(s).clone, 'running');
    assert.equal(stepStates(s).setup, 'pending', 'no stale running step');
    const live = reduce(before, prep({ step: 'disk_check' }));
    assert.equal(stepStates(live).setup, 'pending');
    assert.equal(live.session!.steps.filter((x) => x.state === 'running').length, 1);
  });
});

describe('state machine: reconnecting locks the input', () => {
  const ready = run([...started, prep({ step: 'ready', state: 'done' }), userMessage(1, 't1', 'do it'), turnComplete(2, 't1'), status('ready'), { type: 'connection', connection: 'open' }]);

  it('locks the input with the reason and shows reconnecting in the status bar, never ready', () => {
    assert.equal(inputLock(ready).enabled, true);
    const down = reduce(ready, { type: 'connection', connection: 'reconnecting' });
    assert.deepEqual(inputLock(down), { enabled: false, reason: RECONNECTING_REASON });
    assert.equal(RECONNECTING_REASON, 'Reconnecting to the Berth server…');
    const bar = presentStatus(down);
    assert.equal(bar.text, '$(sync~spin) Berth: reconnecting…');
    assert.equal(bar.warning, true);
    assert.doesNotMatch(bar.text, /ready/);
    assert.equal(toViewState(down, 'signed_in', 1).input.enabled, false);
  });

  it('unlocks once the new connection\'s snapshot says ready; no duplicates, no old progress', () => {
    const down = reduce(ready, { type: 'connection', connection: 'reconnecting' });
    const snap = reduce(down, connected(view({ status: 'ready', lastEventId: 2 })));
    assert.equal(inputLock(snap).enabled, false, 'still locked until the stream reports open');
    const up = reduce(snap, { type: 'connection', connection: 'open' });
    assert.deepEqual(inputLock(up), { enabled: true, reason: '' });
    assert.equal(presentStatus(up).text, '$(check) Berth: ready');
    assert.deepEqual(up.session!.items, ready.session!.items);
    assert.deepEqual(up.session!.steps, ready.session!.steps);
  });

  it('stays locked when the snapshot after the reconnect says the session is preparing again', () => {
    const down = reduce(ready, { type: 'connection', connection: 'reconnecting' });
    const up = run([connected(view({ status: 'preparing', step: 'sandbox', preparedAt: null })), { type: 'connection', connection: 'open' }], down);
    assert.equal(inputLock(up).enabled, false);
    assert.match(inputLock(up).reason, /Preparing/);
  });

  it('a stream that cannot be resumed says disconnected', () => {
    const closed = reduce(ready, { type: 'stream_failed', error: { code: 'not_found', message: 'no such session' } });
    assert.equal(inputLock(closed).enabled, false);
    assert.match(inputLock(closed).reason, /Disconnected/);
    assert.match(presentStatus(closed).text, /disconnected/);
  });
});

describe('state machine: the session\'s work (changes events and the summary)', () => {
  const BASE = 'a'.repeat(40);
  const C1 = 'b'.repeat(40);
  const C2 = 'c'.repeat(40);
  const file = (path: string, status: 'added' | 'modified' | 'deleted' = 'modified') => ({ path, status, additions: 2, deletions: 1, binary: false });
  const changesEvent = (id: number, data: Partial<ChangesData> & Pick<ChangesData, 'base' | 'head'>): SessionAction =>
    ev({ id, sessionId: ID, type: 'changes', ts, data: { turnId: 't1', reason: 'turn', files: [file('src/a.ts')], additions: 2, deletions: 1, ...data } });
  const summary = (head: string, files = [file('src/a.ts')]): ChangesSummary => ({ base: BASE, head, branch: 'berth/work', files, additions: 2, deletions: 1, pushed: null });
  const readyState = run([...started, status('ready')]);

  it('a turn with changes shows a card after its output and before its completion', () => {
    const s = run(
      [
        userMessage(1, 't1', 'edit files'),
        output(2, 't1', 'done'),
        changesEvent(3, { base: BASE, head: C1, files: [file('src/a.ts'), file('new.txt', 'added'), file('old.txt', 'deleted')], additions: 5, deletions: 3 }),
        turnComplete(4, 't1'),
      ],
      readyState,
    );
    const items = s.session!.items;
    assert.deepEqual(items.map((i) => i.kind), ['user', 'assistant', 'changes', 'turn']);
    const card = items[2]!;
    assert.ok(card.kind === 'changes');
    assert.deepEqual(
      { from: card.from, to: card.to, turnId: card.turnId, reason: card.reason, additions: card.additions, deletions: card.deletions, skipped: card.skipped },
      { from: BASE, to: C1, turnId: 't1', reason: 'turn', additions: 5, deletions: 3, skipped: [] },
    );
    assert.deepEqual(card.files.map((f) => `${f.status} ${f.path}`), ['modified src/a.ts', 'added new.txt', 'deleted old.txt']);
    assert.equal(inputLock(s).enabled, true, 'the turn is over');
  });

  it('a checkpoint taken when the sandbox stopped has no turn; one that recorded nothing shows no card', () => {
    const s = run([changesEvent(5, { base: C1, head: C2, turnId: null, reason: 'stop' }), changesEvent(6, { base: C2, head: C2, files: [], additions: 0, deletions: 0 })], readyState);
    assert.equal(s.session!.items.length, 1);
    const card = s.session!.items[0]!;
    assert.ok(card.kind === 'changes' && card.reason === 'stop' && card.turnId === null);
  });

  it('skipped files are carried so that the card names them', () => {
    const s = reduce(readyState, changesEvent(3, { base: BASE, head: C1, skipped: [{ path: 'big.bin', reason: 'too_large', size: 300_000_000 }] }));
    const card = s.session!.items[0]!;
    assert.ok(card.kind === 'changes');
    assert.deepEqual(card.skipped, [{ path: 'big.bin', reason: 'too_large', size: 300_000_000 }]);
  });

  it('the cumulative summary comes from snapshots and from the summary the controller fetches', () => {
    const fromSnapshot = reduce(readyState, connected(view({ changes: summary(C1) })));
    assert.equal(fromSnapshot.session!.changes?.head, C1);
    assert.equal(hasChanges(fromSnapshot), true);
    // An older server's snapshot (no `changes`) keeps what is known.
    assert.equal(reduce(fromSnapshot, connected(view())).session!.changes?.head, C1);
    const fetched = reduce(fromSnapshot, { type: 'changes_summary', sessionId: ID, changes: summary(C2) });
    assert.equal(fetched.session!.changes?.head, C2);
    // A summary of another session (a late answer) is ignored.
    const other = reduce(fetched, { type: 'changes_summary', sessionId: 'ses_bbbbbbbbbbbbbbbbbbbbbbbb', changes: summary(C1) });
    assert.equal(other.session!.changes?.head, C2);
    assert.equal(hasChanges(reduce(readyState, connected(view({ changes: { ...summary(BASE), files: [] } })))), false, 'head = base: nothing to apply');
    assert.equal(hasChanges(readyState), false);
  });

  it('the host acts only on ranges and files the chat was shown (the webview is untrusted)', () => {
    const s = run([connected(view({ changes: summary(C2, [file('src/a.ts'), file('b.txt', 'added')]) })), changesEvent(3, { base: BASE, head: C1 })], readyState);
    assert.equal(isKnownRange(s.session, BASE, C1), true, 'a card');
    assert.equal(isKnownRange(s.session, BASE, C2), true, 'the whole session');
    assert.equal(isKnownRange(s.session, C1, C2), false);
    assert.equal(findChangedFile(s.session, BASE, C1, 'src/a.ts')?.status, 'modified');
    assert.equal(findChangedFile(s.session, BASE, C2, 'b.txt')?.status, 'added');
    assert.equal(findChangedFile(s.session, BASE, C1, 'b.txt'), null, 'not in that card');
    assert.equal(findChangedFile(s.session, BASE, C1, '../../etc/passwd'), null);
    assert.equal(findChangedFile(null, BASE, C1, 'src/a.ts'), null);
  });

  it('replayed on reopen, the cards come back once each, in order', () => {
    const events = [userMessage(1, 't1', 'edit'), changesEvent(2, { base: BASE, head: C1 }), turnComplete(3, 't1'), userMessage(4, 't2', 'more'), changesEvent(5, { base: C1, head: C2 }), turnComplete(6, 't2')];
    const opened = run([{ type: 'opened', sessionId: ID }, { type: 'snapshot', session: view({ changes: summary(C2), lastEventId: 6 }) }, ...events], initialState);
    const cards = opened.session!.items.filter((i) => i.kind === 'changes');
    assert.deepEqual(cards.map((c) => c.kind === 'changes' && `${c.from.slice(0, 1)}→${c.to.slice(0, 1)}`), ['a→b', 'b→c']);
    assert.equal(opened.session!.changes?.head, C2);
    const view2 = toViewState(opened, 'signed_in', 1, { head: C2, how: 'worktree', at: ts });
    assert.equal(view2.applied?.head, C2);
  });

  it('a turn shows the tokens its end reported; the model comes with the snapshot', () => {
    let s = run([...started, userMessage(1, 't1', 'q'), status('running')]);
    s = reduce(s, ev({ id: 2, sessionId: ID, type: 'turn_complete', ts, data: { turnId: 't1', status: 'completed', durationMs: 5, usage: { promptTokens: 9, completionTokens: 3 } } }));
    const turn = s.session?.items.at(-1);
    assert.deepEqual(turn?.kind === 'turn' && turn.usage, { promptTokens: 9, completionTokens: 3 });
    s = reduce(s, ev({ id: 3, sessionId: ID, type: 'turn_complete', ts, data: { turnId: 't2', status: 'completed', durationMs: 5 } }));
    assert.equal(s.session?.items.at(-1)?.kind === 'turn' && 'usage' in s.session.items.at(-1)!, false, 'none reported, none shown');
  });
});
