// A terminal into the session's sandbox: `POST /v1/sessions/:id/terminal-ticket`, then a WebSocket
// on `/v1/sessions/:id/terminal?ticket=…&cols=…&rows=…` carrying these JSON messages both ways.
import { z } from 'zod';

/** One input message at most this long (a paste is split by the client). */
export const TERMINAL_INPUT_MAX = 64 * 1024;

const Columns = z.coerce.number().int().min(2).max(1000);
const Rows = z.coerce.number().int().min(1).max(500);

export const TerminalQuery = z.object({
  ticket: z.string().min(1).max(1024),
  cols: Columns.default(80),
  rows: Rows.default(24),
});
export type TerminalQuery = z.infer<typeof TerminalQuery>;

export const TerminalClientMessage = z.discriminatedUnion('type', [
  /** Keystrokes and pastes, as the terminal encodes them (Ctrl-C is "\u0003"). */
  z.object({ type: z.literal('input'), data: z.string().min(1).max(TERMINAL_INPUT_MAX) }),
  z.object({ type: z.literal('resize'), cols: Columns, rows: Rows }),
]);
export type TerminalClientMessage = z.infer<typeof TerminalClientMessage>;

export const TerminalServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('output'), data: z.string() }),
  /** The shell ended, or the sandbox stopped (then `code` is null); the socket closes after it. */
  z.object({ type: z.literal('exit'), code: z.number().int().nullable(), reason: z.string() }),
]);
export type TerminalServerMessage = z.infer<typeof TerminalServerMessage>;
