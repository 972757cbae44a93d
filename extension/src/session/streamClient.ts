// The WebSocket client of one session's event stream.
// - every (re)connect asks for a fresh ticket (tickets live 60 s) and resumes with `after=<cursor>`;
// - the cursor moves ONLY on persisted events (id > 0); volatile events (id 0) never touch it;
// - persisted events at or below the cursor are duplicates and are dropped;
// - reconnects back off exponentially with jitter; the ticket endpoint decides when to give up.
import WebSocket from 'ws';
import { StreamEvent, backoffDelay, frameText, isPersisted, type BackoffOptions, type ConnectionState } from '@berth/protocol';
import { errorMessage, silentLogger, type Logger } from '../logger';

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, jitter: 0.5 };

export interface StreamClientOptions {
  sessionId: string;
  /** Mints a new ticket and returns the stream URL for `after`; called on every connect. */
  connectUrl(after: number): Promise<string>;
  onEvent(event: StreamEvent): void;
  onConnectionState?(state: ConnectionState): void;
  /** The stream cannot be resumed (e.g. the session was deleted or the credentials were revoked). */
  onFatal?(error: Error): void;
  /** Whether an error from `connectUrl` is final (no reconnect). */
  isPermanentError?(error: unknown): boolean;
  /** Start after this persisted event id (0 = replay everything). */
  cursor?: number;
  backoff?: Partial<BackoffOptions>;
  random?: () => number;
  /** A ping every interval; a connection silent for two intervals is dropped and reconnected. */
  pingIntervalMs?: number;
  log?: Logger;
}

export class StreamClient {
  private cursorValue: number;
  private socket: WebSocket | null = null;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private stopped = true;
  private everOpened = false;
  private state: ConnectionState = 'idle';
  private readonly backoff: BackoffOptions;
  private readonly log: Logger;
  /** Counters for diagnostics and tests. */
  readonly stats = { connects: 0, duplicates: 0, invalid: 0 };

  constructor(private readonly options: StreamClientOptions) {
    this.cursorValue = options.cursor ?? 0;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.log = options.log ?? silentLogger;
  }

  /** The id of the newest persisted event delivered. */
  get cursor(): number {
    return this.cursorValue;
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.on('error', () => {}); // a close during the handshake still reports an error
      socket.terminate();
    }
    this.setState('closed');
  }

  /** Drops the current connection as if the network failed (the normal reconnect logic follows). */
  dropConnection(): void {
    this.socket?.terminate();
  }

  private async connect(): Promise<void> {
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    let url: string;
    try {
      url = await this.options.connectUrl(this.cursorValue);
    } catch (err) {
      if (this.stopped) return;
      if (this.options.isPermanentError?.(err)) {
        this.log.warn(`stream ${this.options.sessionId}: giving up (${errorMessage(err)})`);
        this.stop();
        this.options.onFatal?.(err instanceof Error ? err : new Error(errorMessage(err)));
        return;
      }
      this.log.debug(`stream ${this.options.sessionId}: no ticket (${errorMessage(err)})`);
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;
    this.stats.connects++;
    const socket = new WebSocket(url, { handshakeTimeout: 10_000, perMessageDeflate: false });
    this.socket = socket;
    let alive = true;
    socket.on('open', () => {
      this.pingTimer = setInterval(() => {
        if (!alive) {
          this.log.debug(`stream ${this.options.sessionId}: silent connection, reconnecting`);
          socket.terminate();
          return;
        }
        alive = false;
        socket.ping();
      }, this.options.pingIntervalMs ?? 20_000);
    });
    socket.on('pong', () => (alive = true));
    socket.on('message', (data, isBinary) => {
      alive = true;
      if (!isBinary) this.handleFrame(frameText(data));
    });
    // Never log the URL: it carries the ticket.
    socket.on('error', (err) => this.log.debug(`stream ${this.options.sessionId}: ${err.message}`));
    socket.on('close', (code) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearTimers();
      if (this.stopped) return;
      this.log.debug(`stream ${this.options.sessionId}: closed (${code}), cursor ${this.cursorValue}`);
      this.scheduleReconnect();
    });
  }

  private handleFrame(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = StreamEvent.safeParse(json);
    if (!parsed.success || parsed.data.sessionId !== this.options.sessionId) {
      this.stats.invalid++;
      this.log.warn(`stream ${this.options.sessionId}: ignored an invalid frame`);
      return;
    }
    const event = parsed.data;
    if (isPersisted(event)) {
      if (event.id <= this.cursorValue) {
        this.stats.duplicates++;
        return;
      }
      this.cursorValue = event.id;
    }
    try {
      this.options.onEvent(event);
    } catch (err) {
      this.log.error(`stream ${this.options.sessionId}: event handler failed: ${errorMessage(err)}`);
    }
    if (event.type === 'connected') {
      // A working stream: the next failure starts the backoff from the beginning again. Reported
      // after the snapshot was handed on, so `open` never shows with the status from before the drop.
      this.attempt = 0;
      this.everOpened = true;
      this.setState('open');
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = backoffDelay(this.attempt++, this.backoff, this.options.random);
    this.setState('reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.reconnectTimer = null;
    this.pingTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onConnectionState?.(state);
  }
}
