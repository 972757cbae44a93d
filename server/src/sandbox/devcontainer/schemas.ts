// The Dev Containers CLI's own output format (internal to this module, so not in protocol/).
// Shapes observed with @devcontainers/cli 0.89 and `--log-format json`.
import { z } from 'zod';

/** A `mounts` entry as the spec allows it: a Docker `--mount` string or an object. */
const mountSchema = z.union([
  z.string(),
  z.looseObject({ type: z.string().optional(), source: z.string().optional(), target: z.string().optional() }),
]);

/** The configuration the CLI starts a container with: the repo's config merged with its features and its image's label. */
export const mergedConfigurationSchema = z.looseObject({
  privileged: z.boolean().optional(),
  init: z.boolean().optional(),
  capAdd: z.array(z.string()).optional(),
  securityOpt: z.array(z.string()).optional(),
  mounts: z.array(mountSchema).optional(),
  remoteUser: z.string().nullable().optional(),
  containerUser: z.string().nullable().optional(),
  remoteEnv: z.record(z.string(), z.string().nullable()).optional(),
  containerEnv: z.record(z.string(), z.string()).optional(),
  onCreateCommands: z.array(z.unknown()).optional(),
  updateContentCommands: z.array(z.unknown()).optional(),
  postCreateCommands: z.array(z.unknown()).optional(),
  postStartCommands: z.array(z.unknown()).optional(),
  postAttachCommands: z.array(z.unknown()).optional(),
});

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
  /** With `--include-merged-configuration`. */
  mergedConfiguration: mergedConfigurationSchema.optional(),
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

/** `run-user-commands`: {"outcome":"success","result":"done"} or the error shape of `up`. */
export const commandResultSchema = z.discriminatedUnion('outcome', [z.object({ outcome: z.literal('success') }), upErrorSchema]);
export type CliCommandResult = z.infer<typeof commandResultSchema>;

/** The result line: the last stdout line that is a JSON object of the schema. */
function parseResult<T>(schema: z.ZodType<T>, stdout: string): T | null {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const parsed = schema.safeParse(JSON.parse(lines[i]!));
      if (parsed.success) return parsed.data;
    } catch {
      // not JSON: keep looking
    }
  }
  return null;
}

export const parseUpResult = (stdout: string): CliUpResult | null => parseResult(upResultSchema, stdout);
export const parseCommandResult = (stdout: string): CliCommandResult | null => parseResult(commandResultSchema, stdout);

/** What `read-configuration --include-merged-configuration` says the container will get (and who asked). */
export const readConfigurationSchema = z.looseObject({
  mergedConfiguration: mergedConfigurationSchema,
  featuresConfiguration: z
    .looseObject({
      featureSets: z.array(
        z.looseObject({
          sourceInformation: z.looseObject({ userFeatureId: z.string().optional() }).optional(),
          features: z.array(
            z.looseObject({
              id: z.string().optional(),
              privileged: z.boolean().optional(),
              capAdd: z.array(z.string()).optional(),
              securityOpt: z.array(z.string()).optional(),
              mounts: z.array(mountSchema).optional(),
            }),
          ),
        }),
      ),
    })
    .optional(),
});
export type ReadConfiguration = z.infer<typeof readConfigurationSchema>;
export type MergedConfiguration = z.infer<typeof mergedConfigurationSchema>;
export type MountSpec = z.infer<typeof mountSchema>;

/** The part of `docker inspect <container>` that says what the container can reach. */
export const containerInspectSchema = z.looseObject({
  HostConfig: z.looseObject({
    Privileged: z.boolean().optional(),
    CapAdd: z.array(z.string()).nullable().optional(),
    SecurityOpt: z.array(z.string()).nullable().optional(),
    Devices: z.array(z.unknown()).nullable().optional(),
    DeviceRequests: z.array(z.unknown()).nullable().optional(),
    Binds: z.array(z.string()).nullable().optional(),
    VolumesFrom: z.array(z.string()).nullable().optional(),
    NetworkMode: z.string().optional(),
    PidMode: z.string().optional(),
    IpcMode: z.string().optional(),
    UTSMode: z.string().optional(),
    UsernsMode: z.string().optional(),
    PublishAllPorts: z.boolean().optional(),
    PortBindings: z.record(z.string(), z.unknown()).nullable().optional(),
  }),
  Mounts: z
    .array(z.looseObject({ Type: z.string(), Source: z.string().optional(), Destination: z.string().optional(), Name: z.string().optional() }))
    .nullable()
    .optional(),
  Config: z
    .looseObject({
      Env: z.array(z.string()).nullable().optional(),
      User: z.string().optional(),
      Image: z.string().optional(),
      Labels: z.record(z.string(), z.string()).nullable().optional(),
    })
    .optional(),
  /** The image's id (`sha256:…`). */
  Image: z.string().optional(),
});
export type ContainerInspect = z.infer<typeof containerInspectSchema>;

/**
 * The `remoteEnv` of a container's `devcontainer.metadata` label (what it was created with:
 * image label, features, config, in that order), merged with the later entries winning and its
 * `${containerEnv:…}` references left as they are.
 */
export function labelRemoteEnv(inspect: ContainerInspect | null): Record<string, string | null> {
  const label = inspect?.Config?.Labels?.['devcontainer.metadata'];
  if (!label) return {};
  try {
    const entries = z.array(z.looseObject({ remoteEnv: z.record(z.string(), z.string().nullable()).optional() })).safeParse(JSON.parse(label));
    return entries.success ? Object.fromEntries(entries.data.flatMap((e) => Object.entries(e.remoteEnv ?? {}))) : {};
  } catch {
    return {};
  }
}

/** The JSON object `read-configuration` prints on stdout, or null (it prints nothing on failure). */
export function parseReadConfiguration(stdout: string): ReadConfiguration | null {
  const start = stdout.indexOf('{');
  if (start < 0) return null;
  try {
    const parsed = readConfigurationSchema.safeParse(JSON.parse(stdout.slice(start)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
