// The user-level stream: every session of one user at a glance, live (one WebSocket per VS Code
// window). A snapshot on connect, then a session's view each time its status changes, whichever
// instance changed it; a client that fell behind is dropped and reconnects to a new snapshot.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { UserStreamQuery, type UserStreamEvent } from '@berth/protocol';
import type { ServerContext } from '../context';
import { toView } from '../sessions/status';
import { stepOrder } from '../preparation/pipeline';
import type { StatusEvent } from '../events/bus';
import { refuseSocket as refuse } from './errors';
import type { TicketIssuer } from './tickets';
import { authorizeUpgrade } from './upgradeAuth';

const USER_STREAM_PATH = /^\/v1\/stream$/;
const HEARTBEAT_MS = 15_000;
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** Sessions never change hands: their owners are remembered (bounded) to route status changes without a read. */
const OWNER_CACHE_SIZE = 10_000;

export class UserStreamServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  private readonly byUser = new Map<string, Set<WebSocket>>();
  private readonly owners = new Map<string, string>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly ctx: ServerContext,
    private readonly tickets: TicketIssuer,
  ) {
    this.wss.on('wsClientError', (err: Error, socket: Duplex) => refuse(socket, 400, 'bad_request', err.message));
    this.unsubscribe = ctx.bus.subscribeStatus((event) => void this.onStatus(event));
  }

  static serves(request: IncomingMessage): boolean {
    return USER_STREAM_PATH.test((request.url ?? '').split('?')[0] ?? '');
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    void authorizeUpgrade(this.ctx, this.tickets, request, USER_STREAM_PATH, 'user', UserStreamQuery, 'the stream needs ?ticket=…').then(
      (result) => {
        if ('refuse' in result) return refuse(socket, ...result.refuse);
        this.wss.handleUpgrade(request, socket, head, (ws) => void this.serve(ws, result.user));
      },
      () => refuse(socket, 400, 'bad_request', 'could not open the stream'),
    );
  }

  private async serve(ws: WebSocket, user: string): Promise<void> {
    const mine = this.byUser.get(user) ?? new Set();
    mine.add(ws);
    this.byUser.set(user, mine);
    const heartbeat = setInterval(() => send(ws, { type: 'heartbeat' }), HEARTBEAT_MS);
    ws.on('close', () => {
      clearInterval(heartbeat);
      mine.delete(ws);
      if (mine.size === 0) this.byUser.delete(user);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', () => {}); // nothing to say on this stream
    try {
      const sessions = await this.ctx.store.listSessions(user);
      for (const s of sessions) this.remember(s.id, user);
      send(ws, { type: 'sessions', sessions: sessions.map((s) => toView(s)) });
    } catch (err) {
      this.ctx.logger.error({ err }, 'user stream: listing sessions failed');
      ws.terminate();
    }
  }

  private async onStatus(event: StatusEvent): Promise<void> {
    if (this.byUser.size === 0) return;
    try {
      let owner = this.owners.get(event.sessionId);
      const session = owner === undefined || this.byUser.has(owner) ? await this.ctx.store.getSession(event.sessionId) : null;
      if (session) this.remember(session.id, (owner = session.owner));
      if (!session || !owner) return;
      const view = toView(session, stepOrder(this.ctx.provider.setupInsideSandbox));
      for (const ws of this.byUser.get(owner) ?? []) send(ws, { type: 'session', session: view });
    } catch (err) {
      this.ctx.logger.warn({ err, sessionId: event.sessionId }, 'user stream: reading a session failed');
    }
  }

  private remember(sessionId: string, owner: string): void {
    if (this.owners.size >= OWNER_CACHE_SIZE) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(sessionId, owner);
  }

  close(): void {
    this.unsubscribe();
    for (const sockets of this.byUser.values()) for (const ws of sockets) ws.close(1012, 'server restarting');
    this.wss.close();
  }
}

function send(ws: WebSocket, event: UserStreamEvent): void {
  if (ws.readyState !== ws.OPEN) return;
  if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
    ws.terminate(); // it reconnects to a fresh snapshot
    return;
  }
  ws.send(JSON.stringify(event));
}
