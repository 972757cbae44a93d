import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { StreamQuery, type StreamEvent } from '@berth/protocol';
import type { ServerContext } from '../context';
import { toView } from '../sessions/status';
import { stepOrder } from '../preparation/pipeline';
import { refuseSocket as refuse } from './errors';
import type { TicketIssuer } from './tickets';
import { eventHistory } from '../events/history';
import { authorizeUpgrade, type Refusal } from './upgradeAuth';

const STREAM_PATH = /^\/v1\/sessions\/([^/]+)\/stream$/;
const HEARTBEAT_MS = 15_000;
/** A client this far behind is dropped: it reconnects with its cursor and loses nothing. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

// The bus hands one event object to every watcher: encoding it once into a Buffer lets `ws` queue
// that same Buffer on every socket (unmasked server frames are not copied), so N clients behind on
// a large answer share its bytes instead of holding N copies.
const encoded = new WeakMap<StreamEvent, Buffer>();
function encode(event: StreamEvent): Buffer {
  let bytes = encoded.get(event);
  if (!bytes) {
    bytes = Buffer.from(JSON.stringify(event));
    encoded.set(event, bytes);
  }
  return bytes;
}

/**
 * The WebSocket stream of one session: a volatile `connected` snapshot, then every persisted
 * event after the client's cursor in order, then live events. Volatile events are live only.
 */
export class StreamServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly tickets: TicketIssuer,
  ) {
    // Whatever else `ws` refuses in a handshake (a bad Sec-WebSocket-Protocol) gets our error body too.
    this.wss.on('wsClientError', (err: Error, socket: Duplex) => refuse(socket, 400, 'bad_request', err.message));
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    void this.authorize(request).then(
      (result) => {
        if ('refuse' in result) {
          refuse(socket, result.refuse[0], result.refuse[1], result.refuse[2]);
          return;
        }
        this.wss.handleUpgrade(request, socket, head, (ws) => this.serve(ws, result.sessionId, result.after));
      },
      () => refuse(socket, 400, 'bad_request', 'could not open the stream'),
    );
  }

  private authorize(request: IncomingMessage): Promise<{ sessionId: string; after: number } | Refusal> {
    return authorizeUpgrade(this.ctx, this.tickets, request, STREAM_PATH, 'stream', StreamQuery, 'the stream needs ?ticket=… and an optional numeric after=…').then((r) =>
      'refuse' in r ? r : { sessionId: r.sessionId, after: r.query.after },
    );
  }

  private serve(ws: WebSocket, sessionId: string, after: number): void {
    this.sockets.add(ws);
    let cursor = after;
    let replaying = true;
    const backlog: StreamEvent[] = [];
    // Deliveries are chained so that a gap-filling read never lets a later event overtake.
    let chain: Promise<void> = Promise.resolve();

    const send = (event: StreamEvent) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.ctx.logger.warn({ sessionId }, 'dropping a stream client that stopped reading');
        ws.terminate();
        return;
      }
      ws.send(encode(event), { binary: false }); // JSON goes in text frames
    };
    const deliver = async (event: StreamEvent) => {
      if (event.id === 0) return send(event);
      if (event.id <= cursor) return; // already sent (replay and live overlap)
      if (event.id > cursor + 1) {
        for (const missed of await this.ctx.store.readEvents(sessionId, cursor, event.id - cursor - 1)) {
          if (missed.id > cursor && missed.id < event.id) {
            cursor = missed.id;
            send(missed);
          }
        }
      }
      cursor = event.id;
      send(event);
    };
    const unsubscribe = this.ctx.bus.subscribe(sessionId, (event) => {
      if (replaying) backlog.push(event);
      else chain = chain.then(() => deliver(event)).catch(() => ws.terminate());
    });
    const heartbeat = setInterval(() => {
      send({ id: 0, sessionId, type: 'heartbeat', ts: new Date().toISOString(), data: {} });
    }, HEARTBEAT_MS);
    ws.on('close', () => {
      this.sockets.delete(ws);
      clearInterval(heartbeat);
      unsubscribe();
    });
    ws.on('error', () => ws.terminate());
    // Clients have nothing to say on this stream; anything they send is ignored.
    ws.on('message', () => {});

    chain = (async () => {
      const session = await this.ctx.store.getSession(sessionId);
      if (!session) {
        ws.close(4404, 'session deleted');
        return;
      }
      send({ id: 0, sessionId, type: 'connected', ts: new Date().toISOString(), data: { session: toView(session, stepOrder(this.ctx.provider.setupInsideSandbox)) } });
      for await (const event of eventHistory(this.ctx.store, sessionId, cursor)) await deliver(event);
      replaying = false;
      for (const event of backlog.splice(0)) await deliver(event);
    })().catch((err) => {
      this.ctx.logger.error({ err, sessionId }, 'stream replay failed');
      ws.terminate();
    });
  }

  /** Closes every stream (shutdown): clients reconnect to the next server with their cursor. */
  close(): void {
    for (const ws of this.sockets) ws.close(1012, 'server restarting');
    this.wss.close();
  }
}
