// The Dev Containers CLI's own output format (internal to this module, so not in protocol/).
// Shapes observed with @devcontainers/cli 0.89 and `--log-format json`.
import { z } from 'zod';

/**
 * The single JSON line `up` prints on stdout.
 * success: {"outcome":"success","containerId":"…","remoteUser":"root","remoteWorkspaceFolder":"/workspaces/x",…}
 * error:   {"outcome":"error","message":"Command failed: …","description":"postCreateCommand from devcontainer.json failed.","containerId":"…"}
 */
export const upSuccessSchema = z.object({
  outcome: z.literal('success'),
  containerId: z.string().min(1),
  remoteUser: z.string(),
  remoteWorkspaceFolder: z.string(),
});

export const upErrorSchema = z.object({
  outcome: z.literal('error'),
  message: z.string().optional(),
  description: z.string().optional(),
  // Present when the container was created before the failure (e.g. a failing postCreateCommand).
  containerId: z.string().optional(),
});

export const upResultSchema = z.discriminatedUnion('outcome', [upSuccessSchema, upErrorSchema]);
export type CliUpResult = z.infer<typeof upResultSchema>;

/**
 * One NDJSON line on stderr. Levels: 1 trace, 2 debug, 3 info, 4 warning, 5 error.
 * - text:  {"type":"text","level":3,"timestamp":…,"text":"…"}
 * - raw:   {"type":"raw","level":3,"timestamp":…,"text":"hello\n","channel":"postCreate"}  (command output)
 * - start: {"type":"start","level":2,"timestamp":…,"text":"Run: docker ps …"}
 * - stop:  {"type":"stop","level":2,"timestamp":…,"text":"Run: docker ps …","startTimestamp":…}
 * - progress (no level/timestamp): {"type":"progress","name":"Running postCreateCommand...","status":"running","stepDetail":"npm ci","channel":"postCreate"}
 * Every lifecycle hook (onCreate … postAttach) reports on channel "postCreate".
 */
const logBase = {
  level: z.number().optional(),
  timestamp: z.number().optional(),
  channel: z.string().optional(),
};

export const logEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string(), ...logBase }),
  z.object({ type: z.literal('raw'), text: z.string(), ...logBase }),
  z.object({ type: z.literal('start'), text: z.string(), ...logBase }),
  z.object({ type: z.literal('stop'), text: z.string(), startTimestamp: z.number().optional(), ...logBase }),
  z.object({
    type: z.literal('progress'),
    name: z.string(),
    status: z.enum(['running', 'succeeded', 'failed']),
    stepDetail: z.string().optional(),
    ...logBase,
  }),
]);
export type CliLogEvent = z.infer<typeof logEventSchema>;

/** Parses one stderr line; null for plain text (stack traces, warnings) and unknown event types. */
export function parseLogLine(line: string): CliLogEvent | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return null;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return null;
  }
  const parsed = logEventSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

/** Parses the result line: the last stdout line that is a JSON object with an `outcome`. */
export function parseUpResult(stdout: string): CliUpResult | null {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const parsed = upResultSchema.safeParse(JSON.parse(lines[i]!));
      if (parsed.success) return parsed.data;
    } catch {
      // not JSON: keep looking
    }
  }
  return null;
}
