import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface TicketClaims {
  user: string;
  sessionId: string;
  issuedAt: number;
  expiresAt: number;
  nonce: string;
}

export type TicketCheck = { ok: true; claims: TicketClaims } | { ok: false; reason: string };

export function loadTicketSecret(file: string): Buffer {
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  const secret = randomBytes(32);
  writeFileSync(file, secret.toString('base64url'), { mode: 0o600, flag: 'wx' });
  return secret;
}

/**
 * Short-lived, signed, single-use stream tickets bound to one user and one session, so that a
 * WebSocket URL (which may end up in logs) never carries the bearer token.
 */
export class TicketIssuer {
  /** Nonces already used, kept until their ticket would have expired anyway. */
  private readonly used = new Map<string, number>();
  /**
   * The used nonces live in memory: after a restart they are gone, so a ticket spent before it
   * could be replayed. Tickets issued before this process started are refused instead.
   */
  private readonly since: number;

  constructor(
    private readonly secret: Buffer,
    private readonly ttlMs: number,
    private readonly clock: () => number,
  ) {
    this.since = clock();
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  issue(user: string, sessionId: string): { ticket: string; expiresAt: number } {
    const issuedAt = this.clock();
    const expiresAt = issuedAt + this.ttlMs;
    const nonce = randomBytes(12).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ u: user, s: sessionId, i: issuedAt, e: expiresAt, n: nonce })).toString('base64url');
    return { ticket: `${payload}.${this.sign(payload)}`, expiresAt };
  }

  /** Checks signature, expiry, binding and single use; a valid ticket is spent by this call. */
  redeem(ticket: string, sessionId: string): TicketCheck {
    const dot = ticket.indexOf('.');
    if (dot <= 0) return { ok: false, reason: 'malformed ticket' };
    const payload = ticket.slice(0, dot);
    const signature = Buffer.from(ticket.slice(dot + 1));
    const expected = Buffer.from(this.sign(payload));
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      return { ok: false, reason: 'bad ticket signature' };
    }
    let claims: TicketClaims;
    try {
      const raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      if (typeof raw.u !== 'string' || typeof raw.s !== 'string' || typeof raw.i !== 'number' || typeof raw.e !== 'number' || typeof raw.n !== 'string') {
        return { ok: false, reason: 'malformed ticket' };
      }
      claims = { user: raw.u, sessionId: raw.s, issuedAt: raw.i, expiresAt: raw.e, nonce: raw.n };
    } catch {
      return { ok: false, reason: 'malformed ticket' };
    }
    const now = this.clock();
    if (claims.expiresAt <= now) return { ok: false, reason: 'ticket expired' };
    if (claims.issuedAt < this.since) return { ok: false, reason: 'ticket issued before the server restarted; get a new one' };
    if (claims.sessionId !== sessionId) return { ok: false, reason: 'ticket is for another session' };
    this.prune(now);
    if (this.used.has(claims.nonce)) return { ok: false, reason: 'ticket already used' };
    this.used.set(claims.nonce, claims.expiresAt);
    return { ok: true, claims };
  }

  private prune(now: number): void {
    // Nonces go in roughly in expiry order (one TTL): stopping at the first live one keeps a
    // reconnect storm from scanning every ticket of the last minute. One left over a little
    // longer is harmless: its ticket has expired and is refused for that anyway.
    for (const [nonce, expiresAt] of this.used) {
      if (expiresAt > now) break;
      this.used.delete(nonce);
    }
  }
}
