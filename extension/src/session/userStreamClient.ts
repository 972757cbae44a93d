// The window's one connection for all of the user's sessions (`/v1/stream`): a snapshot, then each
// session whose status changed. Reconnects with backoff and a fresh ticket; a reconnect starts with
// a new snapshot, so nothing is missed for long.
import WebSocket from 'ws';
import { backoffDelay, frameText, UserStreamEvent, type SessionView } from '@berth/protocol';
import { errorMessage, type Logger } from '../logger';
import { DEFAULT_BACKOFF } from './streamClient';

/** The server sends a heartbeat every 15 s: a connection silent for longer than this is dead. */
const SILENCE_MS = 40_000;

export interface UserStreamHandlers {
  onSnapshot(sessions: SessionView[]): void;
  onSession(session: SessionView): void;
  /** The stream is down (until the next snapshot): what it said may be stale. */
  onDown(): void;
}

export class UserStreamClient {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private silence: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly connectUrl: () => Promise<string>,
    private readonly handlers: UserStreamHandlers,
    private readonly log: Logger,
  ) {
    void this.connect();
  }

  private async connect(): Promise<void> {
    let url: string;
    try {
      url = await this.connectUrl();
    } catch (err) {
      this.log.debug(`sessions stream: no ticket (${errorMessage(err)})`);
      return this.retry();
    }
    if (this.stopped) return;
    const socket = new WebSocket(url, { handshakeTimeout: 10_000, perMessageDeflate: false });
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      this.heard(socket);
      if (!isBinary) this.handle(frameText(data));
    });
    socket.on('open', () => this.heard(socket));
    socket.on('error', (err) => this.log.debug(`sessions stream: ${err.message}`)); // never the URL: it carries the ticket
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handlers.onDown();
      this.retry();
    });
  }

  private handle(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    const parsed = UserStreamEvent.safeParse(json);
    if (!parsed.success) return this.log.warn('sessions stream: ignored an invalid frame');
    const event = parsed.data;
    if (event.type === 'sessions') {
      this.attempt = 0;
      this.handlers.onSnapshot(event.sessions);
    } else if (event.type === 'session') this.handlers.onSession(event.session);
  }

  private heard(socket: WebSocket): void {
    if (this.silence) clearTimeout(this.silence);
    this.silence = setTimeout(() => socket.terminate(), SILENCE_MS);
  }

  private retry(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, backoffDelay(this.attempt++, DEFAULT_BACKOFF));
  }

  dispose(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.silence) clearTimeout(this.silence);
    const socket = this.socket;
    this.socket = null;
    socket?.removeAllListeners();
    socket?.on('error', () => {});
    socket?.terminate();
  }
}
