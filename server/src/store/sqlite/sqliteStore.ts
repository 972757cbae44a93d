import Database from 'better-sqlite3';
import {
  ErrorInfo,
  PersistedEvent,
  type PersistedData,
  type PersistedEventType,
  type SessionStatus,
} from '@berth/protocol';
import type { JobRecord, NewJob, SessionPatch, SessionRecord, Store } from '../store';
import { migrate } from './migrations';

interface SessionRow {
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
}

interface JobRow {
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
}

interface EventRow {
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
};
const JSON_PATCH_FIELDS = new Set<keyof SessionPatch>(['lastError', 'sandbox']);

function toSession(r: SessionRow): SessionRecord {
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
  };
}

function toJob(r: JobRow): JobRecord {
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
  };
}

function toEvent(r: EventRow): PersistedEvent {
  // Rows were validated on the way in; parsing again guards against a hand-edited database.
  return PersistedEvent.parse({ id: r.id, sessionId: r.session_id, type: r.type, ts: r.ts, data: JSON.parse(r.data) });
}

/** The embedded store: SQLite in WAL mode, one process per data dir. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    const db = this.db;
    this.stmts = {
      insertSession: db.prepare(`INSERT INTO sessions (id, owner, repo_url, repo_branch, prompt, setup, auto_initiate,
        status, step, created_at, updated_at, prepared_at, initiated_at, last_error, last_event_id, sandbox,
        initial_turn_id, last_activity_at)
        VALUES (@id, @owner, @repo_url, @repo_branch, @prompt, @setup, @auto_initiate, @status, @step, @created_at,
        @updated_at, @prepared_at, @initiated_at, @last_error, @last_event_id, @sandbox, @initial_turn_id,
        @last_activity_at)`),
      getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
      listSessions: db.prepare('SELECT * FROM sessions WHERE owner = ? ORDER BY created_at DESC, id'),
      allIds: db.prepare('SELECT id FROM sessions'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      deleteIfEmpty: db.prepare(
        'DELETE FROM sessions WHERE id = ? AND NOT EXISTS (SELECT 1 FROM events WHERE session_id = ?)',
      ),
      nextEventId: db.prepare(
        'UPDATE sessions SET last_event_id = last_event_id + 1, updated_at = ? WHERE id = ? RETURNING last_event_id',
      ),
      insertEvent: db.prepare('INSERT INTO events (session_id, id, type, ts, data) VALUES (?, ?, ?, ?, ?)'),
      readEvents: db.prepare('SELECT * FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?'),
      insertJob: db.prepare(`INSERT INTO jobs (session_id, kind, payload, state, attempts, run_at, created_at, updated_at)
        VALUES (?, ?, ?, 'queued', 0, ?, ?, ?) RETURNING *`),
      claimJob: db.prepare(`UPDATE jobs SET state = 'running', lease_owner = @owner, lease_until = @until,
          attempts = attempts + 1, updated_at = @now
        WHERE id = (SELECT id FROM jobs
          WHERE (state = 'queued' AND run_at <= @now)
             -- Another owner's lease ran out (its process died); never our own, which we still run.
             OR (state = 'running' AND lease_until < @now AND lease_owner <> @owner)
          ORDER BY run_at, id LIMIT 1)
        RETURNING *`),
      renewLease: db.prepare(
        "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running'",
      ),
      finishJob: db.prepare('UPDATE jobs SET state = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?'),
      reschedule: db.prepare(
        "UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
      ),
      releaseAll: db.prepare(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running'",
      ),
      activeJobs: db.prepare("SELECT * FROM jobs WHERE session_id = ? AND state IN ('queued', 'running') ORDER BY id"),
      queuedSessions: db.prepare(
        "SELECT session_id FROM jobs WHERE state = 'queued' AND run_at <= ? ORDER BY run_at, id",
      ),
    };
  }

  async createSession(session: SessionRecord, job?: NewJob): Promise<JobRecord | null> {
    return this.db.transaction(() => {
      this.stmts.insertSession.run({
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
      });
      return job ? this.insertJob(job) : null;
    })();
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const row = this.stmts.getSession.get(id) as SessionRow | undefined;
    return row ? toSession(row) : null;
  }

  async listSessions(owner: string): Promise<SessionRecord[]> {
    return (this.stmts.listSessions.all(owner) as SessionRow[]).map(toSession);
  }

  async sessionsByStatus(statuses: SessionStatus[]): Promise<SessionRecord[]> {
    if (statuses.length === 0) return [];
    const marks = statuses.map(() => '?').join(', ');
    const rows = this.db.prepare(`SELECT * FROM sessions WHERE status IN (${marks})`).all(...statuses) as SessionRow[];
    return rows.map(toSession);
  }

  async allSessionIds(): Promise<Set<string>> {
    return new Set((this.stmts.allIds.all() as { id: string }[]).map((r) => r.id));
  }

  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    const sets: string[] = ['updated_at = @updated_at'];
    const params: Record<string, unknown> = { id, updated_at: new Date().toISOString() };
    for (const [key, value] of Object.entries(patch) as [keyof SessionPatch, unknown][]) {
      if (value === undefined) continue;
      const column = PATCH_COLUMNS[key];
      sets.push(`${column} = @${column}`);
      params[column] = JSON_PATCH_FIELDS.has(key) && value !== null ? JSON.stringify(value) : value;
    }
    this.db.prepare(`UPDATE sessions SET ${sets.join(', ')} WHERE id = @id`).run(params);
  }

  async deleteSession(id: string): Promise<boolean> {
    return this.stmts.deleteSession.run(id).changes > 0;
  }

  async deleteSessionIfEmpty(id: string): Promise<boolean> {
    return this.stmts.deleteIfEmpty.run(id, id).changes > 0;
  }

  async appendEvent<T extends PersistedEventType>(
    sessionId: string,
    type: T,
    data: PersistedData<T>,
  ): Promise<Extract<PersistedEvent, { type: T }>> {
    const ts = new Date().toISOString();
    return this.db.transaction(() => {
      const row = this.stmts.nextEventId.get(ts, sessionId) as { last_event_id: number } | undefined;
      if (!row) throw new Error(`session ${sessionId} does not exist`);
      const event = PersistedEvent.parse({ id: row.last_event_id, sessionId, type, ts, data });
      this.stmts.insertEvent.run(sessionId, event.id, type, ts, JSON.stringify(event.data));
      return event as Extract<PersistedEvent, { type: T }>;
    })();
  }

  async readEvents(sessionId: string, afterId: number, limit = 10_000): Promise<PersistedEvent[]> {
    return (this.stmts.readEvents.all(sessionId, afterId, limit) as EventRow[]).map(toEvent);
  }

  private insertJob(job: NewJob): JobRecord {
    const now = Date.now();
    const row = this.stmts.insertJob.get(
      job.sessionId,
      job.kind,
      JSON.stringify(job.payload),
      job.runAt,
      now,
      now,
    ) as JobRow;
    return toJob(row);
  }

  async enqueueJob(job: NewJob): Promise<JobRecord> {
    return this.insertJob(job);
  }

  async claimJob(owner: string, now: number, leaseMs: number): Promise<JobRecord | null> {
    const row = this.stmts.claimJob.get({ owner, now, until: now + leaseMs }) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async renewLease(jobId: number, owner: string, leaseUntil: number): Promise<boolean> {
    return this.stmts.renewLease.run(leaseUntil, Date.now(), jobId, owner).changes > 0;
  }

  async finishJob(jobId: number, state: 'done' | 'failed'): Promise<void> {
    this.stmts.finishJob.run(state, Date.now(), jobId);
  }

  async reschedule(jobId: number, runAt: number): Promise<void> {
    this.stmts.reschedule.run(runAt, Date.now(), jobId);
  }

  async releaseAllLeases(): Promise<number> {
    return this.stmts.releaseAll.run().changes;
  }

  async activeJobs(sessionId: string): Promise<JobRecord[]> {
    return (this.stmts.activeJobs.all(sessionId) as JobRow[]).map(toJob);
  }

  async queuedSessions(now: number): Promise<string[]> {
    return (this.stmts.queuedSessions.all(now) as { session_id: string }[]).map((r) => r.session_id);
  }

  async integrityCheck(): Promise<string> {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
