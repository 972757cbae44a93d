import type {
  ChangesSummary,
  ErrorInfo,
  PushedRef,
  QueuedMessage,
  TokenUsage,
  PersistedData,
  PersistedEvent,
  PersistedEventType,
  ProgressStep,
  SessionStatus,
} from '@berth/protocol';
import type { SandboxRef } from '../sandbox/provider';

/** A session row as the server keeps it (the API shows a `SessionView` of it). */
export interface SessionRecord {
  id: string;
  owner: string;
  repoUrl: string;
  repoBranch: string | null;
  prompt: string | null;
  setup: string[];
  autoInitiate: boolean;
  status: SessionStatus;
  step: ProgressStep | null;
  createdAt: string;
  updatedAt: string;
  preparedAt: string | null;
  initiatedAt: string | null;
  lastError: ErrorInfo | null;
  lastEventId: number;
  sandbox: SandboxRef | null;
  /** Turn id of the auto-initiated first prompt, so a retry reuses it instead of repeating the message. */
  initialTurnId: string | null;
  lastActivityAt: string;
  /** The instance whose sandbox serves the session (the one that last ran a job for it); none = any. */
  instance?: string | null;
  /** The dev container config the start named (a path in the repository), or null. */
  devcontainer?: string | null;
  /** The credential the start's URL carried (taken out of it), sealed; null when none. */
  urlCredential?: string | null;
  /** The commit the session was cloned at; null until the clone is done. */
  baseSha?: string | null;
  /** The branch checkpoints are committed on (and pushed to by default). */
  workBranch?: string | null;
  /** What changed, base → newest checkpoint (the view's `changes`, without `pushed`). */
  changes?: Omit<ChangesSummary, 'pushed'> | null;
  pushed?: PushedRef | null;
  /** Messages waiting for the agent, oldest first (absent: none). */
  queue?: QueuedMessage[];
  /** The model the start chose (LLM agent; null: the server's default). */
  model?: string | null;
  /** Tokens of all turns, as reported (null: none reported). */
  usage?: TokenUsage | null;
}

/** A session before any preparation ran: what only preparation and turns fill in is empty. */
export function newSessionRecord(
  fields: Pick<SessionRecord, 'id' | 'owner' | 'repoUrl' | 'repoBranch' | 'prompt' | 'setup' | 'autoInitiate'> & Partial<SessionRecord>,
  now: string,
): SessionRecord {
  return {
    status: 'preparing',
    step: 'queued',
    createdAt: now,
    updatedAt: now,
    preparedAt: null,
    initiatedAt: null,
    lastError: null,
    lastEventId: 0,
    sandbox: null,
    initialTurnId: null,
    lastActivityAt: now,
    ...fields,
  };
}

/**
 * A write refused because the session is no longer placed on the writing instance: another one
 * adopted it while this one stalled (the writer must stop what it runs for that session).
 */
export class FencedError extends Error {
  constructor(readonly sessionId: string) {
    super(`session ${sessionId} was adopted by another instance`);
    this.name = 'FencedError';
  }
}

/** A sandbox recorded as to be destroyed; `ref` is its SandboxRef as JSON. */
export interface DoomedSandbox {
  ref: string;
  instance: string;
  sessionId: string | null;
  since: string;
  attempts: number;
  lastError: string;
}

/** A user's git credential for one host; `token` sealed. */
export interface CredentialRecord {
  owner: string;
  host: string;
  username: string;
  token: string;
  createdAt: string;
  updatedAt: string;
}

/** A user's secret; `repo` '' for all of the user's sessions; `value` sealed. */
export interface SecretRecord {
  owner: string;
  name: string;
  repo: string;
  value: string;
  exposeTo: 'setup' | 'agent';
  createdAt: string;
  updatedAt: string;
}

/** One checkpoint: a commit of the work tree, after a turn or before its sandbox stopped. */
export interface CheckpointRecord {
  sessionId: string;
  /** 1, 2, …: the order of the chain. */
  seq: number;
  sha: string;
  /** The previous checkpoint, or the base for the first one. */
  parent: string;
  turnId: string | null;
  reason: 'turn' | 'stop';
  createdAt: string;
  files: number;
  additions: number;
  deletions: number;
}

export type SessionPatch = Partial<
  Pick<
    SessionRecord,
    | 'status'
    | 'step'
    | 'preparedAt'
    | 'initiatedAt'
    | 'lastError'
    | 'sandbox'
    | 'initialTurnId'
    | 'lastActivityAt'
    | 'instance'
    | 'baseSha'
    | 'workBranch'
    | 'changes'
    | 'pushed'
    | 'queue'
    | 'usage'
  >
>;

/** `message`: a message for a session whose sandbox lives on another instance, addressed to it. */
export type JobKind = 'prepare' | 'resume' | 'message';
export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobPayload {
  /** `sync`: an HTTP request waits for the outcome and gets the error itself (no persisted error). */
  mode: 'async' | 'sync';
  /** For `resume`: the message that woke the session, already persisted as `user_message`. */
  turn?: { turnId: string; text: string };
}

export interface JobRecord {
  id: number;
  sessionId: string;
  kind: JobKind;
  payload: JobPayload;
  state: JobState;
  attempts: number;
  runAt: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  /** Only this instance may run the job (null: any); cleared when that instance dies. */
  target: string | null;
}

export interface NewJob {
  sessionId: string;
  kind: JobKind;
  payload: JobPayload;
  runAt: number;
  target?: string | null;
}

/**
 * Persistence behind one interface: SQLite for one instance, PostgreSQL for several.
 * Every method is async for that reason, even where SQLite answers synchronously.
 */
export interface Store {
  /** Inserts the session and its preparation job atomically: both or neither. */
  createSession(session: SessionRecord, job?: NewJob): Promise<JobRecord | null>;
  getSession(id: string): Promise<SessionRecord | null>;
  listSessions(owner: string): Promise<SessionRecord[]>;
  /** Sessions in any of the given states (crash recovery, reaper). */
  sessionsByStatus(statuses: SessionStatus[]): Promise<SessionRecord[]>;
  updateSession(id: string, patch: SessionPatch): Promise<void>;
  /**
   * A status change as a compare-and-set: applied only while the session is in one of `from` (and,
   * with `fence`, placed on that instance).
   */
  /**
   * Writes `patch` only while the status is one of `from` (and, with `queueIs`, the queue is exactly
   * that one): a compare-and-set.
   */
  transitionSession(id: string, from: readonly SessionStatus[], patch: SessionPatch, fence?: string, queueIs?: readonly QueuedMessage[]): Promise<boolean>;
  /**
   * Starts a job atomically: the session's change (only from one of `from`), the message that
   * starts it (if any) as a persisted `user_message`, and the job. Nothing of it happens (null)
   * when the session is in another status or already has an active job.
   */
  beginJob(
    id: string,
    from: readonly SessionStatus[],
    patch: SessionPatch,
    job: NewJob,
    message?: { turnId: string; text: string },
  ): Promise<{ job: JobRecord; event: PersistedEvent | null } | null>;
  deleteSession(id: string): Promise<boolean>;
  /** Deletes the session only if it holds no persisted events (the seed's `onlyIfEmpty`). */
  deleteSessionIfEmpty(id: string): Promise<boolean>;

  /**
   * Appends a persisted event with the session's next id (strictly increasing, starting at 1).
   * `fence`: only while the session is placed on that instance (else a FencedError, nothing written).
   */
  appendEvent<T extends PersistedEventType>(
    sessionId: string,
    type: T,
    data: PersistedData<T>,
    fence?: string,
  ): Promise<Extract<PersistedEvent, { type: T }>>;
  readEvents(sessionId: string, afterId: number, limit?: number): Promise<PersistedEvent[]>;

  enqueueJob(job: NewJob): Promise<JobRecord>;
  /**
   * Takes the next due job (queued and due, or running under another owner's expired lease) under a
   * lease; only jobs addressed to no instance or to `instance`.
   */
  claimJob(owner: string, now: number, leaseMs: number, instance: string): Promise<JobRecord | null>;
  renewLease(jobId: number, owner: string, leaseUntil: number): Promise<boolean>;
  finishJob(jobId: number, state: 'done' | 'failed'): Promise<void>;
  reschedule(jobId: number, runAt: number): Promise<void>;
  /**
   * Requeues the running jobs whose lease owner starts with the prefix: this instance's, after a
   * restart (no process of it can still run them; other instances' leases are left alone).
   */
  releaseLeases(ownerPrefix: string): Promise<number>;
  /** Jobs of a session that are not finished. */
  activeJobs(sessionId: string): Promise<JobRecord[]>;
  /** Session ids of the queued, due jobs, oldest first (for "queued: N ahead"). */
  queuedSessions(now: number): Promise<string[]>;

  /**
   * Records that the instance is alive now. False when it had no row: another instance declared
   * it dead (and adopted its sessions) meanwhile, or it is new.
   */
  heartbeat(instance: string, now: number): Promise<boolean>;
  /** Whether the instance's last heartbeat is at or after `since`. */
  instanceAlive(instance: string, since: number): Promise<boolean>;
  /**
   * Takes the instances whose last heartbeat is before `before` off the list; each dead instance
   * is handed to exactly one caller, which cleans up its sessions and then frees its jobs.
   */
  takeDeadInstances(before: number): Promise<string[]>;
  /** Jobs addressed to the instance may now run anywhere. */
  freeJobsOf(instance: string): Promise<void>;
  /** Sessions placed on the instance, in any of the given states. */
  sessionsOn(instance: string, statuses: SessionStatus[]): Promise<SessionRecord[]>;

  /** Records a ticket's nonce as spent; false if it already was (a replay). */
  spendTicket(nonce: string, expiresAt: number): Promise<boolean>;
  /** Forgets the nonces of tickets expired before `now` (they are refused for that anyway). */
  pruneSpentTickets(now: number): Promise<number>;

  /**
   * Appends a checkpoint with its bundle (parent..sha) and sets the session's changes summary, in
   * one transaction. `checkpoint.seq` must be the next one: false when another writer took it.
   */
  addCheckpoint(checkpoint: CheckpointRecord, bundle: Buffer, changes: NonNullable<SessionRecord['changes']>): Promise<boolean>;
  /** The session's checkpoints in order (without bundles). */
  listCheckpoints(sessionId: string): Promise<CheckpointRecord[]>;
  /** The bundle that adds checkpoint `seq` to a repository holding its parent. */
  checkpointBundle(sessionId: string, seq: number): Promise<Buffer | null>;

  /** Stores (or replaces) a credential; the first `createdAt` is kept. */
  putCredential(credential: CredentialRecord): Promise<CredentialRecord>;
  /** A user's credentials, by host; every user's when `owner` is undefined. */
  listCredentials(owner?: string): Promise<CredentialRecord[]>;
  getCredential(owner: string, host: string): Promise<CredentialRecord | null>;
  deleteCredential(owner: string, host: string): Promise<boolean>;
  /** Stores (or replaces) a secret; the first `createdAt` is kept. */
  putSecret(secret: SecretRecord): Promise<SecretRecord>;
  /** A user's secrets, by name; every user's when `owner` is undefined. */
  listSecrets(owner?: string): Promise<SecretRecord[]>;
  deleteSecret(owner: string, name: string, repo: string): Promise<boolean>;
  /** A named setting: `candidate` is stored if there is none yet; the stored one is returned. */
  settingOnce(name: string, candidate: string): Promise<string>;

  /** Records a sandbox that could not be destroyed (or another failed attempt at it). */
  recordDoomed(doomed: { ref: string; instance: string; sessionId: string | null; error: string }): Promise<void>;
  /** The sandboxes of an instance still to be destroyed. */
  listDoomed(instance: string): Promise<DoomedSandbox[]>;
  forgetDoomed(ref: string): Promise<void>;

  /** The database's clock (epoch milliseconds): the one time every instance agrees on. */
  now(): Promise<number>;

  /** A cheap round trip, for the health check. */
  ping(): Promise<void>;
  integrityCheck(): Promise<string>;
  close(): Promise<void>;
}
