import { z } from 'zod';
import { StreamEvent } from '@berth/protocol';

/** The one LISTEN/NOTIFY channel of events between instances sharing a database. */
export const EVENTS_CHANNEL = 'berth_events';
/** A job was enqueued (payload: the instance it is addressed to, or empty for any): runners look now. */
export const JOBS_CHANNEL = 'berth_jobs';
/** A command for the instance holding a session's sandbox (payload: a ControlCommand). */
export const CONTROL_CHANNEL = 'berth_control';
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

/** A NOTIFY payload checked against its schema; null for anything else (never throws). */
function parsePayload<T>(schema: z.ZodType<T>, payload: string | undefined): T | null {
  try {
    const parsed = schema.safeParse(JSON.parse(payload ?? ''));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export const parseNotice = (payload: string | undefined): Notice | null => parsePayload(Notice, payload);

/**
 * For the instance `t` holding session `s`'s sandbox: `interrupt` its running turn, or `stop` the
 * sandbox (after a checkpoint; the session sleeps).
 */
export const ControlCommand = z.object({ t: z.string(), s: z.string(), c: z.enum(['interrupt', 'stop']) });
export type ControlCommand = z.infer<typeof ControlCommand>;

export const parseControl = (payload: string | undefined): ControlCommand | null => parsePayload(ControlCommand, payload);
