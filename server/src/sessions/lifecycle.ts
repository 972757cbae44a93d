// The one owner of a session's status. Every change is a transition from the table below, applied
// as a compare-and-set in the store (`UPDATE … WHERE id = ? AND status IN (…)`), and announced by
// exactly one volatile `status` event carrying the step and the error. Nothing else writes a status.
import type { ErrorInfo, ProgressStep, QueuedMessage, SessionStatus } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { JobRecord, NewJob, SessionPatch } from '../store/store';

/** For each status, the statuses a session may reach it from. */
export const TRANSITIONS: Readonly<Record<SessionStatus, readonly SessionStatus[]>> = {
  // queued by a message, a retry or a resume; a job run again after a crash stays preparing
  preparing: ['preparing', 'ready', 'running', 'sleeping', 'failed'],
  // preparation done with no turn open; a turn ended (or never started)
  ready: ['preparing', 'running'],
  // preparation done with its first turn under way; a message to a ready agent
  running: ['preparing', 'ready'],
  // its sandbox stopped (stop, idle reaper, agent host gone, instance lost or restarted)
  sleeping: ['ready', 'running'],
  // preparation failed, or was interrupted beyond recovery
  failed: ['preparing'],
};

export interface TransitionOptions {
  /** The step shown with the status (preparing only); null otherwise. */
  step?: ProgressStep | null;
  /** The error that caused it (failed), recorded as `lastError` and sent with the event. */
  error?: ErrorInfo | null;
  /** Other fields written in the same compare-and-set. */
  patch?: SessionPatch;
  /** Narrower than the table: only from these. */
  from?: readonly SessionStatus[];
  /** Only while the session is placed on this instance (a runtime's writes: see FencedError). */
  fence?: string;
  /** Only while the queue is exactly this one (a queued message taken in the same write). */
  queueIs?: readonly QueuedMessage[];
}

export class SessionLifecycle {
  constructor(private readonly ctx: Pick<ServerContext, 'store' | 'events'>) {}

  private allowedFrom(to: SessionStatus, from?: readonly SessionStatus[]): readonly SessionStatus[] {
    const table = TRANSITIONS[to];
    return from ? from.filter((s) => table.includes(s)) : table;
  }

  private row(to: SessionStatus, options: TransitionOptions): SessionPatch {
    return {
      ...options.patch,
      status: to,
      step: options.step ?? null,
      ...(options.error !== undefined ? { lastError: options.error } : {}),
    };
  }

  private announce(id: string, to: SessionStatus, options: TransitionOptions): void {
    this.ctx.events.broadcast(id, 'status', { status: to, step: options.step ?? null, ...(options.error ? { error: options.error } : {}) });
  }

  /** Moves the session to `to` when the table allows it from its current status; false otherwise. */
  async transition(id: string, to: SessionStatus, options: TransitionOptions = {}): Promise<boolean> {
    const from = this.allowedFrom(to, options.from);
    if (from.length === 0) return false;
    if (!(await this.ctx.store.transitionSession(id, from, this.row(to, options), options.fence, options.queueIs))) return false;
    this.announce(id, to, options);
    return true;
  }

  /**
   * Queues a preparation (a first start's job is created with the session): the status `preparing`
   * (queued), the message that wakes the session as a `user_message`, and the job, all or nothing.
   * Null when the session is not in one of `from` or has an active job already.
   */
  async begin(id: string, from: readonly SessionStatus[], job: NewJob, message?: { turnId: string; text: string }): Promise<JobRecord | null> {
    const options: TransitionOptions = { step: 'queued', error: null };
    const begun = await this.ctx.store.beginJob(id, this.allowedFrom('preparing', from), this.row('preparing', options), job, message);
    if (!begun) return null;
    if (begun.event) this.ctx.events.announce(begun.event);
    this.announce(id, 'preparing', options);
    return begun.job;
  }
}
