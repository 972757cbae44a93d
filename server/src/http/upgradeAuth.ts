// Who may open a WebSocket on a session (its stream, a terminal): a well-formed handshake, a valid
// query, then a single-use ticket for that session and purpose, and the session must be the
// ticket user's own. The ticket is spent only once everything before it is in order.
import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import { SESSION_ID_PATTERN, type ErrorCode } from '@berth/protocol';
import type { ServerContext } from '../context';
import { USER_SCOPE, type TicketIssuer, type TicketPurpose } from './tickets';

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

export type Refusal = { refuse: [number, ErrorCode, string] };

/** What `ws` would refuse in an upgrade request, found first so the refusal has our error body. */
function handshakeProblem(request: IncomingMessage): [number, ErrorCode, string] | null {
  if (request.method !== 'GET') return [405, 'bad_request', 'a WebSocket is opened with GET'];
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return [400, 'bad_request', 'only WebSocket upgrades are served'];
  const key = request.headers['sec-websocket-key'];
  if (key === undefined || !WS_KEY.test(key)) return [400, 'bad_request', 'missing or invalid Sec-WebSocket-Key header'];
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return [400, 'bad_request', 'missing or invalid Sec-WebSocket-Version header'];
  return null;
}


export async function authorizeUpgrade<Q extends z.ZodType<{ ticket: string }>>(
  ctx: ServerContext,
  tickets: TicketIssuer,
  request: IncomingMessage,
  path: RegExp,
  purpose: TicketPurpose,
  querySchema: Q,
  queryHelp: string,
): Promise<{ sessionId: string; user: string; query: z.infer<Q> } | Refusal> {
  const malformed = handshakeProblem(request);
  if (malformed) return { refuse: malformed };
  let url: URL;
  try {
    url = new URL(request.url ?? '', 'http://localhost');
  } catch {
    return { refuse: [400, 'bad_request', 'malformed URL'] };
  }
  // A path without a session in it (the user's own stream) is scoped to all of the user's sessions.
  const match = path.exec(url.pathname);
  const sessionId = match ? (match[1] ?? USER_SCOPE) : null;
  if (!sessionId || (sessionId !== USER_SCOPE && !SESSION_ID_PATTERN.test(sessionId))) return { refuse: [404, 'not_found', `no such ${purpose}`] };
  const query = querySchema.safeParse(Object.fromEntries(url.searchParams));
  if (!query.success) return { refuse: [400, 'bad_request', queryHelp] };
  const check = await tickets.redeem(query.data.ticket, sessionId, purpose);
  if (!check.ok) return { refuse: [401, 'unauthorized', check.reason] };
  const user = check.claims.user;
  if (sessionId === USER_SCOPE) return { sessionId, user, query: query.data };
  const session = await ctx.store.getSession(sessionId);
  if (!session || session.owner !== user) return { refuse: [404, 'not_found', 'no such session'] };
  return { sessionId, user, query: query.data };
}
