// Messages sent while the agent is busy (a turn runs, or the session prepares) wait in the session
// row, oldest first. Every change is a compare-and-set on the row (the status and the queue as
// read), so a message is queued, cancelled or taken exactly once, across instances too; each change
// is announced with a volatile `queue` event.
import { ApiError, LIMITS, type QueuedMessage, type SessionStatus } from '@berth/protocol';
import type { ServerContext } from '../context';

/** The statuses in which a message waits: the agent is busy or about to be. */
const BUSY: readonly SessionStatus[] = ['preparing', 'running'];
const ANY: readonly SessionStatus[] = ['preparing', 'ready', 'running', 'sleeping', 'failed'];
/** Compare-and-set attempts before giving up on a hot session row. */
const ATTEMPTS = 20;

export class MessageQueue {
  constructor(private readonly ctx: ServerContext) {}

  /**
   * Queues `message` while the agent is busy, or while earlier messages still wait (they go first);
   * its position (1: next). Null when the session can take it now (nothing was written).
   */
  async enqueue(id: string, message: QueuedMessage): Promise<number | null> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const session = await this.ctx.store.getSession(id);
      if (!session) return null;
      const queue = session.queue ?? [];
      const waits = BUSY.includes(session.status) || (session.status === 'ready' && queue.length > 0);
      if (!waits) return null;
      if (queue.length >= LIMITS.queuedMessages) {
        throw new ApiError(409, 'queue_full', `${LIMITS.queuedMessages} messages are already waiting; cancel one or wait for the agent`);
      }
      const next = [...queue, message];
      if (await this.ctx.store.transitionSession(id, [session.status], { queue: next }, undefined, queue)) {
        this.announce(id, next);
        return next.length;
      }
    }
    throw new ApiError(409, 'conflict', 'the session changed too often to queue the message; send it again');
  }

  /** Removes a waiting message; false when there is none with that id (unknown, or already started). */
  async cancel(id: string, turnId: string): Promise<boolean> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const session = await this.ctx.store.getSession(id);
      const queue = session?.queue ?? [];
      if (!queue.some((m) => m.turnId === turnId)) return false;
      const next = queue.filter((m) => m.turnId !== turnId);
      if (await this.ctx.store.transitionSession(id, ANY, { queue: next }, undefined, queue)) {
        this.announce(id, next);
        return true;
      }
    }
    throw new ApiError(409, 'conflict', 'the session changed too often to cancel the message; try again');
  }

  /**
   * Takes the oldest waiting message and moves the session ready → running in the same write (the
   * caller then runs it); null when nothing waits or the session is not ready.
   */
  async takeForTurn(id: string, fence: string): Promise<QueuedMessage | null> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const session = await this.ctx.store.getSession(id);
      const queue = session?.queue ?? [];
      if (!session || session.status !== 'ready' || queue.length === 0) return null;
      const [head, ...rest] = queue as [QueuedMessage, ...QueuedMessage[]];
      const started = await this.ctx.lifecycle.transition(id, 'running', {
        from: ['ready'],
        patch: { queue: rest, lastActivityAt: new Date().toISOString() },
        queueIs: queue,
        fence,
      });
      if (started) {
        this.announce(id, rest);
        return head;
      }
    }
    return null;
  }

  /** Takes the oldest waiting message of a sleeping session (the caller resumes the session with it). */
  async takeForResume(id: string): Promise<QueuedMessage | null> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const session = await this.ctx.store.getSession(id);
      const queue = session?.queue ?? [];
      if (!session || session.status !== 'sleeping' || queue.length === 0) return null;
      const [head, ...rest] = queue as [QueuedMessage, ...QueuedMessage[]];
      if (await this.ctx.store.transitionSession(id, ['sleeping'], { queue: rest }, undefined, queue)) {
        this.announce(id, rest);
        return head;
      }
    }
    return null;
  }

  /** Puts a taken message back at the front (its resume was refused). */
  async putBack(id: string, message: QueuedMessage): Promise<void> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const session = await this.ctx.store.getSession(id);
      if (!session) return;
      const queue = session.queue ?? [];
      const next = [message, ...queue];
      if (await this.ctx.store.transitionSession(id, ANY, { queue: next }, undefined, queue)) {
        this.announce(id, next);
        return;
      }
    }
  }

  private announce(id: string, messages: QueuedMessage[]): void {
    this.ctx.events.broadcast(id, 'queue', { messages });
  }
}
