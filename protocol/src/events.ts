import { z } from 'zod';

/** Preparation steps in pipeline order; `ready` and `failed` close a run. */
export const PREPARATION_STEPS = [
  'disk_check',
  'clone',
  'branch',
  'setup',
  'sandbox',
  'agent_start',
  'session_import',
  'initiate',
] as const;
export const PreparationStep = z.enum(PREPARATION_STEPS);
export type PreparationStep = z.infer<typeof PreparationStep>;

/** Step names that appear in `preparing` events: the pipeline's, plus the queue and the two outcomes. */
export const ProgressStep = z.enum(['queued', ...PREPARATION_STEPS, 'ready', 'failed']);
export type ProgressStep = z.infer<typeof ProgressStep>;

export const SessionStatus = z.enum([
  'preparing', // pipeline running (first start, retry or resume)
  'ready', // agent idle, accepts messages
  'running', // a turn is in progress
  'sleeping', // sandbox reaped; the next message resumes it
  'failed', // preparation or initiate failed; retry possible
]);
export type SessionStatus = z.infer<typeof SessionStatus>;

/** Why a step, a session or a turn failed: each code names something a user or a client can act on. */
export const FAILURE_CODES = [
  // preparation steps
  'disk_full', 'invalid_repo', 'invalid_branch', 'clone_failed', 'clone_timeout', 'branch_failed',
  'setup_failed', 'setup_timeout', 'step_timeout', 'import_failed', 'initiate_failed',
  'preparation_timeout', 'preparation_interrupted', 'preparation_failed',
  // the dev container
  'config_invalid', 'config_unsupported', 'image_unavailable', 'feature_unavailable', 'lifecycle_failed',
  'sandbox_failed', 'sandbox_timeout',
  // the agent host and its turns
  'agent_gone', 'agent_timeout', 'agent_exited', 'agent_version_mismatch', 'agent_failed', 'agent_command_failed',
  'bad_command', 'turn_in_progress', 'turn_not_started', 'turn_timeout', 'turn_limit',
  // the model endpoint
  'llm_auth', 'llm_not_found', 'llm_rate_limited', 'llm_request_rejected', 'llm_server_error', 'llm_unreachable',
  'llm_timeout', 'llm_bad_stream', 'llm_stream_error',
  // the server and its cluster
  'checkpoint_failed', 'server_restarted', 'instance_lost', 'interrupted', 'aborted', 'not_ready', 'conflict',
  'internal',
] as const;
/** A code a newer server sends that this client does not know reads as `internal` (its message still shows). */
export const FailureCode = z.enum(FAILURE_CODES).catch('internal');
export type FailureCode = z.infer<typeof FailureCode>;

export const ErrorInfo = z.object({
  code: FailureCode,
  message: z.string(),
  step: ProgressStep.optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

// ---- the session's work: checkpoints and what changed ----

/** A full commit id (SHA-1, or SHA-256 repositories). */
export const CommitSha = z.string().regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, 'not a full commit id');
export type CommitSha = z.infer<typeof CommitSha>;

export const FileChangeStatus = z.enum(['added', 'modified', 'deleted', 'renamed']);
export type FileChangeStatus = z.infer<typeof FileChangeStatus>;

export const ChangedFile = z.object({
  path: z.string(),
  status: FileChangeStatus,
  /** The path before a rename. */
  oldPath: z.string().optional(),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  binary: z.boolean(),
});
export type ChangedFile = z.infer<typeof ChangedFile>;

/** A file the checkpoint left out, and why (its path is named so nothing vanishes silently). */
export const SkippedFile = z.object({
  path: z.string(),
  reason: z.enum(['too_large', 'nested_repository']),
  /** Its size in bytes, for `too_large`. */
  size: z.number().int().nonnegative().optional(),
});
export type SkippedFile = z.infer<typeof SkippedFile>;

/** Where the session's work was last pushed. */
export const PushedRef = z.object({ branch: z.string(), head: CommitSha, at: z.string() });
export type PushedRef = z.infer<typeof PushedRef>;

/**
 * What the session changed, cumulative from the commit it was cloned at (`base`) to its newest
 * checkpoint (`head`, equal to `base` before the first one).
 */
export const ChangesSummary = z.object({
  base: CommitSha,
  head: CommitSha,
  /** The session's work branch, where checkpoints are committed and pushed by default. */
  branch: z.string(),
  files: z.array(ChangedFile),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  /** The last successful push, if any. */
  pushed: PushedRef.nullable().optional(),
});
export type ChangesSummary = z.infer<typeof ChangesSummary>;

/** Tokens a model endpoint reported; absent where it reported nothing (no guessed numbers). */
export const TokenUsage = z.object({ promptTokens: z.number().int().nonnegative(), completionTokens: z.number().int().nonnegative() });
export type TokenUsage = z.infer<typeof TokenUsage>;

/** A message sent while the agent was busy: it runs after the turns before it, in order. */
export const QueuedMessage = z.object({ turnId: z.string(), text: z.string() });
export type QueuedMessage = z.infer<typeof QueuedMessage>;

export const SessionView = z.object({
  id: z.string(),
  repo: z.object({ url: z.string(), branch: z.string().optional() }),
  prompt: z.string().optional(),
  setup: z.array(z.string()),
  autoInitiate: z.boolean(),
  status: SessionStatus,
  /** The preparation step running now, or null outside preparation. */
  step: ProgressStep.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  preparedAt: z.string().nullable(),
  initiatedAt: z.string().nullable(),
  lastError: ErrorInfo.nullable(),
  /** Id of the newest persisted event; a client whose cursor equals it has seen everything. */
  lastEventId: z.number().int().nonnegative(),
  /**
   * The preparation steps in the order this server's sandbox provider runs them (devcontainer:
   * sandbox before setup), so a client rebuilding the step list need not guess. Absent from older servers.
   */
  steps: z.array(PreparationStep).optional(),
  /** The dev container config the start named (a path in the repository). */
  devcontainer: z.string().optional(),
  /** What the session changed so far; null until its base commit is known (before the clone). */
  changes: ChangesSummary.nullable().optional(),
  /** Messages waiting for the current turn (or the preparation) to end, oldest first. */
  queue: z.array(QueuedMessage).optional(),
  /** The model the session's agent uses (servers with an LLM agent). */
  model: z.string().optional(),
  /** Tokens of all its turns, as the model endpoint reported them (absent: none reported). */
  usage: TokenUsage.optional(),
});
export type SessionView = z.infer<typeof SessionView>;

// ---- persisted event payloads (id > 0) ----

export const UserMessageData = z.object({ turnId: z.string(), text: z.string() });
export const AssistantOutputData = z.object({ turnId: z.string(), text: z.string() });
export const ToolCallData = z.object({
  turnId: z.string(),
  callId: z.string(),
  name: z.string(),
  args: z.unknown(),
});
export const ToolResultData = z.object({
  turnId: z.string(),
  callId: z.string(),
  ok: z.boolean(),
  output: z.string(),
});
export const TurnStatus = z.enum(['completed', 'failed', 'interrupted']);
export const TurnCompleteData = z.object({
  turnId: z.string(),
  status: TurnStatus,
  exitCode: z.number().int().nullable().optional(),
  durationMs: z.number().nonnegative(),
  usage: TokenUsage.optional(),
});
export const ErrorEventData = ErrorInfo.extend({ turnId: z.string().optional() });
/**
 * A checkpoint was recorded: what changed from the previous checkpoint (or the base) to this one.
 * `turn`: after a turn that changed the work tree; `stop`: before its sandbox was stopped or reaped.
 */
export const ChangesData = z.object({
  turnId: z.string().nullable(),
  reason: z.enum(['turn', 'stop']),
  base: CommitSha,
  head: CommitSha,
  files: z.array(ChangedFile),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  skipped: z.array(SkippedFile).optional(),
});
export type ChangesData = z.infer<typeof ChangesData>;

// ---- volatile event payloads (id = 0) ----

export const StepState = z.enum(['started', 'done', 'failed']);
export const PreparingData = z.object({
  step: ProgressStep,
  state: StepState,
  message: z.string(),
  /** Time spent in this step so far (or in total, for `ready` and `failed`). */
  elapsedMs: z.number().nonnegative(),
  /** Latest log line of the step, e.g. from the container build. */
  detail: z.string().optional(),
  /** Whether this run re-creates a reaped sandbox. */
  resume: z.boolean().optional(),
});
export type PreparingData = z.infer<typeof PreparingData>;
/** A status change (the only kind there is: one event per transition), with its cause when it failed. */
export const StatusData = z.object({ status: SessionStatus, step: ProgressStep.nullable(), error: ErrorInfo.optional() });
export const ConnectedData = z.object({ session: SessionView });
export const HeartbeatData = z.object({});
/** The session's queued messages after a change (one queued, cancelled, or started). */
export const QueueData = z.object({ messages: z.array(QueuedMessage) });

const envelope = {
  sessionId: z.string(),
  ts: z.string(),
};
const persisted = { ...envelope, id: z.number().int().positive() };
const volatile = { ...envelope, id: z.literal(0) };

export const PersistedEvent = z.discriminatedUnion('type', [
  z.object({ ...persisted, type: z.literal('user_message'), data: UserMessageData }),
  z.object({ ...persisted, type: z.literal('assistant_output'), data: AssistantOutputData }),
  z.object({ ...persisted, type: z.literal('tool_call'), data: ToolCallData }),
  z.object({ ...persisted, type: z.literal('tool_result'), data: ToolResultData }),
  z.object({ ...persisted, type: z.literal('turn_complete'), data: TurnCompleteData }),
  z.object({ ...persisted, type: z.literal('error'), data: ErrorEventData }),
  z.object({ ...persisted, type: z.literal('changes'), data: ChangesData }),
]);
export type PersistedEvent = z.infer<typeof PersistedEvent>;
export type PersistedEventType = PersistedEvent['type'];

export const VolatileEvent = z.discriminatedUnion('type', [
  z.object({ ...volatile, type: z.literal('preparing'), data: PreparingData }),
  z.object({ ...volatile, type: z.literal('status'), data: StatusData }),
  z.object({ ...volatile, type: z.literal('connected'), data: ConnectedData }),
  z.object({ ...volatile, type: z.literal('heartbeat'), data: HeartbeatData }),
  z.object({ ...volatile, type: z.literal('queue'), data: QueueData }),
]);
export type VolatileEvent = z.infer<typeof VolatileEvent>;
export type VolatileEventType = VolatileEvent['type'];

export const StreamEvent = z.union([PersistedEvent, VolatileEvent]);
export type StreamEvent = PersistedEvent | VolatileEvent;

/** The payload type of a persisted event, by its `type`. */
export type PersistedData<T extends PersistedEventType> = Extract<PersistedEvent, { type: T }>['data'];
export type VolatileData<T extends VolatileEventType> = Extract<VolatileEvent, { type: T }>['data'];

export function isPersisted(event: StreamEvent): event is PersistedEvent {
  return event.id > 0;
}
