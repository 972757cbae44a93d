import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Store } from '../store/store';

/** What a ticket opens: a session's event stream, a terminal in its sandbox, or the user's own stream. */
export type TicketPurpose = 'stream' | 'terminal' | 'user';

/** The "session" of a user-level ticket: all of the user's sessions. */
export const USER_SCOPE = '*';

export interface TicketClaims {
  user: string;
  sessionId: string;
  purpose: TicketPurpose;
  issuedAt: number;
  expiresAt: number;
  nonce: string;
}

export type TicketCheck = { ok: true; claims: TicketClaims } | { ok: false; reason: string };

/** The single node's secret: a file in its data dir (several instances share theirs through the store). */
export function loadTicketSecret(file: string): Buffer {
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  const secret = randomBytes(32);
  writeFileSync(file, secret.toString('base64url'), { mode: 0o600, flag: 'wx' });
  return secret;
}

/** The secret of instances sharing a database: created once, by whichever starts first. */
export async function sharedTicketSecret(store: Pick<Store, 'settingOnce'>): Promise<Buffer> {
  return Buffer.from(await store.settingOnce('ticket_secret', randomBytes(32).toString('base64url')), 'base64url');
}

/** Where spent nonces are recorded: the store, so that every instance and every restart sees them. */
export type SpentTickets = Pick<Store, 'spendTicket' | 'pruneSpentTickets'>;

/**
 * Short-lived, signed, single-use tickets bound to one user, one session and one purpose (stream
 * or terminal), so that a WebSocket URL (which may end up in logs) never carries the bearer token.
 *
 * A nonce is spent in the store (INSERT … ON CONFLICT DO NOTHING: a replay inserts nothing), so
 * a ticket issued by one instance works on any other that shares the secret, once in the whole
 * cluster. Being durable, spent nonces also outlive a restart: a ticket issued before one is not
 * refused for that (a replay of one spent before it still is). The old rule "refuse what was
 * issued before this process started" only stood in for in-memory nonces, and would break
 * clusters: one instance restarting would refuse the others' live tickets, and it compared
 * timestamps of different machines' clocks.
 */
export class TicketIssuer {
  private prunedAt = 0;

  constructor(
    private readonly secret: Buffer,
    private readonly ttlMs: number,
    /** The clock every instance agrees on: a ticket issued by one is checked by another. */
    private readonly clock: () => Promise<number>,
    private readonly spent: SpentTickets,
  ) {}

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  async issue(user: string, sessionId: string, purpose: TicketPurpose = 'stream'): Promise<{ ticket: string; expiresAt: number }> {
    const issuedAt = await this.clock();
    const expiresAt = issuedAt + this.ttlMs;
    const nonce = randomBytes(12).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ u: user, s: sessionId, p: purpose, i: issuedAt, e: expiresAt, n: nonce })).toString('base64url');
    return { ticket: `${payload}.${this.sign(payload)}`, expiresAt };
  }

  /** Checks signature, expiry, binding and single use; a valid ticket is spent by this call. */
  async redeem(ticket: string, sessionId: string, purpose: TicketPurpose = 'stream'): Promise<TicketCheck> {
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
      if (raw.p !== 'stream' && raw.p !== 'terminal' && raw.p !== 'user') return { ok: false, reason: 'malformed ticket' };
      claims = { user: raw.u, sessionId: raw.s, purpose: raw.p, issuedAt: raw.i, expiresAt: raw.e, nonce: raw.n };
    } catch {
      return { ok: false, reason: 'malformed ticket' };
    }
    const now = await this.clock();
    if (claims.expiresAt <= now) return { ok: false, reason: 'ticket expired' };
    if (claims.sessionId !== sessionId) return { ok: false, reason: 'ticket is for another session' };
    if (claims.purpose !== purpose) return { ok: false, reason: `ticket is for a ${claims.purpose}, not a ${purpose}` };
    this.prune(now);
    if (!(await this.spent.spendTicket(claims.nonce, claims.expiresAt))) return { ok: false, reason: 'ticket already used' };
    return { ok: true, claims };
  }

  /** At most once per ticket lifetime, in the background: one DELETE of the expired nonces. */
  private prune(now: number): void {
    if (now - this.prunedAt < this.ttlMs) return;
    this.prunedAt = now;
    // A lifetime of slack: an instance whose clock runs ahead must not forget nonces that a
    // slower one would still accept.
    this.spent.pruneSpentTickets(now - this.ttlMs).catch(() => {}); // retried at the next interval
  }
}
