// The chat webview: renders the state the extension host posts, and sends intents back.
// It keeps no session logic of its own; the host's state machine is the one source of truth.
import './nonce';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import {
  HostToWebview,
  applyViewPatch,
  type ChatSession,
  type ChatViewState,
  type MessageHandlers,
  type WebviewToHost,
} from '@berth/protocol';
import { renderChangesSummary, type ChangesActions } from './components/changes';
import { Composer } from './components/composer';
import { Conversation } from './components/conversation';
import { h } from './components/dom';
import { renderSteps, StepClock, tickSteps } from './components/steps';
import { renderWelcome } from './components/welcome';
import { formatElapsed, formatTokens, sessionTokens, shortRepo, STATUS_TEXT } from './format';

interface VsCodeApi<S> {
  postMessage(message: WebviewToHost): void;
  getState(): S | undefined;
  setState(state: S): void;
}
declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

/** What survives the view being hidden (the webview is destroyed; this is restored with it). */
interface PersistedState {
  view: ChatViewState | null;
  draft: string;
}

const vscode = acquireVsCodeApi<PersistedState>();
const persisted: PersistedState = vscode.getState() ?? { view: null, draft: '' };
const post = (message: WebviewToHost) => vscode.postMessage(message);

const header = h('header', { class: 'header' });
const welcome = h('div', { class: 'welcome-slot' });
const preparation = h('section', { class: 'preparation', attrs: { 'aria-label': 'Preparation' } });
const errorBanner = h('section', { class: 'error-banner', attrs: { role: 'alert', tabindex: '-1' } });
const pendingPrompt = h('div', { class: 'pending-prompt' });
/** Messages waiting for the agent: after the conversation, each with Cancel. */
const queued = h('section', { class: 'queued', attrs: { 'aria-label': 'Queued messages' } });
const changesActions: ChangesActions = {
  review: (range) => post({ type: 'reviewChanges', range }),
  openFile: (from, to, path) => post({ type: 'openFileDiff', from, to, path }),
  apply: () => post({ type: 'applyChanges' }),
  push: () => post({ type: 'pushChanges' }),
  openPullRequest: () => post({ type: 'openPullRequest' }),
};
const conversation = new Conversation(changesActions);
/** The session's whole work, between the conversation and the composer. */
const changesSummary = h('section', { class: 'changes-summary', attrs: { 'aria-label': 'The session\'s changes' } });
const composer = new Composer(
  {
    send: (text) => post({ type: 'send', text }),
    interrupt: () => post({ type: 'interrupt' }),
    draftChanged: (draft) => {
      persisted.draft = draft;
      vscode.setState(persisted);
    },
  },
  persisted.draft,
);
const scroller = h('main', { class: 'scroller' }, welcome, pendingPrompt, preparation, conversation.element, queued, errorBanner);
document.body.append(h('div', { class: 'app' }, header, scroller, changesSummary, composer.element));

const clock = new StepClock();
let current: ChatViewState | null = null;
let renderedSessionId: string | null = null;

function render(state: ChatViewState): void {
  const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const session = state.session;
  if ((session?.sessionId ?? null) !== renderedSessionId) {
    renderedSessionId = session?.sessionId ?? null;
    clock.reset();
  }
  // Parts are rebuilt only when what they show changed: keeps focus, open <details> and spinners.
  patch(welcome, [session === null, state.auth], () => (session ? [] : [renderWelcome(state.auth, (command) => post({ type: 'command', command }))]));
  // Tokens change once per turn: counted only when the number of items did.
  patch(header, [session?.repo, session?.sessionId, session?.status, state.connection, session?.model, session?.items.length], () => (session ? renderHeader(state, session) : []));
  patch(pendingPrompt, [session?.prompt, session?.status, session?.items.some((i) => i.kind === 'user')], () =>
    session ? renderPendingPrompt(session) : [],
  );
  patch(preparation, [session?.sessionId, session?.status, session?.resume, session?.steps], () => (session ? renderPreparation(session) : []));
  const failed = session?.status === 'failed';
  patch(errorBanner, [failed, session?.error, state.canRetry], () => (session && failed ? renderError(state, session) : []));
  errorBanner.hidden = !failed;
  conversation.update(session?.items ?? []);
  patch(queued, [session?.queue], () => (session ? renderQueued(session) : []));
  patch(changesSummary, [session?.changes, state.applied, session?.repo?.branch], () =>
    renderChangesSummary(session?.changes ?? null, state.applied ?? null, session?.repo?.branch, changesActions),
  );
  composer.update(state);
  if (nearBottom) {
    scroller.scrollTop = scroller.scrollHeight;
    // Web components (the Retry button) lay out a frame later and grow the page: follow them.
    requestAnimationFrame(() => (scroller.scrollTop = scroller.scrollHeight));
  }
}

const signatures = new WeakMap<HTMLElement, string>();

/** Replaces the children of `container` when `inputs` differ from the last time. */
function patch(container: HTMLElement, inputs: unknown[], build: () => Node[]): void {
  const signature = JSON.stringify(inputs);
  if (signatures.get(container) === signature) return;
  signatures.set(container, signature);
  container.replaceChildren(...build());
}

function renderHeader(state: ChatViewState, session: ChatSession): Node[] {
  const repo = session.repo ? `${shortRepo(session.repo.url)}${session.repo.branch ? ` @ ${session.repo.branch}` : ''}` : session.sessionId ?? '';
  // While the stream is down the status is only the last one known: shown faded, not as current.
  const stale = state.connection === 'reconnecting' || state.connection === 'closed';
  const nodes: Node[] = [
    h('div', { class: 'header-repo', text: repo, attrs: { title: session.repo?.url ?? '' } }),
    h('span', {
      class: `status-pill status-pill--${session.status}${stale ? ' status-pill--stale' : ''}`,
      text: STATUS_TEXT[session.status],
      attrs: { title: stale ? 'Last known status: the connection to the Berth server is down' : undefined },
    }),
  ];
  if (stale) {
    nodes.push(h('div', { class: 'header-connection', text: state.connection === 'closed' ? 'Disconnected' : 'Reconnecting…' }));
  }
  const tokens = sessionTokens(session.items);
  const meta = [session.model, tokens && `${formatTokens(tokens)} in this session`].filter(Boolean).join(' · ');
  if (meta) nodes.push(h('div', { class: 'header-meta', text: meta }));
  return nodes;
}

function renderQueued(session: ChatSession): Node[] {
  return session.queue.map((message, index) =>
    h(
      'div',
      { class: 'msg msg--user msg--queued', attrs: { 'data-turn-id': message.turnId } },
      h('div', { class: 'msg-role', text: index === 0 ? 'Queued: runs when the agent is free' : `Queued (${index + 1})` }),
      h('div', { class: 'msg-text', text: message.text }),
      h('vscode-button', {
        text: 'Cancel',
        class: 'cancel-queued',
        attrs: { secondary: true, title: 'Remove this message before it runs' },
        on: { click: () => post({ type: 'cancelQueued', turnId: message.turnId }) },
      }),
    ),
  );
}

/** The first prompt is shown while the session prepares; the server's user_message replaces it. */
function renderPendingPrompt(session: ChatSession): Node[] {
  if (!session.prompt || session.items.some((i) => i.kind === 'user')) return [];
  if (session.status !== 'preparing' && session.status !== 'failed') return [];
  return [
    h(
      'div',
      { class: 'msg msg--user msg--pending' },
      h('div', { class: 'msg-role', text: 'You (sent when the session is ready)' }),
      h('div', { class: 'msg-text', text: session.prompt }),
    ),
  ];
}

function renderPreparation(session: ChatSession): Node[] {
  const started = session.steps.some((s) => s.state !== 'pending');
  if (session.status === 'preparing' || session.status === 'failed') {
    const title =
      session.status === 'failed' ? 'Preparation failed' : session.resume ? 'Resuming the session…' : 'Preparing the session…';
    return [h('h2', { class: 'preparation-title', text: title }), renderSteps(session.steps, clock, Date.now())];
  }
  if (!started) return [];
  // After ready, the run stays available but folded.
  const total = session.steps.reduce((sum, s) => sum + (s.state === 'done' ? s.elapsedMs : 0), 0);
  return [
    h(
      'details',
      { class: 'preparation-done' },
      h('summary', { text: `Session prepared${total ? ` in ${formatElapsed(total)}` : ''}` }),
      renderSteps(session.steps, clock, Date.now()),
    ),
  ];
}

function renderError(state: ChatViewState, session: ChatSession): Node[] {
  const error = session.error;
  return [
    h('div', { class: 'error-title', text: 'The session failed' }),
    h('div', { class: 'error-message', text: error?.message ?? 'Unknown error' }),
    error && h('div', { class: 'error-meta', text: `${error.code}${error.step ? ` at step ${error.step}` : ''}` }),
    h(
      'div',
      { class: 'error-buttons' },
      h('vscode-button', {
        text: 'Retry',
        class: 'retry-button',
        attrs: { disabled: !state.canRetry },
        on: { click: () => post({ type: 'retry' }) },
      }),
      h('vscode-button', { text: 'Show Logs', attrs: { secondary: true }, on: { click: () => post({ type: 'command', command: 'showLogs' }) } }),
    ),
  ].filter((n): n is HTMLDivElement => !!n);
}

/** Saving the whole state costs its size: at most once a second, and when the view goes away. */
const SAVE_INTERVAL_MS = 1000;
let saveTimer: ReturnType<typeof setTimeout> | null = null;
function saveSoon(): void {
  saveTimer ??= setTimeout(saveNow, SAVE_INTERVAL_MS);
}
function saveNow(): void {
  if (saveTimer) clearTimeout(saveTimer);
  saveTimer = null;
  persisted.view = current;
  vscode.setState(persisted);
}
window.addEventListener('pagehide', saveNow);
document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && saveNow());

/** Per update: its size as posted, and this webview's time to apply and render it (read by the e2e). */
interface UpdateRecord {
  type: 'state' | 'patch';
  bytes: number;
  ms: number;
}
const updates: UpdateRecord[] = [];
(window as unknown as { __berthUpdates: UpdateRecord[] }).__berthUpdates = updates;
const MAX_RECORDS = 50_000;

function applyState(state: ChatViewState, receivedAt: number): void {
  current = state;
  saveSoon();
  render(state);
  const ms = performance.now() - receivedAt;
  requestAnimationFrame(() => post({ type: 'rendered', revision: state.revision, ms }));
}

const handlers: MessageHandlers<HostToWebview> = {
  state: (message) => applyState(message.state, performance.now()),
  patch: (message) => {
    const receivedAt = performance.now();
    const next = current && applyViewPatch(current, message.patch);
    if (!next) {
      post({ type: 'resync' });
      return;
    }
    applyState(next, receivedAt);
  },
  reveal: (message) => {
    if (message.target === 'error' && !errorBanner.hidden) {
      errorBanner.scrollIntoView({ block: 'nearest' });
      (errorBanner.querySelector<HTMLElement>('.retry-button') ?? errorBanner).focus();
    } else {
      composer.focus();
    }
  },
  restoreDraft: (message) => composer.restore(message.text),
};

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const receivedAt = performance.now();
  const parsed = HostToWebview.safeParse(event.data);
  if (!parsed.success) return;
  const message = parsed.data;
  void (handlers[message.type] as (m: HostToWebview) => void)(message);
  if (message.type === 'state' || message.type === 'patch') {
    const ms = performance.now() - receivedAt;
    if (updates.length >= MAX_RECORDS) updates.splice(0, updates.length / 2);
    updates.push({ type: message.type, bytes: JSON.stringify(event.data).length, ms });
  }
});

// The running step's clock ticks between server updates.
setInterval(() => {
  if (current?.session) tickSteps(preparation, current.session.steps, clock, Date.now());
}, 1000);

// Paint the last known state at once (the view was hidden and is shown again), then ask for the live one.
if (persisted.view) {
  current = persisted.view;
  render(persisted.view);
}
post({ type: 'ready' });
