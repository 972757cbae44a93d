// The user-level stream: one WebSocket per VS Code window (`POST /v1/stream-ticket`, then
// `/v1/stream?ticket=…`) carrying the status of every session of the user, live.
import { z } from 'zod';
import { SessionView } from './events';

export const UserStreamQuery = z.object({ ticket: z.string().min(1).max(1024) });

export const UserStreamEvent = z.discriminatedUnion('type', [
  /** On connect (and reconnect): every session of the user, newest first. */
  z.object({ type: z.literal('sessions'), sessions: z.array(SessionView) }),
  /** A session whose status changed (a turn ended, a preparation failed, a sandbox stopped…). */
  z.object({ type: z.literal('session'), session: SessionView }),
  z.object({ type: z.literal('heartbeat') }),
]);
export type UserStreamEvent = z.infer<typeof UserStreamEvent>;
