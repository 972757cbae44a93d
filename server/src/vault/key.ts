// Where the secret key comes from: BERTH_SECRET_KEY, or (one instance on SQLite) a 0600 key file in
// the data dir, created on first start. Several instances on PostgreSQL must all be given the same
// BERTH_SECRET_KEY. A key that cannot open what the store holds stops the server at startup.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseKey } from './cipher';

export class SecretKeyError extends Error {}

export interface KeySource {
  key: Buffer;
  /** How to name it in an error (never its value). */
  name: string;
}

/** The key for this server; throws a SecretKeyError that names the key and never shows it. */
export function loadSecretKey(options: { env: string | undefined; keyFile: string; shared: boolean }): KeySource {
  if (options.env !== undefined && options.env !== '') {
    const key = parseKey(options.env);
    if (!key) throw new SecretKeyError('BERTH_SECRET_KEY must be 32 bytes, as 64 hex digits or in base64 (e.g. `openssl rand -hex 32`)');
    return { key, name: 'BERTH_SECRET_KEY' };
  }
  if (options.shared) {
    throw new SecretKeyError('BERTH_SECRET_KEY is required with a PostgreSQL store: every instance must be given the same key (e.g. `openssl rand -hex 32`)');
  }
  if (existsSync(options.keyFile)) {
    const key = parseKey(readFileSync(options.keyFile, 'utf8'));
    if (!key) throw new SecretKeyError(`the key file ${options.keyFile} does not hold a 32-byte key`);
    return { key, name: `the key file ${options.keyFile}` };
  }
  const key = randomBytes(32);
  writeFileSync(options.keyFile, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return { key, name: `the key file ${options.keyFile}` };
}
