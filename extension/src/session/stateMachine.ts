// The one owner of a session's client-side state: a pure reducer (no vscode, no I/O, no clock).
// The status bar and the chat webview both render from what it produces.
import {
  LIMITS,
  PREPARATION_STEPS,
  PROGRESS_STEP_LABELS,
  type AppliedWork,
  type AuthState,
  type ChangedFile,
  type ChangesData,
  type ChangesSummary,
  type ChatItem,
  type ChatSession,
  type ChatViewState,
  type ConnectionState,
  type ShownError,
  type InputLock,
  type PersistedEvent,
  type PreparationStep,
  type PreparingData,
  type ProgressStep,
  type RepoSpec,
  type SessionStatus,
  type SessionView,
  type StepView,
  type StreamEvent,
} from '@berth/protocol';

/** The preparation steps in the order the server's provider runs them; null = not told (an older server). */
export type StepOrder = readonly PreparationStep[] | null;

export interface SessionMachineState {
  session: ChatSession | null;
  /** From the server's snapshots; kept across sessions of one server (it is the provider's, not the session's). */
  stepOrder: StepOrder;
  connection: ConnectionState;
  /** A message POST is in flight. */
  sending: boolean;
  /**
   * A preparation ran and its `ready` has not arrived yet: the input stays locked until it does
   * (the server says `running` for the first prompt's turn just before it says `ready`).
   */
  awaitingReady?: boolean;
}

export type SessionAction =
  /** No current session. */
  | { type: 'cleared' }
  /** Enter was pressed: show "preparing" at once, before the server has answered. */
  | { type: 'start_requested'; repo: RepoSpec; prompt: string | null }
  | { type: 'start_accepted'; sessionId: string; status: SessionStatus }
  /** A request failed (start, open or retry): shown as a failed session that Retry repeats. */
  | { type: 'request_failed'; error: ShownError }
  /** An existing session is being reopened: everything is rebuilt from the server. */
  | { type: 'opened'; sessionId: string }
  | { type: 'snapshot'; session: SessionView }
  | { type: 'event'; event: StreamEvent }
  | { type: 'connection'; connection: ConnectionState }
  | { type: 'retry_requested' }
  | { type: 'send_started' }
  /** The server accepted a message; its turn is in progress until `turn_complete` arrives. */
  | { type: 'send_finished'; turnId: string; status: SessionStatus | 'queued'; text: string }
  | { type: 'send_failed'; error: ShownError }
  /** The stream cannot be resumed (the session is gone or access was revoked). */
  | { type: 'stream_failed'; error: ShownError }
  /** The server's cumulative summary of the session's work, fetched after a checkpoint or a push. */
  | { type: 'changes_summary'; sessionId: string; changes: ChangesSummary | null };

export const initialState: SessionMachineState = { session: null, stepOrder: null, connection: 'idle', sending: false };

/** Tool output and arguments are capped so one huge result cannot bloat every state posted to the webview. */
export const MAX_TOOL_TEXT = 20_000;

export function reduce(state: SessionMachineState, action: SessionAction): SessionMachineState {
  const next = reduceSession(state, action);
  const awaitingReady = awaitsReady(state, next, action);
  return (next.awaitingReady ?? false) === awaitingReady ? next : { ...next, awaitingReady };
}

function awaitsReady(before: SessionMachineState, after: SessionMachineState, action: SessionAction): boolean {
  const status = after.session?.status;
  if (status === 'preparing') return true;
  if (status !== 'running' || !before.awaitingReady) return false;
  // Still running the first prompt's turn: locked until the `ready` progress event (a snapshot, on
  // a reconnect, has none to wait for: its events were volatile).
  if (action.type === 'snapshot') return false;
  if (action.type === 'event' && (action.event.type === 'connected' || (action.event.type === 'preparing' && action.event.data.step === 'ready'))) return false;
  return true;
}

function reduceSession(state: SessionMachineState, action: SessionAction): SessionMachineState {
  switch (action.type) {
    case 'cleared':
      return initialState;
    case 'start_requested':
      return {
        ...initialState,
        stepOrder: state.stepOrder,
        session: {
          ...emptySession(null, state.stepOrder),
          repo: { url: action.repo.url, ...(action.repo.branch ? { branch: action.repo.branch } : {}) },
          prompt: action.prompt,
          step: 'queued',
        },
      };
    case 'start_accepted':
      return withSession(state, (s) => ({ ...s, sessionId: action.sessionId, ...statusChange(s, action.status, s.step, state.stepOrder) }));
    case 'request_failed':
      return withSession(state, (s) => ({
        ...s,
        status: 'failed',
        step: 'failed',
        error: action.error,
        steps: settleSteps(s.steps, 'failed'),
      }));
    case 'opened':
      return { ...initialState, stepOrder: state.stepOrder, session: emptySession(action.sessionId, state.stepOrder) };
    case 'snapshot':
      return applyView(state, action.session);
    case 'event':
      return applyEvent(state, action.event);
    case 'connection':
      return state.connection === action.connection ? state : { ...state, connection: action.connection };
    case 'retry_requested':
      return withSession(state, (s) => ({
        ...s,
        status: 'preparing',
        step: 'queued',
        error: null,
        resume: false,
        steps: freshSteps(state.stepOrder),
      }));
    case 'send_started':
      return { ...state, sending: true };
    case 'send_finished':
      return withSession({ ...state, sending: false }, (s) => {
        const { turnId, status } = action;
        if (status === 'queued') {
          // Shown as waiting at once; the stream's `queue` event (already here, or to come) agrees.
          if (s.queue.some((m) => m.turnId === turnId) || s.items.some((i) => 'turnId' in i && i.turnId === turnId)) return s;
          return { ...s, queue: [...s.queue, { turnId, text: action.text }] };
        }
        // The stream may have delivered the turn (even its completion) before the POST answered.
        if (s.items.some((i) => 'turnId' in i && i.turnId === turnId)) return s;
        const withStatus = s.status === status ? s : { ...s, ...statusChange(s, status, status === 'preparing' ? 'queued' : null, state.stepOrder) };
        return { ...withStatus, activeTurnId: turnId };
      });
    case 'send_failed':
      return withSession({ ...state, sending: false }, (s) => addLocalError(s, action.error));
    case 'stream_failed':
      return withSession({ ...state, connection: 'closed' }, (s) => addLocalError(s, action.error));
    case 'changes_summary':
      return withSession(state, (s) => (s.sessionId === action.sessionId ? { ...s, changes: action.changes } : s));
  }
}

function addLocalError(s: ChatSession, error: ShownError): ChatSession {
  return { ...s, items: [...s.items, { kind: 'error', key: `local-${s.items.length}`, ...error }] };
}

function emptySession(sessionId: string | null, order: StepOrder): ChatSession {
  return {
    sessionId,
    repo: null,
    prompt: null,
    status: 'preparing',
    step: null,
    resume: false,
    steps: freshSteps(order),
    items: [],
    activeTurnId: null,
    error: null,
    changes: null,
    queue: [],
    model: null,
  };
}

function withSession(state: SessionMachineState, update: (s: ChatSession) => ChatSession): SessionMachineState {
  return state.session ? { ...state, session: update(state.session) } : state;
}

function freshSteps(order: StepOrder): StepView[] {
  return (order ?? PREPARATION_STEPS).map(pendingStep);
}

function pendingStep(step: PreparationStep): StepView {
  return { step, state: 'pending', message: '', elapsedMs: 0 };
}

/** The list laid out in the server's order, keeping what each step already shows. */
function inOrder(steps: StepView[], order: readonly PreparationStep[]): StepView[] {
  return order.map((name) => steps.find((s) => s.step === name) ?? pendingStep(name));
}

function isPipelineStep(step: ProgressStep | null | undefined): step is PreparationStep {
  return step != null && (PREPARATION_STEPS as readonly string[]).includes(step);
}

/** Closes a preparation run: what ran is done, what never reported was skipped (or, on failure, stays pending). */
function settleSteps(steps: StepView[], outcome: 'ready' | 'failed'): StepView[] {
  return steps.map((s) => {
    if (s.state === 'running') return { ...s, state: outcome === 'ready' ? 'done' : 'failed' };
    if (s.state === 'pending' && outcome === 'ready') return { ...s, state: 'skipped' };
    return s;
  });
}

/**
 * Steps are sequential: when `step` moves, everything before it (in the list) has finished. A step
 * that never reported was skipped — or, when rebuilding from a snapshot (`unreported: 'done'`), its
 * events were volatile and are gone, and the pipeline got past it. Nothing after `step` has run yet:
 * what a later step still shows is from an attempt the server restarted (stale progress), so it is reset.
 */
function advanceTo(
  steps: StepView[],
  step: PreparationStep,
  update: Partial<StepView>,
  order: StepOrder,
  unreported: 'skipped' | 'done' = 'skipped',
): StepView[] {
  const list = order ? steps : sandboxFirst(steps, step);
  const index = list.findIndex((s) => s.step === step);
  return list.map((s, i) => {
    if (i < index && s.state === 'running') return { ...s, state: 'done' };
    if (i < index && s.state === 'pending') return { ...s, state: unreported };
    if (i === index) return { ...s, ...update };
    if (i > index && s.state !== 'pending') return pendingStep(s.step);
    return s;
  });
}

/**
 * An older server does not say its step order. With a provider whose setup runs inside the sandbox
 * (devcontainer), `sandbox` starts before `setup`: the list then shows them in that order instead
 * of marking setup skipped.
 */
function sandboxFirst(steps: StepView[], step: PreparationStep): StepView[] {
  const setupAt = steps.findIndex((s) => s.step === 'setup');
  const sandboxAt = steps.findIndex((s) => s.step === 'sandbox');
  if (step !== 'sandbox' || setupAt < 0 || setupAt > sandboxAt || steps[setupAt]!.state !== 'pending') return steps;
  const list = steps.slice();
  [list[setupAt], list[sandboxAt]] = [list[sandboxAt]!, list[setupAt]!];
  return list;
}

/** A status change from the server; entering `preparing` from elsewhere starts a new run (retry or resume). */
function statusChange(s: ChatSession, status: SessionStatus, step: ProgressStep | null, order: StepOrder): Partial<ChatSession> {
  if (status === 'preparing') {
    const newRun = s.status !== 'preparing';
    return {
      status,
      step,
      ...(newRun ? { steps: freshSteps(order), error: null, resume: s.status === 'sleeping' } : {}),
    };
  }
  if (status === 'failed') return { status, step, steps: settleSteps(s.steps, 'failed') };
  return {
    status,
    step,
    error: null,
    steps: s.status === 'preparing' ? settleSteps(s.steps, 'ready') : s.steps,
  };
}

/** A session snapshot (the GET on reopen, or the stream's `connected`): it also tells the step order. */
function applyView(state: SessionMachineState, view: SessionView): SessionMachineState {
  const stepOrder = view.steps?.length ? view.steps : state.stepOrder;
  return withSession({ ...state, stepOrder }, (s) => applySnapshot(s, view, stepOrder));
}

function applySnapshot(current: ChatSession, view: SessionView, order: StepOrder): ChatSession {
  const s = order ? { ...current, steps: inOrder(current.steps, order) } : current;
  let next: ChatSession = {
    ...s,
    sessionId: view.id,
    repo: view.repo,
    prompt: view.prompt ?? null,
    // An older server does not send it: keep what is known.
    changes: view.changes !== undefined ? view.changes : s.changes,
    queue: view.queue ?? s.queue,
    model: view.model ?? s.model,
    ...statusChange(s, view.status, view.step, order),
  };
  if (view.status === 'preparing' && isPipelineStep(view.step) && outOfStep(next.steps, view.step)) {
    // Reconnected mid-run: the step events before now were volatile and are gone; infer them.
    next = { ...next, steps: advanceTo(next.steps, view.step, { state: 'running' }, order, 'done') };
  }
  if (view.status === 'failed') {
    next = { ...next, error: view.lastError ?? { code: 'preparation_failed', message: 'Preparation failed' } };
    const failedStep = view.lastError?.step;
    if (isPipelineStep(failedStep)) next = { ...next, steps: advanceTo(next.steps, failedStep, { state: 'failed' }, order, 'done') };
  }
  return next;
}

/**
 * Whether the list is not yet at `step` (it never reported), or is past it: a server restarted
 * the preparation from an earlier step, and what the list shows beyond it is stale.
 */
function outOfStep(steps: StepView[], step: PreparationStep): boolean {
  const at = steps.findIndex((s) => s.step === step);
  return at >= 0 && (steps[at]!.state === 'pending' || steps.slice(at + 1).some((s) => s.state !== 'pending'));
}

function applyPreparing(s: ChatSession, data: PreparingData, order: StepOrder): ChatSession {
  const resume = data.resume ?? s.resume;
  if (data.step === 'ready') {
    // The server may already have said `running` (the first prompt's turn started): keep that.
    const status = s.status === 'running' ? 'running' : 'ready';
    return { ...s, ...statusChange(s, status, status === 'ready' ? 'ready' : s.step, order), resume };
  }
  if (data.step === 'failed') {
    const running = s.steps.find((step) => step.state === 'running')?.step;
    // The failed step's own event (with its step) usually came first: keep that more precise error.
    const known = s.error?.step ? s.error : null; // reset when the run started, so it is this run's
    return {
      ...s,
      ...statusChange(s, 'failed', 'failed', order),
      resume,
      error: known ?? { code: 'preparation_failed', message: data.message, ...(running ? { step: running } : {}) },
    };
  }
  const base: ChatSession = { ...s, ...statusChange(s, 'preparing', data.step, order), resume };
  if (!isPipelineStep(data.step)) return base; // queued
  const update: Partial<StepView> = {
    state: data.state === 'started' ? 'running' : data.state,
    message: data.message,
    elapsedMs: data.elapsedMs,
    ...(data.detail !== undefined ? { detail: data.detail } : {}),
  };
  const next = { ...base, steps: advanceTo(base.steps, data.step, update, order) };
  if (data.state === 'failed') {
    const known = s.error?.step === data.step ? s.error : null;
    return { ...next, status: 'failed', error: known ?? { code: 'preparation_failed', message: data.message, step: data.step } };
  }
  return next;
}

function applyEvent(state: SessionMachineState, event: StreamEvent): SessionMachineState {
  switch (event.type) {
    case 'heartbeat':
      return state;
    case 'connected':
      return applyView(state, event.data.session);
    case 'status':
      return withSession(state, (s) =>
        s.status === event.data.status && s.step === event.data.step
          ? s
          : { ...s, ...statusChange(s, event.data.status, event.data.step, state.stepOrder) },
      );
    case 'preparing':
      return withSession(state, (s) => applyPreparing(s, event.data, state.stepOrder));
    case 'queue':
      return withSession(state, (s) => ({ ...s, queue: event.data.messages }));
    default:
      return withSession(state, (s) => applyPersisted(s, event));
  }
}

function applyPersisted(s: ChatSession, event: PersistedEvent): ChatSession {
  const key = `e${event.id}`;
  switch (event.type) {
    case 'user_message':
      return {
        ...s,
        // A queued message that started leaves the queue (its `queue` event may come later).
        queue: s.queue.some((m) => m.turnId === event.data.turnId) ? s.queue.filter((m) => m.turnId !== event.data.turnId) : s.queue,
        activeTurnId: event.data.turnId,
        items: [...s.items, { kind: 'user', key, turnId: event.data.turnId, text: event.data.text }],
      };
    case 'assistant_output': {
      const { turnId, text } = event.data;
      const last = s.items.at(-1);
      // Deltas of one turn concatenate; a tool call in between starts a new text block.
      if (last?.kind === 'assistant' && last.turnId === turnId) {
        return { ...s, items: [...s.items.slice(0, -1), { ...last, text: last.text + text }] };
      }
      return { ...s, items: [...s.items, { kind: 'assistant', key, turnId, text }] };
    }
    case 'tool_call':
      return {
        ...s,
        items: [
          ...s.items,
          {
            kind: 'tool',
            key,
            turnId: event.data.turnId,
            callId: event.data.callId,
            name: event.data.name,
            args: cap(stringifyArgs(event.data.args)),
            result: null,
          },
        ],
      };
    case 'tool_result': {
      const { callId, ok, output } = event.data;
      const index = s.items.findLastIndex((i) => i.kind === 'tool' && i.callId === callId);
      const result = { ok, output: cap(output) };
      if (index < 0) {
        return {
          ...s,
          items: [
            ...s.items,
            { kind: 'tool', key, turnId: event.data.turnId, callId, name: '(unknown tool)', args: '', result },
          ],
        };
      }
      const items = s.items.slice();
      items[index] = { ...(items[index] as Extract<ChatItem, { kind: 'tool' }>), result };
      return { ...s, items };
    }
    case 'turn_complete':
      return {
        ...s,
        activeTurnId: s.activeTurnId === event.data.turnId ? null : s.activeTurnId,
        items: [
          ...s.items,
          {
            kind: 'turn',
            key,
            turnId: event.data.turnId,
            status: event.data.status,
            durationMs: event.data.durationMs,
            ...(event.data.usage ? { usage: event.data.usage } : {}),
          },
        ],
      };
    case 'changes':
      return event.data.files.length || event.data.skipped?.length ? { ...s, items: [...s.items, changesCard(key, event.data)] } : s;
    case 'error': {
      const { code, message, step, turnId } = event.data;
      if (step !== undefined && turnId === undefined) {
        // A preparation failure: it is the session's error (banner + Retry) while the session is failed,
        // or while its step is still running (the server persists it just before it says `failed`);
        // replayed after a successful retry it is history and does not change the status.
        const current = s.status === 'failed' || (s.status === 'preparing' && s.steps.some((st) => st.step === step && st.state === 'running'));
        return current ? { ...s, error: { code, message, step } } : s;
      }
      return {
        ...s,
        items: [
          ...s.items,
          { kind: 'error', key, code, message, ...(step ? { step } : {}), ...(turnId ? { turnId } : {}) },
        ],
      };
    }
  }
}

/** A checkpoint's card: its range is the previous checkpoint (the event's `base`) → this one. */
function changesCard(key: string, data: ChangesData): ChatItem {
  return {
    kind: 'changes',
    key,
    turnId: data.turnId,
    reason: data.reason,
    from: data.base,
    to: data.head,
    files: data.files,
    additions: data.additions,
    deletions: data.deletions,
    skipped: data.skipped ?? [],
  };
}

function stringifyArgs(args: unknown): string {
  if (typeof args === 'string') return args;
  try {
    return JSON.stringify(args, null, 2) ?? '';
  } catch {
    return String(args);
  }
}

function cap(text: string): string {
  return text.length > MAX_TOOL_TEXT ? `${text.slice(0, MAX_TOOL_TEXT)}\n… (${text.length - MAX_TOOL_TEXT} more characters)` : text;
}

// ---- derived views ----

export function stepLabel(step: ProgressStep | null): string {
  return step ? PROGRESS_STEP_LABELS[step] : 'starting';
}

export const RECONNECTING_REASON = 'Reconnecting to the Berth server…';
export const DISCONNECTED_REASON = 'Disconnected from the Berth server. Reopen the session to continue.';

/**
 * The chat input unlocks only on `ready` (or `sleeping`, which a message resumes), never during a turn,
 * and never while the stream is down: the status is stale then, and a message would fail. It unlocks
 * again once the `connected` snapshot of the new connection has been applied (the stream client
 * reports `open` after it).
 */
export function inputLock(state: SessionMachineState): InputLock {
  const s = state.session;
  if (!s) return { enabled: false, reason: 'Start a session to chat.' };
  if (state.connection === 'reconnecting') return { enabled: false, reason: RECONNECTING_REASON };
  if (state.connection === 'closed') return { enabled: false, reason: DISCONNECTED_REASON };
  if (s.status === 'preparing') {
    return { enabled: false, reason: s.sessionId ? `Preparing the session: ${stepLabel(s.step)}…` : 'Starting the session…' };
  }
  if (s.status === 'failed') return { enabled: false, reason: 'The session failed. Retry to continue.' };
  if (state.awaitingReady) return { enabled: false, reason: 'The agent is starting on your prompt…' };
  if (state.sending) return { enabled: false, reason: 'Sending…' };
  // While the agent works a message waits in the session's queue and runs after the turn.
  if (s.queue.length >= LIMITS.queuedMessages) return { enabled: false, reason: `${LIMITS.queuedMessages} messages are waiting already.` };
  return { enabled: true, reason: '' };
}

export function canRetry(state: SessionMachineState): boolean {
  return state.session?.status === 'failed';
}

export function canInterrupt(state: SessionMachineState): boolean {
  const s = state.session;
  // Only a turn can be stopped: not a preparation (whose first prompt is already recorded) nor a failed session.
  return !!s?.sessionId && (s.status === 'running' || (s.status === 'ready' && s.activeTurnId !== null));
}

/** Whether the session has work that is not in its base commit yet. */
export function hasChanges(state: SessionMachineState): boolean {
  const changes = state.session?.changes;
  return !!changes && changes.head !== changes.base && changes.files.length > 0;
}

export function toViewState(state: SessionMachineState, auth: AuthState, revision: number, applied: AppliedWork | null = null): ChatViewState {
  return {
    revision,
    auth,
    connection: state.connection,
    session: state.session,
    sending: state.sending,
    input: inputLock(state),
    canRetry: canRetry(state),
    canInterrupt: canInterrupt(state),
    applied,
  };
}

/**
 * Whether `from → to` is a range this state showed: a changes card, or the session's whole work
 * (base → head). The webview is untrusted: the host acts only on ranges it sent it.
 */
export function isKnownRange(session: ChatSession | null, from: string, to: string): boolean {
  if (!session) return false;
  if (session.changes && session.changes.base === from && session.changes.head === to) return true;
  return session.items.some((i) => i.kind === 'changes' && i.from === from && i.to === to);
}

/** The changed file at `path` in a known range (see isKnownRange), or null. */
export function findChangedFile(session: ChatSession | null, from: string, to: string, path: string): ChangedFile | null {
  if (!session) return null;
  const lists: ChangedFile[][] = [];
  if (session.changes && session.changes.base === from && session.changes.head === to) lists.push(session.changes.files);
  for (const item of session.items) if (item.kind === 'changes' && item.from === from && item.to === to) lists.push(item.files);
  for (const files of lists) {
    const file = files.find((f) => f.path === path);
    if (file) return file;
  }
  return null;
}
