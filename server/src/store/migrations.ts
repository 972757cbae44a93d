/**
 * The one ordered, append-only list of schema migrations for every store. A step is plain SQL
 * where both dialects agree, or one text per dialect where they do not (types, autoincrement).
 * Never edit a released step: add a new one.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  sql: string | Record<Dialect, string>;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: {
      sqlite: `
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
      ) WITHOUT ROWID;

      CREATE TABLE jobs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,
        payload     TEXT NOT NULL,
        state       TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        run_at      INTEGER NOT NULL,
        lease_owner TEXT,
        lease_until INTEGER,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      );
      CREATE INDEX jobs_due ON jobs(state, run_at);
      CREATE INDEX jobs_session ON jobs(session_id);
    `,
      // Same tables; times in epoch milliseconds need BIGINT, ids come from an identity column.
      postgres: `
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
      );

      CREATE TABLE jobs (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,
        payload     TEXT NOT NULL,
        state       TEXT NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        run_at      BIGINT NOT NULL,
        lease_owner TEXT,
        lease_until BIGINT,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
      );
      CREATE INDEX jobs_due ON jobs(state, run_at);
      CREATE INDEX jobs_session ON jobs(session_id);
    `,
    },
  },
  {
    // Several instances on one database: each session's sandbox lives on one instance (placement),
    // jobs can be addressed to one, and instances prove they are alive by a heartbeat.
    version: 2,
    sql: {
      sqlite: `
      ALTER TABLE sessions ADD COLUMN instance TEXT;
      ALTER TABLE jobs ADD COLUMN target TEXT;
      CREATE TABLE instances (id TEXT PRIMARY KEY, heartbeat_at INTEGER NOT NULL);
    `,
      postgres: `
      ALTER TABLE sessions ADD COLUMN instance TEXT;
      ALTER TABLE jobs ADD COLUMN target TEXT;
      CREATE INDEX sessions_instance ON sessions(instance);
      CREATE TABLE instances (id TEXT PRIMARY KEY, heartbeat_at BIGINT NOT NULL);
    `,
    },
  },
];

export function migrationSql(m: Migration, dialect: Dialect): string {
  return typeof m.sql === 'string' ? m.sql : m.sql[dialect];
}

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
