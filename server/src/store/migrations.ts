/**
 * The one ordered, append-only list of schema migrations for every store. A step is plain SQL,
 * or SQL written once with the few type names where the dialects differ.
 * Never edit a released step: add a new one.
 */
export type Dialect = 'sqlite' | 'postgres';

/** Where the dialects differ in type names (v1 is written once with these). */
interface DialectTypes {
  /** Epoch milliseconds: beyond 32 bits. */
  epoch: string;
  /** An auto-numbered primary key. */
  serial: string;
  withoutRowid: string;
  /** Binary data (git bundles). */
  blob: string;
}

const TYPES: Record<Dialect, DialectTypes> = {
  sqlite: { epoch: 'INTEGER', serial: 'INTEGER PRIMARY KEY AUTOINCREMENT', withoutRowid: ' WITHOUT ROWID', blob: 'BLOB' },
  postgres: { epoch: 'BIGINT', serial: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY', withoutRowid: '', blob: 'BYTEA' },
};

export interface Migration {
  version: number;
  sql: string | ((types: DialectTypes) => string);
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: (t) => `
      CREATE TABLE sessions (
        id               TEXT PRIMARY KEY,
        owner            TEXT NOT NULL,
        repo_url         TEXT NOT NULL,
        repo_branch      TEXT,
        prompt           TEXT,
        setup            TEXT NOT NULL DEFAULT '[]',
        auto_initiate    INTEGER NOT NULL DEFAULT 0,
        status           TEXT NOT NULL,
        step             TEXT,
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL,
        prepared_at      TEXT,
        initiated_at     TEXT,
        last_error       TEXT,
        last_event_id    INTEGER NOT NULL DEFAULT 0,
        sandbox          TEXT,
        initial_turn_id  TEXT,
        last_activity_at TEXT NOT NULL
      );
      CREATE INDEX sessions_owner ON sessions(owner, created_at);
      CREATE INDEX sessions_status ON sessions(status);

      CREATE TABLE events (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        id         INTEGER NOT NULL,
        type       TEXT NOT NULL,
        ts         TEXT NOT NULL,
        data       TEXT NOT NULL,
        PRIMARY KEY (session_id, id)
      )${t.withoutRowid};

      CREATE TABLE jobs (
        id          ${t.serial},
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,
        payload     TEXT NOT NULL,
        state       TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        run_at      ${t.epoch} NOT NULL,
        lease_owner TEXT,
        lease_until ${t.epoch},
        created_at  ${t.epoch} NOT NULL,
        updated_at  ${t.epoch} NOT NULL
      );
      CREATE INDEX jobs_due ON jobs(state, run_at);
      CREATE INDEX jobs_session ON jobs(session_id);
    `,
  },
  {
    // Several instances on one database: each session's sandbox lives on one instance (placement),
    // jobs can be addressed to one, and instances prove they are alive by a heartbeat.
    version: 2,
    sql: (t) => `
      ALTER TABLE sessions ADD COLUMN instance TEXT;
      ALTER TABLE jobs ADD COLUMN target TEXT;
      CREATE INDEX sessions_instance ON sessions(instance);
      CREATE TABLE instances (id TEXT PRIMARY KEY, heartbeat_at ${t.epoch} NOT NULL);
    `,
  },
  {
    // Stream tickets that work on every instance: the signing secret is shared through the store,
    // and a ticket's nonce is recorded when it is spent (kept until the ticket expires).
    version: 3,
    sql: (t) => `
      CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE spent_tickets (nonce TEXT PRIMARY KEY, expires_at ${t.epoch} NOT NULL)${t.withoutRowid};
      CREATE INDEX spent_tickets_expiry ON spent_tickets(expires_at);
    `,
  },
  {
    // The session's work: its base commit and work branch, a summary of its changes, its last push,
    // and every checkpoint with the git bundle (previous checkpoint..this one) that rebuilds it on
    // any instance, whatever happened to the data dir that made it.
    version: 4,
    sql: (t) => `
      ALTER TABLE sessions ADD COLUMN base_sha TEXT;
      ALTER TABLE sessions ADD COLUMN work_branch TEXT;
      ALTER TABLE sessions ADD COLUMN changes TEXT;
      ALTER TABLE sessions ADD COLUMN pushed TEXT;
      CREATE TABLE checkpoints (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        sha        TEXT NOT NULL,
        parent     TEXT NOT NULL,
        turn_id    TEXT,
        reason     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        files      INTEGER NOT NULL,
        additions  INTEGER NOT NULL,
        deletions  INTEGER NOT NULL,
        bundle     ${t.blob} NOT NULL,
        PRIMARY KEY (session_id, seq)
      );
    `,
  },
  {
    // The dev container config a start names (a repository with several).
    version: 5,
    sql: 'ALTER TABLE sessions ADD COLUMN devcontainer TEXT;',
  },
  {
    // Per-user git credentials and secrets, sealed (AES-256-GCM) with the server's secret key; a
    // credential a start's URL carried, sealed the same way, for that session only.
    version: 6,
    sql: `
      CREATE TABLE credentials (
        owner      TEXT NOT NULL,
        host       TEXT NOT NULL,
        username   TEXT NOT NULL,
        token      TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (owner, host)
      );
      CREATE TABLE secrets (
        owner      TEXT NOT NULL,
        name       TEXT NOT NULL,
        repo       TEXT NOT NULL DEFAULT '',
        value      TEXT NOT NULL,
        expose_to  TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (owner, name, repo)
      );
      ALTER TABLE sessions ADD COLUMN url_credential TEXT;
    `,
  },
  {
    // One active job per session, held by the database (check-then-insert across awaits raced).
    // Older duplicates, if any, give way to the newest.
    version: 7,
    sql: `
      UPDATE jobs SET state = 'failed'
        WHERE state IN ('queued', 'running')
          AND id NOT IN (SELECT max(id) FROM jobs WHERE state IN ('queued', 'running') GROUP BY session_id);
      CREATE UNIQUE INDEX jobs_one_active ON jobs(session_id) WHERE state IN ('queued', 'running');
    `,
  },
  {
    // Sandboxes that could not be destroyed (Docker refused, timed out): retried until gone.
    version: 8,
    sql: `
      CREATE TABLE doomed_sandboxes (
        ref        TEXT PRIMARY KEY,
        instance   TEXT NOT NULL,
        session_id TEXT,
        since      TEXT NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 1,
        last_error TEXT NOT NULL
      );
    `,
  },
  {
    // Messages sent while the agent was busy, oldest first: part of the session row, so that every
    // change to it is one compare-and-set with the status.
    version: 9,
    sql: `ALTER TABLE sessions ADD COLUMN queue TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    // The model a start chose, and the tokens its turns used (as the endpoint reported them).
    version: 10,
    sql: `
      ALTER TABLE sessions ADD COLUMN model TEXT;
      ALTER TABLE sessions ADD COLUMN usage TEXT;
    `,
  },
];

export function migrationSql(m: Migration, dialect: Dialect): string {
  return typeof m.sql === 'string' ? m.sql : m.sql(TYPES[dialect]);
}

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
