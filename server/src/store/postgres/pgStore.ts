import pg from 'pg';
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
import { EVENTS_CHANNEL, JOBS_CHANNEL, persistedNotice } from '../../cluster/notices';

/** BIGINT (epoch milliseconds, job ids) as numbers: they stay far below 2^53. */
const INT8: number = pg.types.builtins.INT8;
function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  return oid === INT8 ? Number : (pg.types.getTypeParser(oid, format) as (value: string) => unknown);
}
const types = { getTypeParser: typeParser as typeof pg.types.getTypeParser };

export interface PgStoreOptions {
  /** Tags this process's NOTIFYs so that it does not fetch back the events it published itself. */
  origin: string;
  maxConnections?: number;
}

/** Connection settings for a URL: ours, with BIGINT parsed as numbers. */
export function pgConfig(url: string, max = 10): pg.PoolConfig {
  // Bounded waits: a wedged database or a lock held forever becomes an error the caller reports,
  // never a request (or a job) that hangs.
  return {
    connectionString: url,
    max,
    types,
    application_name: 'berth-server',
    connectionTimeoutMillis: 10_000,
    statement_timeout: 30_000,
  };
}

/** A change that must not happen: rolls its transaction back. */
class Refused extends Error {}

/**
 * The shared store of several server instances: PostgreSQL. Same tables and semantics as the
 * SQLite store; per-session event ids are serialised by the session row's lock, so ids commit
 * in order and a reader that sees id N knows every id below it is visible too.
 */
export class PgStore implements Store {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly origin: string,
  ) {}

  static async open(url: string, options: PgStoreOptions): Promise<PgStore> {
    const pool = new pg.Pool(pgConfig(url, options.maxConnections));
    // An idle client that loses its connection must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PgStore(pool, options.origin);
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  private async rows<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(text, values)).rows;
  }

  async createSession(session: SessionRecord, job?: NewJob): Promise<JobRecord | null> {
    const row = sessionRow(session);
    const columns = Object.keys(row);
    return this.tx(async (c) => {
      await c.query(
        `INSERT INTO sessions (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        Object.values(row),
      );
      return job ? this.insertJob(c, job) : null;
    });
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const [row] = await this.rows<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return row ? toSession(row) : null;
  }

  async listSessions(owner: string): Promise<SessionRecord[]> {
    return (await this.rows<SessionRow>('SELECT * FROM sessions WHERE owner = $1 ORDER BY created_at DESC, id', [owner])).map(
      toSession,
    );
  }

  async sessionsByStatus(statuses: SessionStatus[]): Promise<SessionRecord[]> {
    if (statuses.length === 0) return [];
    return (await this.rows<SessionRow>('SELECT * FROM sessions WHERE status = ANY($1)', [statuses])).map(toSession);
  }

  async updateSession(id: string, patch: SessionPatch): Promise<void> {
    const columns = { ...patchColumns(patch), updated_at: new Date().toISOString() };
    const names = Object.keys(columns);
    await this.pool.query(
      `UPDATE sessions SET ${names.map((n, i) => `${n} = $${i + 2}`).join(', ')} WHERE id = $1`,
      [id, ...Object.values(columns)],
    );
  }

  private async casUpdate(
    c: pg.PoolClient | pg.Pool,
    id: string,
    from: readonly SessionStatus[],
    patch: SessionPatch,
    fence?: string,
    queueIs?: readonly QueuedMessage[],
  ): Promise<boolean> {
    const columns = { ...patchColumns(patch), updated_at: new Date().toISOString() };
    const names = Object.keys(columns);
    const r = await c.query(
      `UPDATE sessions SET ${names.map((n, i) => `${n} = $${i + 5}`).join(', ')}
       WHERE id = $1 AND status = ANY($2) AND ($3::text IS NULL OR instance = $3) AND ($4::text IS NULL OR queue = $4)`,
      [id, [...from], fence ?? null, queueIs ? JSON.stringify(queueIs) : null, ...Object.values(columns)],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async transitionSession(id: string, from: readonly SessionStatus[], patch: SessionPatch, fence?: string, queueIs?: readonly QueuedMessage[]): Promise<boolean> {
    return this.casUpdate(this.pool, id, from, patch, fence, queueIs);
  }

  async beginJob(
    id: string,
    from: readonly SessionStatus[],
    patch: SessionPatch,
    job: NewJob,
    message?: { turnId: string; text: string },
  ): Promise<{ job: JobRecord; event: PersistedEvent | null } | null> {
    try {
      return await this.tx(async (c) => {
        if (!(await this.casUpdate(c, id, from, patch))) throw new Refused();
        const event = message ? await this.appendIn(c, id, 'user_message', message) : null;
        return { job: await this.insertJob(c, job), event };
      });
    } catch (err) {
      // Another status, or an active job already (the unique index): nothing was written.
      if (err instanceof Refused || (err as { code?: string }).code === '23505') return null;
      throw err;
    }
  }

  async deleteSession(id: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM sessions WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async deleteSessionIfEmpty(id: string): Promise<boolean> {
    const r = await this.pool.query(
      'DELETE FROM sessions WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM events WHERE session_id = $1)',
      [id],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async appendEvent<T extends PersistedEventType>(
    sessionId: string,
    type: T,
    data: PersistedData<T>,
    fence?: string,
  ): Promise<Extract<PersistedEvent, { type: T }>> {
    return this.tx((c) => this.appendIn(c, sessionId, type, data, fence));
  }

  /** Appends inside the caller's transaction. */
  private async appendIn<T extends PersistedEventType>(
    c: pg.PoolClient,
    sessionId: string,
    type: T,
    data: PersistedData<T>,
    fence?: string,
  ): Promise<Extract<PersistedEvent, { type: T }>> {
    const ts = new Date().toISOString();
    // The row lock taken here is held to COMMIT: appenders of one session queue up behind it.
    const { rows } = await c.query<{ last_event_id: number }>(
      'UPDATE sessions SET last_event_id = last_event_id + 1, updated_at = $1 WHERE id = $2 AND ($3::text IS NULL OR instance = $3) RETURNING last_event_id',
      [ts, sessionId, fence ?? null],
    );
    if (!rows[0]) {
      if (fence !== undefined && (await c.query('SELECT 1 FROM sessions WHERE id = $1', [sessionId])).rowCount) throw new FencedError(sessionId);
      throw new Error(`session ${sessionId} does not exist`);
    }
    const event = PersistedEvent.parse({ id: rows[0].last_event_id, sessionId, type, ts, data });
    await c.query('INSERT INTO events (session_id, id, type, ts, data) VALUES ($1, $2, $3, $4, $5)', [
      sessionId,
      event.id,
      type,
      ts,
      JSON.stringify(event.data),
    ]);
    // Sent at COMMIT, in commit order, and only if the event really was stored.
    await c.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, persistedNotice(this.origin, sessionId, event.id)]);
    return event as Extract<PersistedEvent, { type: T }>;
  }

  async readEvents(sessionId: string, afterId: number, limit = 10_000): Promise<PersistedEvent[]> {
    return (
      await this.rows<EventRow>('SELECT * FROM events WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3', [
        sessionId,
        afterId,
        limit,
      ])
    ).map(toEvent);
  }

  private async insertJob(c: pg.PoolClient | pg.Pool, job: NewJob): Promise<JobRecord> {
    const now = Date.now();
    const { rows } = await c.query<JobRow>(
      `INSERT INTO jobs (session_id, kind, payload, state, attempts, run_at, created_at, updated_at, target)
       VALUES ($1, $2, $3, 'queued', 0, $4, $5, $5, $6) RETURNING *`,
      [job.sessionId, job.kind, JSON.stringify(job.payload), job.runAt, now, job.target ?? null],
    );
    // Wakes the job runners of every instance now instead of at their next poll.
    await c.query('SELECT pg_notify($1, $2)', [JOBS_CHANNEL, job.target ?? '']);
    return toJob(rows[0]!);
  }

  async enqueueJob(job: NewJob): Promise<JobRecord> {
    return this.insertJob(this.pool, job);
  }

  async claimJob(owner: string, now: number, leaseMs: number, instance: string): Promise<JobRecord | null> {
    // SKIP LOCKED: instances claiming at the same moment take different jobs instead of queueing.
    const [row] = await this.rows<JobRow>(
      `UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $3, attempts = attempts + 1, updated_at = $2
       WHERE id = (SELECT id FROM jobs
         WHERE (target IS NULL OR target = $4)
           AND ((state = 'queued' AND run_at <= $2)
            -- Another owner's lease ran out (its process died); never our own, which we still run.
            OR (state = 'running' AND lease_until < $2 AND lease_owner <> $1))
         ORDER BY run_at, id LIMIT 1
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [owner, now, now + leaseMs, instance],
    );
    return row ? toJob(row) : null;
  }

  async renewLease(jobId: number, owner: string, leaseUntil: number): Promise<boolean> {
    const r = await this.pool.query(
      "UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'running'",
      [leaseUntil, Date.now(), jobId, owner],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async finishJob(jobId: number, state: 'done' | 'failed'): Promise<void> {
    await this.pool.query('UPDATE jobs SET state = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3', [
      state,
      Date.now(),
      jobId,
    ]);
  }

  async reschedule(jobId: number, runAt: number): Promise<void> {
    await this.pool.query(
      "UPDATE jobs SET state = 'queued', run_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3",
      [runAt, Date.now(), jobId],
    );
  }

  async releaseLeases(ownerPrefix: string): Promise<number> {
    const r = await this.pool.query(
      "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running' AND starts_with(lease_owner, $1)",
      [ownerPrefix],
    );
    return r.rowCount ?? 0;
  }

  async activeJobs(sessionId: string): Promise<JobRecord[]> {
    return (
      await this.rows<JobRow>("SELECT * FROM jobs WHERE session_id = $1 AND state IN ('queued', 'running') ORDER BY id", [sessionId])
    ).map(toJob);
  }

  async queuedSessions(now: number): Promise<string[]> {
    return (
      await this.rows<{ session_id: string }>("SELECT session_id FROM jobs WHERE state = 'queued' AND run_at <= $1 ORDER BY run_at, id", [now])
    ).map((r) => r.session_id);
  }

  async heartbeat(instance: string, now: number): Promise<boolean> {
    if (((await this.pool.query('UPDATE instances SET heartbeat_at = $2 WHERE id = $1', [instance, now])).rowCount ?? 0) > 0) return true;
    await this.pool.query(
      'INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at',
      [instance, now],
    );
    return false;
  }

  async instanceAlive(instance: string, since: number): Promise<boolean> {
    return (await this.rows('SELECT 1 FROM instances WHERE id = $1 AND heartbeat_at >= $2', [instance, since])).length > 0;
  }

  async takeDeadInstances(before: number): Promise<string[]> {
    // DELETE … RETURNING: of several instances noticing the same death, exactly one gets it.
    return (await this.rows<{ id: string }>('DELETE FROM instances WHERE heartbeat_at < $1 RETURNING id', [before])).map((r) => r.id);
  }

  async freeJobsOf(instance: string): Promise<void> {
    await this.pool.query('UPDATE jobs SET target = NULL WHERE target = $1', [instance]);
  }

  async sessionsOn(instance: string, statuses: SessionStatus[]): Promise<SessionRecord[]> {
    if (statuses.length === 0) return [];
    return (await this.rows<SessionRow>('SELECT * FROM sessions WHERE instance = $1 AND status = ANY($2)', [instance, statuses])).map(
      toSession,
    );
  }


  async spendTicket(nonce: string, expiresAt: number): Promise<boolean> {
    const r = await this.pool.query('INSERT INTO spent_tickets (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING', [
      nonce,
      expiresAt,
    ]);
    return r.rowCount === 1;
  }

  async pruneSpentTickets(now: number): Promise<number> {
    return (await this.pool.query('DELETE FROM spent_tickets WHERE expires_at <= $1', [now])).rowCount ?? 0;
  }

  async addCheckpoint(checkpoint: CheckpointRecord, bundle: Buffer, changes: NonNullable<SessionRecord['changes']>): Promise<boolean> {
    const row = checkpointRow(checkpoint);
    return this.tx(async (c) => {
      const inserted = await c.query(
        `INSERT INTO checkpoints (${CHECKPOINT_COLUMNS}, bundle) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (session_id, seq) DO NOTHING`,
        [...(Object.values(row) as unknown[]), bundle],
      );
      if (inserted.rowCount !== 1) return false;
      await c.query('UPDATE sessions SET changes = $1, updated_at = $2 WHERE id = $3', [JSON.stringify(changes), new Date().toISOString(), checkpoint.sessionId]);
      return true;
    });
  }

  async listCheckpoints(sessionId: string): Promise<CheckpointRecord[]> {
    return (await this.rows<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE session_id = $1 ORDER BY seq`, [sessionId])).map(
      toCheckpoint,
    );
  }

  async checkpointBundle(sessionId: string, seq: number): Promise<Buffer | null> {
    const [row] = await this.rows<{ bundle: Buffer }>('SELECT bundle FROM checkpoints WHERE session_id = $1 AND seq = $2', [sessionId, seq]);
    return row?.bundle ?? null;
  }

  async putCredential(c: CredentialRecord): Promise<CredentialRecord> {
    const [row] = await this.rows<CredentialRow>(
      `INSERT INTO credentials (owner, host, username, token, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (owner, host) DO UPDATE SET username = excluded.username, token = excluded.token, updated_at = excluded.updated_at
       RETURNING *`,
      [c.owner, c.host, c.username, c.token, c.createdAt, c.updatedAt],
    );
    return toCredential(row!);
  }

  async listCredentials(owner?: string): Promise<CredentialRecord[]> {
    const rows =
      owner === undefined
        ? await this.rows<CredentialRow>('SELECT * FROM credentials ORDER BY owner, host')
        : await this.rows<CredentialRow>('SELECT * FROM credentials WHERE owner = $1 ORDER BY host', [owner]);
    return rows.map(toCredential);
  }

  async getCredential(owner: string, host: string): Promise<CredentialRecord | null> {
    const [row] = await this.rows<CredentialRow>('SELECT * FROM credentials WHERE owner = $1 AND host = $2', [owner, host]);
    return row ? toCredential(row) : null;
  }

  async deleteCredential(owner: string, host: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM credentials WHERE owner = $1 AND host = $2', [owner, host])).rowCount ?? 0) > 0;
  }

  async putSecret(s: SecretRecord): Promise<SecretRecord> {
    const [row] = await this.rows<SecretRow>(
      `INSERT INTO secrets (owner, name, repo, value, expose_to, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (owner, name, repo) DO UPDATE SET value = excluded.value, expose_to = excluded.expose_to, updated_at = excluded.updated_at
       RETURNING *`,
      [s.owner, s.name, s.repo, s.value, s.exposeTo, s.createdAt, s.updatedAt],
    );
    return toSecret(row!);
  }

  async listSecrets(owner?: string): Promise<SecretRecord[]> {
    const rows =
      owner === undefined
        ? await this.rows<SecretRow>('SELECT * FROM secrets ORDER BY owner, name, repo')
        : await this.rows<SecretRow>('SELECT * FROM secrets WHERE owner = $1 ORDER BY name, repo', [owner]);
    return rows.map(toSecret);
  }

  async deleteSecret(owner: string, name: string, repo: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM secrets WHERE owner = $1 AND name = $2 AND repo = $3', [owner, name, repo])).rowCount ?? 0) > 0;
  }

  async settingOnce(name: string, candidate: string): Promise<string> {
    await this.pool.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, candidate]);
    const [row] = await this.rows<{ value: string }>('SELECT value FROM settings WHERE name = $1', [name]);
    return row!.value;
  }

  async recordDoomed(d: { ref: string; instance: string; sessionId: string | null; error: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO doomed_sandboxes (ref, instance, session_id, since, last_error) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (ref) DO UPDATE SET attempts = doomed_sandboxes.attempts + 1, last_error = excluded.last_error`,
      [d.ref, d.instance, d.sessionId, new Date().toISOString(), d.error],
    );
  }

  async listDoomed(instance: string): Promise<DoomedSandbox[]> {
    return (await this.rows<DoomedRow>('SELECT * FROM doomed_sandboxes WHERE instance = $1 ORDER BY since', [instance])).map(toDoomed);
  }

  async forgetDoomed(ref: string): Promise<void> {
    await this.pool.query('DELETE FROM doomed_sandboxes WHERE ref = $1', [ref]);
  }

  async now(): Promise<number> {
    const [row] = await this.rows<{ now: number }>('SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now');
    return Number(row!.now);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async integrityCheck(): Promise<string> {
    // PostgreSQL keeps itself consistent; what can go wrong here is the schema or the connection.
    const [row] = await this.rows<{ version: number }>('SELECT max(version) AS version FROM schema_migrations');
    return row?.version ? 'ok' : 'no schema';
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
