import { z } from 'zod';
import { LIMITS } from './api';
import { ErrorInfo, PreparationStep, ProgressStep, SessionStatus, TurnStatus } from './events';

/**
 * Messages between the extension host and the chat webview.
 * The host owns the session state machine; the webview only renders a snapshot of it and sends intents.
 * Both sides parse what they receive with these schemas (the host treats the webview as untrusted).
 */

// ---- the state the webview renders ----

export const StepViewState = z.enum(['pending', 'running', 'done', 'skipped', 'failed']);
export type StepViewState = z.infer<typeof StepViewState>;

export const StepView = z.object({
  step: PreparationStep,
  state: StepViewState,
  message: z.string(),
  /** Elapsed time reported by the server for this step (live steps keep ticking in the webview). */
  elapsedMs: z.number().nonnegative(),
  /** Latest log line of the step (e.g. a container build line). */
  detail: z.string().optional(),
});
export type StepView = z.infer<typeof StepView>;

export const ChatItem = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('user'), key: z.string(), turnId: z.string(), text: z.string() }),
  /** Assistant deltas of one turn, concatenated; rendered as sanitised markdown. */
  z.object({ kind: z.literal('assistant'), key: z.string(), turnId: z.string(), text: z.string() }),
  z.object({
    kind: z.literal('tool'),
    key: z.string(),
    turnId: z.string(),
    callId: z.string(),
    name: z.string(),
    /** Arguments pretty-printed as JSON (the webview shows them as text, never as markup). */
    args: z.string(),
    result: z.object({ ok: z.boolean(), output: z.string() }).nullable(),
  }),
  z.object({
    kind: z.literal('turn'),
    key: z.string(),
    turnId: z.string(),
    status: TurnStatus,
    durationMs: z.number().nonnegative(),
  }),
  z.object({
    kind: z.literal('error'),
    key: z.string(),
    code: z.string(),
    message: z.string(),
    step: ProgressStep.optional(),
    turnId: z.string().optional(),
  }),
]);
export type ChatItem = z.infer<typeof ChatItem>;
export type ChatItemKind = ChatItem['kind'];

export const ChatSession = z.object({
  /** Null while the start request is still in flight (the chat already shows "preparing"). */
  sessionId: z.string().nullable(),
  repo: z.object({ url: z.string(), branch: z.string().optional() }).nullable(),
  prompt: z.string().nullable(),
  status: SessionStatus,
  step: ProgressStep.nullable(),
  /** Whether the current preparation re-creates a reaped sandbox. */
  resume: z.boolean(),
  steps: z.array(StepView),
  items: z.array(ChatItem),
  /** The turn in progress, from persisted events (user_message without its turn_complete). */
  activeTurnId: z.string().nullable(),
  error: ErrorInfo.nullable(),
});
export type ChatSession = z.infer<typeof ChatSession>;

export const AuthState = z.enum(['signed_out', 'starting_server', 'signed_in']);
export type AuthState = z.infer<typeof AuthState>;

export const ConnectionState = z.enum(['idle', 'connecting', 'open', 'reconnecting', 'closed']);
export type ConnectionState = z.infer<typeof ConnectionState>;

export const InputLock = z.object({
  enabled: z.boolean(),
  /** Why the input is disabled (shown next to it); empty when enabled. */
  reason: z.string(),
});
export type InputLock = z.infer<typeof InputLock>;

export const ChatViewState = z.object({
  /** Increases with every state the host posts; the webview acknowledges renders with it. */
  revision: z.number().int().nonnegative(),
  auth: AuthState,
  connection: ConnectionState,
  session: ChatSession.nullable(),
  /** A message POST is in flight. */
  sending: z.boolean(),
  input: InputLock,
  canRetry: z.boolean(),
  canInterrupt: z.boolean(),
});
export type ChatViewState = z.infer<typeof ChatViewState>;

// ---- host → webview ----

export const HostToWebview = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), state: ChatViewState }),
  /** Scroll to and focus a part of the chat (e.g. the error, after a click on the failed status bar item). */
  z.object({ type: z.literal('reveal'), target: z.enum(['error', 'input']) }),
  /** A message the host could not send (the stream dropped as Enter was pressed, or the POST failed): back into the input. */
  z.object({ type: z.literal('restoreDraft'), text: z.string() }),
]);
export type HostToWebview = z.infer<typeof HostToWebview>;

// ---- webview → host ----

/** Commands the webview may ask the host to run: a closed list, never an arbitrary command id. */
export const WebviewCommand = z.enum(['startSession', 'openSession', 'signIn', 'showLogs']);
export type WebviewCommand = z.infer<typeof WebviewCommand>;

export const WebviewToHost = z.discriminatedUnion('type', [
  /** The webview loaded and wants the current state. */
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('send'), text: z.string().min(1).max(LIMITS.messageLength) }),
  z.object({ type: z.literal('retry') }),
  z.object({ type: z.literal('interrupt') }),
  z.object({ type: z.literal('command'), command: WebviewCommand }),
  /** The webview painted the state with this revision (used to measure start latency). */
  z.object({ type: z.literal('rendered'), revision: z.number().int().nonnegative() }),
]);
export type WebviewToHost = z.infer<typeof WebviewToHost>;

/** A handler for every message type: leaving one out is a compile error. */
export type MessageHandlers<M extends { type: string }> = {
  [K in M['type']]: (message: Extract<M, { type: K }>) => void | Promise<void>;
};

/** Short present-tense labels of progress steps, shared by the status bar and the chat. */
export const PROGRESS_STEP_LABELS: Record<ProgressStep, string> = {
  queued: 'queued',
  disk_check: 'checking disk space',
  clone: 'cloning',
  branch: 'creating the branch',
  setup: 'running setup',
  sandbox: 'starting the sandbox',
  agent_start: 'starting the agent',
  session_import: 'importing the session',
  initiate: 'sending the prompt',
  ready: 'ready',
  failed: 'failed',
};
