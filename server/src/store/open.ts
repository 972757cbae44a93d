import type { Store } from './store';
import { SqliteStore } from './sqlite/sqliteStore';
import { PgStore } from './postgres/pgStore';

const PG_URL = /^postgres(?:ql)?:\/\//i;

/** `postgres://…` selects PostgreSQL; anything else (none) the SQLite file in the data dir. */
export function isPostgresUrl(spec: string | null | undefined): spec is string {
  return !!spec && PG_URL.test(spec);
}

/** The store a server runs on: PostgreSQL when a URL is given, else SQLite in `sqliteFile`. */
export async function openStore(spec: string | null, sqliteFile: string, origin: string, onError?: (message: string) => void): Promise<Store> {
  if (isPostgresUrl(spec)) return PgStore.open(spec, { origin });
  return new SqliteStore(sqliteFile, onError);
}

/** The URL's password, for the redactor: it must never reach a log, an event or an error. */
export function storePassword(spec: string | null): string | undefined {
  if (!isPostgresUrl(spec)) return undefined;
  try {
    return decodeURIComponent(new URL(spec).password) || undefined;
  } catch {
    return undefined;
  }
}

/** A printable name of the store: the URL without its credentials. */
export function describeStore(spec: string | null): string {
  if (!isPostgresUrl(spec)) return 'sqlite';
  try {
    const url = new URL(spec);
    return `postgres://${url.host}${url.pathname}`;
  } catch {
    return 'postgres (unparsable URL)';
  }
}
