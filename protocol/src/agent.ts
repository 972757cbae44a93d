import { z } from 'zod';
import { FailureCode, TokenUsage, TurnStatus } from './events';

/**
 * The JSON-lines protocol between the server and the agent host running in a sandbox.
 * The server pins the version: a host that announces another one is refused at `agent_start`.
 */
export const AGENT_PROTOCOL_VERSION = '1.0.0';

export const TranscriptEntry = z.object({
  role: z.enum(['user', 'assistant']),
  text: z.string(),
});
export type TranscriptEntry = z.infer<typeof TranscriptEntry>;

/** The session import file the server writes and the agent host reads once (`--file` / `import`). */
export const SessionImportFile = z.object({
  version: z.literal(1),
  sessionId: z.string(),
  workspace: z.string(),
  transcript: z.array(TranscriptEntry),
});
export type SessionImportFile = z.infer<typeof SessionImportFile>;

/**
 * Secrets the agent host needs, handed over on its stdin as the first command: never in its
 * argv or environment, where the commands the model runs could read them (/proc/<pid>/environ).
 */
export const HostSecrets = z.strictObject({
  llmApiKey: z.string().min(1).max(4096).optional(),
});
export type HostSecrets = z.infer<typeof HostSecrets>;

// server → agent host
export const HostCommand = z.discriminatedUnion('type', [
  z.object({ type: z.literal('init'), secrets: HostSecrets }),
  z.object({ type: z.literal('import'), file: z.string() }),
  z.object({ type: z.literal('turn'), turnId: z.string(), text: z.string() }),
  z.object({ type: z.literal('interrupt'), turnId: z.string() }),
  z.object({ type: z.literal('shutdown') }),
]);
export type HostCommand = z.infer<typeof HostCommand>;

// agent host → server
export const AgentMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), version: z.string(), driver: z.string(), pid: z.number().int() }),
  z.object({ type: z.literal('imported'), entries: z.number().int().nonnegative() }),
  z.object({ type: z.literal('turn_started'), turnId: z.string() }),
  z.object({ type: z.literal('output'), turnId: z.string(), text: z.string() }),
  z.object({
    type: z.literal('tool_call'),
    turnId: z.string(),
    callId: z.string(),
    name: z.string(),
    args: z.unknown(),
  }),
  z.object({
    type: z.literal('tool_result'),
    turnId: z.string(),
    callId: z.string(),
    ok: z.boolean(),
    output: z.string(),
  }),
  z.object({
    type: z.literal('turn_complete'),
    turnId: z.string(),
    status: TurnStatus,
    exitCode: z.number().int().nullable().optional(),
    usage: TokenUsage.optional(),
  }),
  z.object({
    type: z.literal('error'),
    turnId: z.string().optional(),
    code: FailureCode,
    message: z.string(),
  }),
  z.object({ type: z.literal('log'), level: z.enum(['debug', 'info', 'warn', 'error']), message: z.string() }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;
