import { z } from 'zod';
import { ClientErrorCode, ErrorCode, LIMITS, RepoPath } from './api';
import { ChangedFile, ChangesSummary, CommitSha, ErrorInfo, FAILURE_CODES, PreparationStep, ProgressStep, QueuedMessage, SessionStatus, SkippedFile, TokenUsage, TurnStatus } from './events';

/**
 * Messages between the extension host and the chat webview.
 * The host owns the session state machine; the webview only renders a snapshot of it and sends intents.
 * Both sides parse what they receive with these schemas (the host treats the webview as untrusted).
 */

// ---- the state the webview renders ----

/** An error the chat shows: the session's own, an API refusal, or the client's (network, bad answer). */
export const ShownErrorCode = z.union([z.enum(FAILURE_CODES), ErrorCode, ClientErrorCode]).catch('internal');
export type ShownErrorCode = z.infer<typeof ShownErrorCode>;
export const ShownError = ErrorInfo.extend({ code: ShownErrorCode });
export type ShownError = z.infer<typeof ShownError>;

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
    /** The tokens the model endpoint reported for the turn (absent: none reported). */
    usage: TokenUsage.optional(),
  }),
  z.object({
    kind: z.literal('error'),
    key: z.string(),
    code: ShownErrorCode,
    message: z.string(),
    step: ProgressStep.optional(),
    turnId: z.string().optional(),
  }),
  /** A checkpoint: what one turn (or the stop of the sandbox) changed, from `from` to `to`. */
  z.object({
    kind: z.literal('changes'),
    key: z.string(),
    turnId: z.string().nullable(),
    reason: z.enum(['turn', 'stop']),
    /** The previous checkpoint (or the session's base commit). */
    from: CommitSha,
    /** This checkpoint. */
    to: CommitSha,
    files: z.array(ChangedFile),
    additions: z.number().int().nonnegative(),
    deletions: z.number().int().nonnegative(),
    /** Files the checkpoint left out (too large, nested repositories), named so nothing vanishes silently. */
    skipped: z.array(SkippedFile),
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
  error: ShownError.nullable(),
  /** Cumulative from the base commit (the server's summary); null before the clone or from an older server. */
  changes: ChangesSummary.nullable(),
  /** Messages waiting for the agent, oldest first (each can be cancelled until it starts). */
  queue: z.array(QueuedMessage).default([]),
  /** The session's model (LLM agent); the chat adds up the turns' reported tokens itself. */
  model: z.string().nullable().default(null),
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

/** What this workspace did with the session's work (remembered by the extension, not the server). */
export const AppliedWork = z.object({
  /** The session's checkpoint that was applied. */
  head: CommitSha,
  how: z.enum(['branch', 'worktree']),
  /** The local branch, when applied as one. */
  branch: z.string().optional(),
  at: z.string(),
});
export type AppliedWork = z.infer<typeof AppliedWork>;

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
  /** The open session's work as last applied in this workspace, if it was. */
  applied: AppliedWork.nullable(),
});
export type ChatViewState = z.infer<typeof ChatViewState>;

// ---- host → webview ----

/**
 * How the conversation changed since the state the webview has: what a streamed chunk costs stays
 * the size of the chunk, whatever the length of the session.
 */
export const ItemsPatch = z.object({
  /** The first `keep` items are unchanged. */
  keep: z.number().int().nonnegative(),
  /** The item after them is the same item with this text appended (a streamed answer). */
  append: z.object({ key: z.string(), text: z.string() }).nullable(),
  /** Then these items, replacing whatever the webview had after. */
  items: z.array(ChatItem),
});
export type ItemsPatch = z.infer<typeof ItemsPatch>;

/** The view state with the conversation as a patch of the one at revision `base`. */
export const ChatViewPatch = ChatViewState.extend({
  base: z.number().int().nonnegative(),
  session: ChatSession.omit({ items: true }).extend({ items: ItemsPatch }).nullable(),
});
export type ChatViewPatch = z.infer<typeof ChatViewPatch>;

export const HostToWebview = z.discriminatedUnion('type', [
  /** The whole state: when the webview (re)loads, the session changes, or after a reconnect. */
  z.object({ type: z.literal('state'), state: ChatViewState }),
  /** Everything but the conversation as it is, and the conversation's change since `base`. */
  z.object({ type: z.literal('patch'), patch: ChatViewPatch }),
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
  /** The webview painted the state with this revision (used to measure start latency), in `ms` of its own work. */
  z.object({ type: z.literal('rendered'), revision: z.number().int().nonnegative(), ms: z.number().nonnegative().optional() }),
  /** A patch did not fit the state the webview has: it asks for the whole state. */
  z.object({ type: z.literal('resync') }),
  /** Opens the multi-file diff of one checkpoint (a card's range), or of the whole session (null: base → head). */
  z.object({ type: z.literal('reviewChanges'), range: z.object({ from: CommitSha, to: CommitSha }).nullable() }),
  /** Opens one file's diff; the host only acts on a range and path it sent itself. */
  z.object({ type: z.literal('openFileDiff'), from: CommitSha, to: CommitSha, path: RepoPath }),
  /** Brings the session's work into the workspace (as a branch, or onto the working tree). */
  z.object({ type: z.literal('applyChanges') }),
  /** Pushes the session's work branch to the repository's remote. */
  z.object({ type: z.literal('pushChanges') }),
  /** Cancels a queued message (the host acts only on one its state shows). */
  z.object({ type: z.literal('cancelQueued'), turnId: z.string().min(1).max(64) }),
  /** Opens the remote's "create a pull request" page (pushing first when needed). */
  z.object({ type: z.literal('openPullRequest') }),
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
