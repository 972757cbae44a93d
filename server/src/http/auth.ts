import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Parses `BERTH_TOKENS="alice:tokA,bob:tokB"`. */
export function parseTokens(spec: string): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const pair of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const colon = pair.indexOf(':');
    if (colon <= 0 || colon === pair.length - 1) throw new Error('BERTH_TOKENS must look like "user:token,user2:token2"');
    tokens.set(pair.slice(0, colon), pair.slice(colon + 1));
  }
  return tokens;
}

/** Reads the data dir's token for user `local`, creating it (mode 0600) on first use. */
export function ensureLocalToken(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true });
  const token = `berth_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Resolves a bearer token to its user. Every known token is compared, each in constant time on
 * equal-length digests, so timing tells nothing about how much of a token matched.
 */
export class TokenAuthenticator {
  private readonly entries: { user: string; digest: Buffer }[];

  constructor(tokens: Map<string, string>) {
    this.entries = [...tokens].map(([user, token]) => ({ user, digest: digest(token) }));
  }

  authenticate(header: string | undefined): string | null {
    if (!header) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return null;
    const presented = digest(match[1]!);
    let user: string | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented) && user === null) user = entry.user;
    }
    return user;
  }
}
