import { z } from 'zod';
import { StreamEvent } from '@berth/protocol';

/** The one LISTEN/NOTIFY channel of events between instances sharing a database. */
export const EVENTS_CHANNEL = 'berth_events';
/** A job was enqueued (payload: the instance it is addressed to, or empty for any): runners look now. */
export const JOBS_CHANNEL = 'berth_jobs';
/** NOTIFY payloads must stay below 8000 bytes; a bigger volatile event stays on its own instance. */
export const MAX_NOTICE_BYTES = 7900;

/**
 * A notice names its origin (the process that published it, which already delivered it locally)
 * and either a persisted event's id (readers fetch the row) or a whole volatile event.
 */
const Notice = z.union([
  z.object({ o: z.string(), s: z.string(), id: z.number().int().positive() }),
  z.object({ o: z.string(), e: StreamEvent }),
]);
export type Notice = z.infer<typeof Notice>;

export function persistedNotice(origin: string, sessionId: string, id: number): string {
  return JSON.stringify({ o: origin, s: sessionId, id });
}

export function volatileNotice(origin: string, event: StreamEvent): string {
  return JSON.stringify({ o: origin, e: event });
}

export function parseNotice(payload: string | undefined): Notice | null {
  try {
    const parsed = Notice.safeParse(JSON.parse(payload ?? ''));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
