// Why a running preparation was stopped from outside, carried as its AbortSignal's reason: a typed
// value, read back with `cancelReasonOf`, never a string cast from `signal.reason`.

export const CANCEL_REASONS = ['deleted', 'budget', 'attempts', 'shutdown', 'lease_lost'] as const;
export type CancelReason = (typeof CANCEL_REASONS)[number];

export class Cancellation extends Error {
  constructor(readonly reason: CancelReason) {
    super(`preparation cancelled: ${reason}`);
    this.name = 'Cancellation';
  }
}

/** Aborts with a typed reason; the first reason wins. */
export function cancel(controller: AbortController, reason: CancelReason): void {
  if (!controller.signal.aborted) controller.abort(new Cancellation(reason));
}

/** The reason a signal was cancelled with, or null (not aborted, or aborted by something else). */
export function cancelReasonOf(signal: AbortSignal): CancelReason | null {
  return signal.aborted && signal.reason instanceof Cancellation ? signal.reason.reason : null;
}

/**
 * Cancellations after which the preparation records no failure: the session is gone, another
 * instance carries the job on, or the next start picks it up again.
 */
export function endsQuietly(reason: CancelReason | null): boolean {
  return reason === 'deleted' || reason === 'lease_lost' || reason === 'shutdown';
}
