import type {
  PersistedData,
  PersistedEvent,
  PersistedEventType,
  VolatileData,
  VolatileEvent,
  VolatileEventType,
} from '@berth/protocol';
import type { Store } from '../store/store';
import type { EventBus } from './bus';

/**
 * The one way events leave the server: persisted events are stored (and get their id) before they
 * are broadcast; volatile ones are broadcast with id 0 and never touch the store.
 */
export class EventLog {
  constructor(
    private readonly store: Store,
    private readonly bus: EventBus,
  ) {}

  /** `fence`: the instance that must still hold the session (see FencedError). */
  async append<T extends PersistedEventType>(
    sessionId: string,
    type: T,
    data: PersistedData<T>,
    fence?: string,
  ): Promise<Extract<PersistedEvent, { type: T }>> {
    const event = await this.store.appendEvent(sessionId, type, data, fence);
    this.bus.publish(event);
    return event;
  }

  /** Publishes an event the store already holds (written in a transaction of its own). */
  announce(event: PersistedEvent): void {
    this.bus.publish(event);
  }

  /** `here`: only to this instance's clients (each instance tells its own, e.g. queue places). */
  broadcast<T extends VolatileEventType>(sessionId: string, type: T, data: VolatileData<T>, scope: 'everywhere' | 'here' = 'everywhere'): void {
    const event = { id: 0, sessionId, type, ts: new Date().toISOString(), data } as Extract<VolatileEvent, { type: T }>;
    if (scope === 'here') this.bus.deliver(event);
    else this.bus.publish(event);
  }
}
