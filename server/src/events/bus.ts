import type { StreamEvent } from '@berth/protocol';
import type { ControlCommand } from '../cluster/notices';

export type EventListener = (event: StreamEvent) => void;
export type StatusEvent = Extract<StreamEvent, { type: 'status' }>;

/**
 * Live fan-out of events to the clients connected to this process, per session. This one is
 * in-process (one instance); cluster/pgEventBus.ts extends it across instances.
 * Listeners must not throw; a slow client is dealt with by its own connection.
 */
export class EventBus {
  private readonly listeners = new Map<string, Set<EventListener>>();
  private readonly statusListeners = new Set<(event: StatusEvent) => void>();

  subscribe(sessionId: string, listener: EventListener): () => void {
    let set = this.listeners.get(sessionId);
    if (!set) {
      set = new Set();
      this.listeners.set(sessionId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(sessionId);
    };
  }

  /** To every listener of the event's session: on every instance (the cluster bus overrides it). */
  publish(event: StreamEvent): void {
    this.deliver(event);
  }

  /**
   * Every session's status changes, from every instance (they travel whole between instances, so
   * this costs no read): what the user-level streams follow.
   */
  subscribeStatus(listener: (event: StatusEvent) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** To the listeners in this process only. */
  deliver(event: StreamEvent): void {
    if (event.type === 'status') for (const listener of [...this.statusListeners]) listener(event);
    const set = this.listeners.get(event.sessionId);
    if (!set) return;
    for (const listener of [...set]) listener(event);
  }

  subscriberCount(sessionId: string): number {
    return this.listeners.get(sessionId)?.size ?? 0;
  }

  /** Sessions with at least one listener here. */
  watchedSessions(): string[] {
    return [...this.listeners.keys()];
  }

  /** Calls `listener` when another instance enqueued a job (in one process: never). */
  onJobQueued(_listener: () => void): void {}

  /** Sends a command to the instance named in it; false when it could not be sent (one process: none to send to). */
  async sendControl(_command: ControlCommand): Promise<boolean> {
    return false;
  }

  /** Calls `listener` with every command sent to any instance (the listener picks its own). */
  onControl(_listener: (command: ControlCommand) => void): void {}

  async close(): Promise<void> {}
}
