import Database from 'better-sqlite3';
import { PersistedEvent, type PersistedData, type PersistedEventType, type QueuedMessage, type SessionStatus } from '@berth/protocol';
import { FencedError, type CheckpointRecord, type DoomedSandbox, type CredentialRecord, type JobRecord, type NewJob, type SecretRecord, type SessionPatch, type SessionRecord, type Store } from '../store';
import {
  CHECKPOINT_COLUMNS,
  checkpointRow,
  patchColumns,
  sessionRow,
  toCheckpoint,
  toEvent,
  toJob,
  toSession,
  toCredential,
  toDoomed,
  toSecret,
  type CheckpointRow,
  type CredentialRow,
  type DoomedRow,
  type SecretRow,
  type EventRow,
  type JobRow,
  type SessionRow,
} from '../rows';
import { migrate } from './migrations';
import { WalCheckpointer } from './walCheckpointer';

/** A change that must not happen: rolls its transaction back. */
class Refused extends Error {}

/** The embedded store: SQLite in WAL mode, one process per data dir. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Checkpoints the WAL off the event loop (null for an in-memory database). */
  readonly checkpointer: WalCheckpointer | null;

  constructor(file: string, onError: (message: string) => void = () => {}, checkpointIntervalMs?: number) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    const inMemory = file === ':memory:' || file === '';
    if (!inMemory) this.db.pragma('wal_autocheckpoint = 0'); // the checkpointer's job, not a request's
    this.checkpointer = inMemory ? null : new WalCheckpointer(file, onError, checkpointIntervalMs);
    const db = this.db;
    this.stmts = {
      insertSession: db.prepare(`INSERT INTO sessions (id, owner, repo_url, repo_branch, prompt, setup, auto_initiate,
        status, step, created_at, updated_at, prepared_at, initiated_at, last_error, last_event_id, sandbox,
        initial_turn_id, last_activity_at, instance, devcontainer, url_credential, base_sha, work_branch, changes, pushed, model)
        VALUES (@id, @owner, @repo_url, @repo_branch, @prompt, @setup, @auto_initiate, @status, @step, @created_at,
        @updated_at, @prepared_at, @initiated_at, @last_error, @last_event_id, @sandbox, @initial_turn_id,
        @last_activity_at, @instance, @devcontainer, @url_credential, @base_sha, @work_branch, @changes, @pushed, @model)`),
      getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
      listSessions: db.prepare('SELECT * FROM sessions WHERE owner = ? ORDER BY created_at DESC, id'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      deleteIfEmpty: db.prepare(
        'DELETE FROM sessions WHERE id = ? AND NOT EXISTS (SELECT 1 FROM events WHERE session_id = ?)',
      ),
      nextEventId: db.prepare(
        'UPDATE sessions SET last_event_id = last_event_id + 1, updated_at = @ts WHERE id = @id AND (@fence IS NULL OR instance = @fence) RETURNING last_event_id',
      ),
      insertEvent: db.prepare('INSERT INTO events (session_id, id, type, ts, data) VALUES (?, ?, ?, ?, ?)'),
      readEvents: db.prepare('SELECT * FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?'),
      insertJob: db.prepare(`INSERT INTO jobs (session_id, kind, payload, state, attempts, run_at, created_at, updated_at, target)
        VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?) RETURNING *`),
      claimJob: db.prepare(`UPDATE jobs SET state = 'running', lease_owner = @owner, lease_until = @until,
          attempts = attempts + 1, updated_at = @now
        WHERE id = (SELECT id FROM jobs
          WHERE (target IS NULL OR target = @instance)
            AND ((state = 'queued' AND run_at <= @now)
             -- Another owner's lease ran out (its process died); never our own, which we still run.
             OR (state = 'running' AND lease_until < @now AND lease_owner <> @owner))
          ORDER BY run_at, id LIMIT 1)
        RETURNING *`),
      renewLease: db.prepare(
        "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running'",
      ),
      finishJob: db.prepare('UPDATE jobs SET state = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?'),
      reschedule: db.prepare(
        "UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
      ),
      releaseLeases: db.prepare(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running' AND substr(lease_owner, 1, length(@prefix)) = @prefix",
      ),
      activeJobs: db.prepare("SELECT * FROM jobs WHERE session_id = ? AND state IN ('queued', 'running') ORDER BY id"),
      spendTicket: db.prepare('INSERT INTO spent_tickets (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING'),
      queuedSessions: db.prepare(
        "SELECT session_id FROM jobs WHERE state = 'queued' AND run_at <= ? ORDER BY run_at, id",
      ),
    };
  }

  async createSession(session: SessionRecord, job?: NewJob): Promise<JobRecord | null> {
    return this.db.transaction(() => {
      this.stmts.insertSession.run(sessionRow(session));
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

  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    const columns = patchColumns(patch);
    const sets = ['updated_at = @updated_at', ...Object.keys(columns).map((c) => `${c} = @${c}`)];
    const params = { ...columns, id, updated_at: new Date().toISOString() };
    this.db.prepare(`UPDATE sessions SET ${sets.join(', ')} WHERE id = @id`).run(params);
  }

  async transitionSession(id: string, from: readonly SessionStatus[], patch: SessionPatch, fence?: string, queueIs?: readonly QueuedMessage[]): Promise<boolean> {
    return this.casUpdate(id, from, patch, fence, queueIs);
  }

  private casUpdate(id: string, from: readonly SessionStatus[], patch: SessionPatch, fence?: string, queueIs?: readonly QueuedMessage[]): boolean {
    const columns = patchColumns(patch);
    const sets = ['updated_at = @updated_at', ...Object.keys(columns).map((c) => `${c} = @${c}`)];
    const marks = from.map((_, i) => `@from${i}`).join(', ');
    const params = {
      ...columns,
      id,
      updated_at: new Date().toISOString(),
      fence: fence ?? null,
      queue_is: queueIs ? JSON.stringify(queueIs) : null,
      ...Object.fromEntries(from.map((s, i) => [`from${i}`, s])),
    };
    const where = `id = @id AND status IN (${marks}) AND (@fence IS NULL OR instance = @fence) AND (@queue_is IS NULL OR queue = @queue_is)`;
    return this.db.prepare(`UPDATE sessions SET ${sets.join(', ')} WHERE ${where}`).run(params).changes > 0;
  }

  async beginJob(
    id: string,
    from: readonly SessionStatus[],
    patch: SessionPatch,
    job: NewJob,
    message?: { turnId: string; text: string },
  ): Promise<{ job: JobRecord; event: PersistedEvent | null } | null> {
    try {
      return this.db.transaction(() => {
        if (!this.casUpdate(id, from, patch)) throw new Refused();
        const event = message ? this.appendNow(id, 'user_message', message) : null;
        return { job: this.insertJob(job), event };
      })();
    } catch (err) {
      // Another status, or an active job already (the unique index): nothing was written.
      if (err instanceof Refused || /UNIQUE constraint failed: jobs\.session_id/.test(String(err))) return null;
      throw err;
    }
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
    fence?: string,
  ): Promise<Extract<PersistedEvent, { type: T }>> {
    return this.db.transaction(() => this.appendNow(sessionId, type, data, fence))();
  }

  /** Appends inside the caller's transaction. */
  private appendNow<T extends PersistedEventType>(sessionId: string, type: T, data: PersistedData<T>, fence?: string): Extract<PersistedEvent, { type: T }> {
    const ts = new Date().toISOString();
    const row = this.stmts.nextEventId.get({ ts, id: sessionId, fence: fence ?? null }) as { last_event_id: number } | undefined;
    if (!row) {
      if (fence !== undefined && this.stmts.getSession.get(sessionId)) throw new FencedError(sessionId);
      throw new Error(`session ${sessionId} does not exist`);
    }
    const event = PersistedEvent.parse({ id: row.last_event_id, sessionId, type, ts, data });
    this.stmts.insertEvent.run(sessionId, event.id, type, ts, JSON.stringify(event.data));
    return event as Extract<PersistedEvent, { type: T }>;
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
      job.target ?? null,
    ) as JobRow;
    return toJob(row);
  }

  async enqueueJob(job: NewJob): Promise<JobRecord> {
    return this.insertJob(job);
  }

  async claimJob(owner: string, now: number, leaseMs: number, instance: string): Promise<JobRecord | null> {
    const row = this.stmts.claimJob.get({ owner, now, until: now + leaseMs, instance }) as JobRow | undefined;
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

  async releaseLeases(ownerPrefix: string): Promise<number> {
    return this.stmts.releaseLeases.run({ prefix: ownerPrefix }).changes;
  }

  async activeJobs(sessionId: string): Promise<JobRecord[]> {
    return (this.stmts.activeJobs.all(sessionId) as JobRow[]).map(toJob);
  }

  async queuedSessions(now: number): Promise<string[]> {
    return (this.stmts.queuedSessions.all(now) as { session_id: string }[]).map((r) => r.session_id);
  }

  async heartbeat(instance: string, now: number): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.db.prepare('UPDATE instances SET heartbeat_at = ? WHERE id = ?').run(now, instance).changes > 0) return true;
      this.db.prepare('INSERT INTO instances (id, heartbeat_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at').run(instance, now);
      return false;
    })();
  }

  async instanceAlive(instance: string, since: number): Promise<boolean> {
    return !!this.db.prepare('SELECT 1 FROM instances WHERE id = ? AND heartbeat_at >= ?').get(instance, since);
  }

  async takeDeadInstances(before: number): Promise<string[]> {
    return (this.db.prepare('DELETE FROM instances WHERE heartbeat_at < ? RETURNING id').all(before) as { id: string }[]).map((r) => r.id);
  }

  async freeJobsOf(instance: string): Promise<void> {
    this.db.prepare('UPDATE jobs SET target = NULL WHERE target = ?').run(instance);
  }

  async sessionsOn(instance: string, statuses: SessionStatus[]): Promise<SessionRecord[]> {
    if (statuses.length === 0) return [];
    const marks = statuses.map(() => '?').join(', ');
    const rows = this.db.prepare(`SELECT * FROM sessions WHERE instance = ? AND status IN (${marks})`).all(instance, ...statuses) as SessionRow[];
    return rows.map(toSession);
  }


  async spendTicket(nonce: string, expiresAt: number): Promise<boolean> {
    return this.stmts.spendTicket.run(nonce, expiresAt).changes === 1;
  }

  async pruneSpentTickets(now: number): Promise<number> {
    return this.db.prepare('DELETE FROM spent_tickets WHERE expires_at <= ?').run(now).changes;
  }

  async addCheckpoint(checkpoint: CheckpointRecord, bundle: Buffer, changes: NonNullable<SessionRecord['changes']>): Promise<boolean> {
    return this.db.transaction(() => {
      const inserted = this.db
        .prepare(
          `INSERT INTO checkpoints (${CHECKPOINT_COLUMNS}, bundle) VALUES (@session_id, @seq, @sha, @parent, @turn_id, @reason,
           @created_at, @files, @additions, @deletions, @bundle) ON CONFLICT (session_id, seq) DO NOTHING`,
        )
        .run({ ...checkpointRow(checkpoint), bundle });
      if (inserted.changes === 0) return false;
      this.db.prepare('UPDATE sessions SET changes = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(changes), new Date().toISOString(), checkpoint.sessionId);
      return true;
    })();
  }

  async listCheckpoints(sessionId: string): Promise<CheckpointRecord[]> {
    return (this.db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE session_id = ? ORDER BY seq`).all(sessionId) as CheckpointRow[]).map(
      toCheckpoint,
    );
  }

  async checkpointBundle(sessionId: string, seq: number): Promise<Buffer | null> {
    const row = this.db.prepare('SELECT bundle FROM checkpoints WHERE session_id = ? AND seq = ?').get(sessionId, seq) as { bundle: Buffer } | undefined;
    return row?.bundle ?? null;
  }

  async putCredential(c: CredentialRecord): Promise<CredentialRecord> {
    const row = this.db
      .prepare(
        `INSERT INTO credentials (owner, host, username, token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner, host) DO UPDATE SET username = excluded.username, token = excluded.token, updated_at = excluded.updated_at
         RETURNING *`,
      )
      .get(c.owner, c.host, c.username, c.token, c.createdAt, c.updatedAt) as CredentialRow;
    return toCredential(row);
  }

  async listCredentials(owner?: string): Promise<CredentialRecord[]> {
    const rows = (owner === undefined
      ? this.db.prepare('SELECT * FROM credentials ORDER BY owner, host').all()
      : this.db.prepare('SELECT * FROM credentials WHERE owner = ? ORDER BY host').all(owner)) as CredentialRow[];
    return rows.map(toCredential);
  }

  async getCredential(owner: string, host: string): Promise<CredentialRecord | null> {
    const row = this.db.prepare('SELECT * FROM credentials WHERE owner = ? AND host = ?').get(owner, host) as CredentialRow | undefined;
    return row ? toCredential(row) : null;
  }

  async deleteCredential(owner: string, host: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM credentials WHERE owner = ? AND host = ?').run(owner, host).changes > 0;
  }

  async putSecret(s: SecretRecord): Promise<SecretRecord> {
    const row = this.db
      .prepare(
        `INSERT INTO secrets (owner, name, repo, value, expose_to, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (owner, name, repo) DO UPDATE SET value = excluded.value, expose_to = excluded.expose_to, updated_at = excluded.updated_at
         RETURNING *`,
      )
      .get(s.owner, s.name, s.repo, s.value, s.exposeTo, s.createdAt, s.updatedAt) as SecretRow;
    return toSecret(row);
  }

  async listSecrets(owner?: string): Promise<SecretRecord[]> {
    const rows = (owner === undefined
      ? this.db.prepare('SELECT * FROM secrets ORDER BY owner, name, repo').all()
      : this.db.prepare('SELECT * FROM secrets WHERE owner = ? ORDER BY name, repo').all(owner)) as SecretRow[];
    return rows.map(toSecret);
  }

  async deleteSecret(owner: string, name: string, repo: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM secrets WHERE owner = ? AND name = ? AND repo = ?').run(owner, name, repo).changes > 0;
  }

  async settingOnce(name: string, candidate: string): Promise<string> {
    this.db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING').run(name, candidate);
    return (this.db.prepare('SELECT value FROM settings WHERE name = ?').get(name) as { value: string }).value;
  }

  async recordDoomed(d: { ref: string; instance: string; sessionId: string | null; error: string }): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO doomed_sandboxes (ref, instance, session_id, since, last_error) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (ref) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error`,
      )
      .run(d.ref, d.instance, d.sessionId, new Date().toISOString(), d.error);
  }

  async listDoomed(instance: string): Promise<DoomedSandbox[]> {
    return (this.db.prepare('SELECT * FROM doomed_sandboxes WHERE instance = ? ORDER BY since').all(instance) as DoomedRow[]).map(toDoomed);
  }

  async forgetDoomed(ref: string): Promise<void> {
    this.db.prepare('DELETE FROM doomed_sandboxes WHERE ref = ?').run(ref);
  }

  async now(): Promise<number> {
    return Date.now(); // one process: its clock is the database's
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async integrityCheck(): Promise<string> {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    this.db.close();
  }
}
