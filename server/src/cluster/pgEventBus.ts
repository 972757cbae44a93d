import pg from 'pg';
import type { Logger } from 'pino';
import type { StreamEvent } from '@berth/protocol';
import { EventBus } from '../events/bus';
import type { Store } from '../store/store';
import { pgConfig } from '../store/postgres/pgStore';
import { CONTROL_CHANNEL, EVENTS_CHANNEL, JOBS_CHANNEL, MAX_NOTICE_BYTES, parseControl, parseNotice, volatileNotice, type ControlCommand, type Notice } from './notices';

const RECONNECT_MS = 1000;

/**
 * The event bus of instances sharing one PostgreSQL: local fan-out as on one node, plus
 * LISTEN/NOTIFY between instances. Persisted events are announced by the store inside the
 * transaction that stores them (id only; readers fetch the row); volatile ones travel whole in
 * the notice. Notices are handled one at a time, in the order the database delivers them
 * (commit order), so a session's events reach local listeners in order; the stream's gap filling
 * covers whatever a lost connection dropped.
 */
export class PgEventBus extends EventBus {
  private client: pg.Client | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Volatile notices, sent one after another so that they keep their order. */
  private sending: Promise<unknown> = Promise.resolve();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private jobListeners: (() => void)[] = [];
  private controlListeners: ((command: ControlCommand) => void)[] = [];

  private constructor(
    private readonly url: string,
    private readonly origin: string,
    private readonly store: Store,
    private readonly logger: Logger,
  ) {
    super();
  }

  static async start(url: string, origin: string, store: Store, logger: Logger): Promise<PgEventBus> {
    const bus = new PgEventBus(url, origin, store, logger);
    await bus.connect();
    return bus;
  }

  /** LISTEN needs a connection of its own, outside the store's pool. */
  private async connect(): Promise<void> {
    const client = new pg.Client(pgConfig(this.url));
    client.on('notification', (msg) => {
      if (msg.channel === JOBS_CHANNEL) for (const listener of this.jobListeners) listener();
      if (msg.channel === CONTROL_CHANNEL) {
        const command = parseControl(msg.payload);
        if (command) for (const listener of this.controlListeners) listener(command);
      }
      if (msg.channel !== EVENTS_CHANNEL) return;
      const notice = parseNotice(msg.payload);
      if (!notice || notice.o === this.origin) return;
      this.chain = this.chain.then(() => this.receive(notice)).catch((err) => this.logger.warn({ err }, 'handling an event notice failed'));
    });
    client.on('error', (err) => {
      this.logger.warn({ err: { message: err.message } }, 'event bus connection lost; reconnecting');
      this.dropClient(client);
    });
    client.on('end', () => this.dropClient(client));
    await client.connect();
    await client.query(`LISTEN ${EVENTS_CHANNEL}; LISTEN ${JOBS_CHANNEL}; LISTEN ${CONTROL_CHANNEL}`);
    this.client = client;
  }

  private dropClient(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    client.end().catch(() => {});
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect().then(
        () => this.resync(),
        (err: Error) => {
          this.logger.warn({ err: { message: err.message } }, 'event bus reconnect failed');
          if (!this.closed) this.dropClient(this.client ?? client);
        },
      );
    }, RECONNECT_MS);
  }

  /** After a reconnect: the newest event of every watched session lets streams fill their gaps. */
  private async resync(): Promise<void> {
    for (const sessionId of this.watchedSessions()) {
      const session = await this.store.getSession(sessionId);
      if (!session || session.lastEventId === 0) continue;
      for (const event of await this.store.readEvents(sessionId, session.lastEventId - 1, 1)) this.deliver(event);
    }
  }

  private async receive(notice: Notice): Promise<void> {
    if ('e' in notice) {
      this.deliver(notice.e);
      return;
    }
    if (this.subscriberCount(notice.s) === 0) return; // nobody here watches that session
    for (const event of await this.store.readEvents(notice.s, notice.id - 1, 1)) this.deliver(event);
  }

  override onJobQueued(listener: () => void): void {
    this.jobListeners.push(listener);
  }

  override onControl(listener: (command: ControlCommand) => void): void {
    this.controlListeners.push(listener);
  }

  /** Like a volatile event: NOTIFY only, so a command is lost with the connection (the caller hears so). */
  override async sendControl(command: ControlCommand): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    try {
      await client.query('SELECT pg_notify($1, $2)', [CONTROL_CHANNEL, JSON.stringify(command)]);
      return true;
    } catch {
      return false;
    }
  }

  override publish(event: StreamEvent): void {
    this.deliver(event);
    if (event.id !== 0) return; // persisted: the store announced it when it committed
    const payload = volatileNotice(this.origin, event);
    if (Buffer.byteLength(payload) > MAX_NOTICE_BYTES) return;
    const client = this.client;
    if (!client) return; // volatile: lost with the connection, like any live-only event
    this.sending = this.sending
      .then(() => client.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload]))
      .catch(() => {});
  }

  override async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.sending;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}

