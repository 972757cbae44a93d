import type Database from 'better-sqlite3';

/** Ordered, append-only schema migrations. Never edit a released one: add a new one. */
const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
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
  },
];

export function migrate(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
  );
  let count = 0;
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
        m.version,
        new Date().toISOString(),
      );
    })();
    count++;
  }
  return count;
}

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
