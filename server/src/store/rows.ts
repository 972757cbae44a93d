import { ErrorInfo, PersistedEvent, QueuedMessage, TokenUsage, type SessionStatus } from '@berth/protocol';
import type { CheckpointRecord, CredentialRecord, DoomedSandbox, JobRecord, SecretRecord, SessionPatch, SessionRecord } from './store';

// Row shapes and their mapping, shared by every store: both dialects keep the same columns.

export interface SessionRow {
  id: string;
  owner: string;
  repo_url: string;
  repo_branch: string | null;
  prompt: string | null;
  setup: string;
  auto_initiate: number;
  status: string;
  step: string | null;
  created_at: string;
  updated_at: string;
  prepared_at: string | null;
  initiated_at: string | null;
  last_error: string | null;
  last_event_id: number;
  sandbox: string | null;
  initial_turn_id: string | null;
  last_activity_at: string;
  instance: string | null;
  devcontainer?: string | null;
  url_credential?: string | null;
  base_sha?: string | null;
  work_branch?: string | null;
  changes?: string | null;
  pushed?: string | null;
  queue?: string;
  model?: string | null;
  usage?: string | null;
}

export interface CheckpointRow {
  session_id: string;
  seq: number;
  sha: string;
  parent: string;
  turn_id: string | null;
  reason: string;
  created_at: string;
  files: number;
  additions: number;
  deletions: number;
}

/** The columns of a checkpoint row but its bundle, for listings. */
export const CHECKPOINT_COLUMNS = 'session_id, seq, sha, parent, turn_id, reason, created_at, files, additions, deletions';

export function checkpointRow(c: CheckpointRecord): CheckpointRow {
  return {
    session_id: c.sessionId,
    seq: c.seq,
    sha: c.sha,
    parent: c.parent,
    turn_id: c.turnId,
    reason: c.reason,
    created_at: c.createdAt,
    files: c.files,
    additions: c.additions,
    deletions: c.deletions,
  };
}

export function toCheckpoint(r: CheckpointRow): CheckpointRecord {
  return {
    sessionId: r.session_id,
    seq: Number(r.seq),
    sha: r.sha,
    parent: r.parent,
    turnId: r.turn_id,
    reason: r.reason as CheckpointRecord['reason'],
    createdAt: r.created_at,
    files: Number(r.files),
    additions: Number(r.additions),
    deletions: Number(r.deletions),
  };
}

export interface JobRow {
  id: number;
  session_id: string;
  kind: string;
  payload: string;
  state: string;
  attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  target: string | null;
}

export interface EventRow {
  session_id: string;
  id: number;
  type: string;
  ts: string;
  data: string;
}

const PATCH_COLUMNS: Record<keyof SessionPatch, string> = {
  status: 'status',
  step: 'step',
  preparedAt: 'prepared_at',
  initiatedAt: 'initiated_at',
  lastError: 'last_error',
  sandbox: 'sandbox',
  initialTurnId: 'initial_turn_id',
  lastActivityAt: 'last_activity_at',
  instance: 'instance',
  baseSha: 'base_sha',
  workBranch: 'work_branch',
  changes: 'changes',
  pushed: 'pushed',
  queue: 'queue',
  usage: 'usage',
};
const JSON_PATCH_FIELDS = new Set<keyof SessionPatch>(['lastError', 'sandbox', 'changes', 'pushed', 'queue', 'usage']);

/** The columns a patch sets (column → stored value); undefined fields are left alone. */
export function patchColumns(patch: SessionPatch): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch) as [keyof SessionPatch, unknown][]) {
    if (value === undefined) continue;
    columns[PATCH_COLUMNS[key]] = JSON_PATCH_FIELDS.has(key) && value !== null ? JSON.stringify(value) : value;
  }
  return columns;
}

export function sessionRow(session: SessionRecord): SessionRow {
  return {
    id: session.id,
    owner: session.owner,
    repo_url: session.repoUrl,
    repo_branch: session.repoBranch,
    prompt: session.prompt,
    setup: JSON.stringify(session.setup),
    auto_initiate: session.autoInitiate ? 1 : 0,
    status: session.status,
    step: session.step,
    created_at: session.createdAt,
    updated_at: session.updatedAt,
    prepared_at: session.preparedAt,
    initiated_at: session.initiatedAt,
    last_error: session.lastError ? JSON.stringify(session.lastError) : null,
    last_event_id: session.lastEventId,
    sandbox: session.sandbox ? JSON.stringify(session.sandbox) : null,
    initial_turn_id: session.initialTurnId,
    last_activity_at: session.lastActivityAt,
    instance: session.instance ?? null,
    devcontainer: session.devcontainer ?? null,
    url_credential: session.urlCredential ?? null,
    base_sha: session.baseSha ?? null,
    work_branch: session.workBranch ?? null,
    changes: session.changes ? JSON.stringify(session.changes) : null,
    pushed: session.pushed ? JSON.stringify(session.pushed) : null,
    model: session.model ?? null,
  };
}

export function toSession(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    owner: r.owner,
    repoUrl: r.repo_url,
    repoBranch: r.repo_branch,
    prompt: r.prompt,
    setup: JSON.parse(r.setup) as string[],
    autoInitiate: r.auto_initiate === 1,
    status: r.status as SessionStatus,
    step: r.step as SessionRecord['step'],
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    preparedAt: r.prepared_at,
    initiatedAt: r.initiated_at,
    lastError: r.last_error ? ErrorInfo.parse(JSON.parse(r.last_error)) : null,
    lastEventId: r.last_event_id,
    sandbox: r.sandbox ? (JSON.parse(r.sandbox) as SessionRecord['sandbox']) : null,
    initialTurnId: r.initial_turn_id,
    lastActivityAt: r.last_activity_at,
    instance: r.instance,
    devcontainer: r.devcontainer ?? null,
    urlCredential: r.url_credential ?? null,
    baseSha: r.base_sha ?? null,
    workBranch: r.work_branch ?? null,
    changes: r.changes ? (JSON.parse(r.changes) as SessionRecord['changes']) : null,
    pushed: r.pushed ? (JSON.parse(r.pushed) as SessionRecord['pushed']) : null,
    queue: r.queue ? QueuedMessage.array().parse(JSON.parse(r.queue)) : [],
    model: r.model ?? null,
    usage: r.usage ? TokenUsage.parse(JSON.parse(r.usage)) : null,
  };
}

export function toJob(r: JobRow): JobRecord {
  return {
    id: r.id,
    sessionId: r.session_id,
    kind: r.kind as JobRecord['kind'],
    payload: JSON.parse(r.payload) as JobRecord['payload'],
    state: r.state as JobRecord['state'],
    attempts: r.attempts,
    runAt: r.run_at,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    createdAt: r.created_at,
    target: r.target,
  };
}

export function toEvent(r: EventRow): PersistedEvent {
  // Rows were validated on the way in; parsing again guards against a hand-edited database.
  return PersistedEvent.parse({ id: r.id, sessionId: r.session_id, type: r.type, ts: r.ts, data: JSON.parse(r.data) as unknown });
}

export interface CredentialRow {
  owner: string;
  host: string;
  username: string;
  token: string;
  created_at: string;
  updated_at: string;
}

export interface SecretRow {
  owner: string;
  name: string;
  repo: string;
  value: string;
  expose_to: string;
  created_at: string;
  updated_at: string;
}

export const toCredential = (r: CredentialRow): CredentialRecord => ({
  owner: r.owner,
  host: r.host,
  username: r.username,
  token: r.token,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toSecret = (r: SecretRow): SecretRecord => ({
  owner: r.owner,
  name: r.name,
  repo: r.repo,
  value: r.value,
  exposeTo: r.expose_to as SecretRecord['exposeTo'],
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface DoomedRow {
  ref: string;
  instance: string;
  session_id: string | null;
  since: string;
  attempts: number;
  last_error: string;
}

export const toDoomed = (r: DoomedRow): DoomedSandbox => ({
  ref: r.ref,
  instance: r.instance,
  sessionId: r.session_id,
  since: r.since,
  attempts: Number(r.attempts),
  lastError: r.last_error,
});
