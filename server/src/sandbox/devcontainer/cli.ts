// A typed wrapper around the Dev Containers CLI (it has no library API): spawns its bundled
// `devcontainer.js` with the current Node, parses the JSON result on stdout and the NDJSON log
// on stderr, and owns the process: its own timeout, AbortSignal, whole-process-group kill.
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { ConfigChoiceError, DEFAULT_IMAGE, mountString, prepareConfig, type BindMount, type PreparedConfig } from './config.js';
import { containerExcess, listing, mergedConfigExcess, mountParts } from './confine.js';
import { ControlManifest } from './controlManifest.js';
import type { ContainerImage } from './images.js';
import { SESSION_LABEL, removeSessionContainers, runDocker, type ExecCommand } from './docker.js';
import { UpLogInterpreter, type LifecycleFailure } from './progress.js';
import { containerInspectSchema, labelRemoteEnv, parseCommandResult, parseReadConfiguration, parseUpResult, type ContainerInspect, type ReadConfiguration } from './schemas.js';
import { runProcess } from '../../util/process';

export { DEFAULT_IMAGE, parseJsonc, prepareConfig } from './config.js';
export {
  dockerAvailable,
  dockerDataRootFreeBytes,
  dockerExecArgv,
  listLabelledContainers,
  removeContainer,
  removeSessionContainers,
  runDocker,
  type ExecCommand,
} from './docker.js';
export { createRedactor } from './progress.js';
export { ControlManifest } from './controlManifest.js';
export { adoptBuiltImage, pruneImages, IMAGE_REPOSITORY } from './images.js';

const DEFAULT_UP_TIMEOUT_MS = 15 * 60_000;
// After SIGTERM to the group, how long before SIGKILL.
const KILL_GRACE_MS = 2_000;
// A `docker run` whose client we killed may still create its container a moment later.
const LATE_CONTAINER_RECHECK_MS = 1_500;
const STDOUT_LIMIT = 1024 * 1024;

/** Absolute path of the CLI's entry script (the package's `bin`). */
export function devcontainerCliPath(): string {
  const fromEnv = process.env.BERTH_DEVCONTAINER_CLI;
  if (fromEnv) return resolve(fromEnv);
  const require = createRequire(import.meta.url);
  let packageJsonPath: string;
  try {
    packageJsonPath = require.resolve('@devcontainers/cli/package.json');
  } catch {
    // Bundled server started from elsewhere: look next to the working directory.
    packageJsonPath = join(process.cwd(), 'node_modules', '@devcontainers', 'cli', 'package.json');
  }
  const pkg = JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { bin?: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.devcontainer;
  if (!bin) throw new Error(`@devcontainers/cli at ${dirname(packageJsonPath)} declares no devcontainer bin`);
  const path = join(dirname(packageJsonPath), bin);
  if (!existsSync(path)) throw new Error(`Dev Containers CLI not found at ${path}`);
  return path;
}

/** Used when the caller brings none (no last good copy beyond the CLI's own cache file). */
const defaultControlManifest = new ControlManifest();

/** `refused`: the container would get (or got) more than a Berth sandbox may have. */
export type DevcontainerErrorKind = 'config' | 'refused' | 'failed' | 'timeout' | 'aborted' | 'spawn' | 'protocol';

/** `up` failed. `outputTail` holds the failing lifecycle command's last lines (or the CLI's error lines). */
export class DevcontainerError extends Error {
  readonly kind: DevcontainerErrorKind;
  /** The CLI's `description`, e.g. "postCreateCommand from devcontainer.json failed." */
  readonly description: string | undefined;
  /** The CLI's `message`, e.g. "Command failed: npm ci". */
  readonly cliMessage: string | undefined;
  readonly lifecycleFailure: LifecycleFailure | undefined;
  readonly outputTail: string[];
  /** The container the failed `up` created, if the CLI reported one (removed when `removeOnFailure`). */
  readonly containerId: string | undefined;
  readonly exitCode: number | null;
  /** The CLI's last log lines (redacted) when it failed: what `describeFailure` reads. */
  readonly logTail: string[] = [];

  constructor(init: {
    kind: DevcontainerErrorKind;
    message: string;
    description?: string;
    cliMessage?: string;
    lifecycleFailure?: LifecycleFailure;
    outputTail?: string[];
    containerId?: string;
    exitCode?: number | null;
  }) {
    super(init.message);
    this.name = 'DevcontainerError';
    this.kind = init.kind;
    this.description = init.description;
    this.cliMessage = init.cliMessage;
    this.lifecycleFailure = init.lifecycleFailure;
    this.outputTail = init.outputTail ?? [];
    this.containerId = init.containerId;
    this.exitCode = init.exitCode ?? null;
  }

  /** The message plus the output lines that explain it, for the user. */
  formatForUser(): string {
    if (this.outputTail.length === 0) return this.message;
    return `${this.message}\n${this.outputTail.map((l) => `  ${l}`).join('\n')}`;
  }
}

export interface DevcontainerUpOptions {
  /** Becomes the id label `berth.session=<sessionId>`. */
  sessionId: string;
  /** More id labels (e.g. `berth.instance`, so a server only ever cleans up its own containers). */
  labels?: Record<string, string>;
  /** The clone on the host. */
  workspaceFolder: string;
  /** The config the start named (relative to the clone); none: the repo's only one, or the default. */
  configPath?: string | null;
  /** Extra bind mounts (read-only ones go through the override config; see config.ts). */
  mounts?: readonly BindMount[];
  /** Image of the default config used when the repo has none. */
  defaultImage?: string;
  /** Where to write the override config (outside the clone); default a temp dir removed after `up`. */
  configDir?: string;
  /** Default 15 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (message: string, detail?: string) => void;
  onLog?: (line: string) => void;
  /** Env for lifecycle commands, passed via `--secrets-file` (never argv) and redacted from logs. */
  secrets?: Record<string, string>;
  /** Other values to redact from logs and errors. */
  redact?: readonly string[];
  /** Remove the session's containers when `up` fails, times out or is aborted. Default true. */
  removeOnFailure?: boolean;
  /** Environment of the CLI process (PATH must find docker). */
  env?: NodeJS.ProcessEnv;
  /** The CLI's TMPDIR for this `up` (its feature downloads, caches), removed afterwards; default the process's. */
  cliTmpDir?: string;
  cliPath?: string;
  /** The CLI's control manifest, fetched by Berth (the CLI's own fetch has no timeout). */
  controlManifest?: ControlManifest;
  /** Leave the CLI's control-manifest cache alone, so it fetches the manifest itself (for measurements). */
  skipManifestCache?: boolean;
}

export interface UpResult {
  containerId: string;
  remoteUser: string;
  remoteWorkspaceFolder: string;
  /** The config's `remoteEnv` (merged with its features' and image's), `${containerEnv:…}` resolved: for every process Berth starts in it. */
  remoteEnv: Record<string, string>;
  /** The image the container runs (built by the CLI: a name starting with `vsc-`). */
  image: ContainerImage | null;
  /** What of the repo's config was left out because it would reach the host. */
  dropped: string[];
  configSource: 'repo' | 'default';
  durationMs: number;
}

function checkSessionId(sessionId: string): void {
  // It ends up in a docker label filter and in `--id-label name=value`.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(sessionId)) throw new Error(`invalid session id for a container label: ${sessionId}`);
}

/** Arguments every CLI command of one `up` shares: the same config, the same workspace mount. */
function commonArgs(options: { workspaceFolder: string; overrideConfigPath: string | null; configPath?: string | null }): string[] {
  return [
    '--workspace-folder',
    options.workspaceFolder,
    // The clone itself, never a git root the CLI would look for above it (found by running git on
    // the host in a work tree the sandbox may have written).
    '--mount-workspace-git-root',
    'false',
    '--log-format',
    'json',
    // The repo's config file: relative paths in it (Dockerfile, local features) resolve from there.
    ...(options.configPath ? ['--config', options.configPath] : []),
    ...(options.overrideConfigPath ? ['--override-config', options.overrideConfigPath] : []),
  ];
}

/** Builds the `up` argv (after the script path). Lifecycle commands run later (`run-user-commands`). */
export function upArgs(options: {
  sessionId: string;
  labels?: Record<string, string>;
  workspaceFolder: string;
  configPath?: string | null;
  overrideConfigPath: string | null;
  secretsFile: string | null;
  /** The repo pins its features (`devcontainer-lock.json`): keep checking it; else write none into the clone. */
  lockfile?: boolean;
  /** Create the container only; the lifecycle commands run later (`run-user-commands`). */
  skipPostCreate?: boolean;
}): string[] {
  const args = [
    'up',
    ...commonArgs(options),
    '--id-label',
    `${SESSION_LABEL}=${options.sessionId}`,
    ...Object.entries(options.labels ?? {}).flatMap(([k, v]) => ['--id-label', `${k}=${v}`]),
    // The host uid is irrelevant for Berth and the update would build an extra image.
    '--update-remote-user-uid-default',
    'never',
    '--gpu-availability',
    'none',
    // What it merged, in the result: checked again, and the lifecycle commands and remoteEnv to use.
    '--include-merged-configuration',
  ];
  if (!options.lockfile) args.push('--no-lockfile');
  if (options.skipPostCreate) args.push('--skip-post-create');
  if (options.secretsFile) args.push('--secrets-file', options.secretsFile);
  return args;
}

/**
 * The lifecycle commands (onCreate … postAttach) of a container `up` created and Berth checked.
 * They come from the container's own metadata label (what it was created with, merged and
 * checked); `lifecycleConfigPath` names a config with none of its own, which only places the
 * workspace (given the repo's config too, the CLI would run every command twice).
 */
export function runUserCommandsArgs(options: {
  containerId: string;
  workspaceFolder: string;
  lifecycleConfigPath: string;
  secretsFile: string | null;
}): string[] {
  return [
    'run-user-commands',
    ...commonArgs({ workspaceFolder: options.workspaceFolder, overrideConfigPath: options.lifecycleConfigPath }),
    '--container-id',
    options.containerId,
    ...(options.secretsFile ? ['--secrets-file', options.secretsFile] : []),
  ];
}

/** The config `run-user-commands` is given: where the workspace is, and no command or feature. */
async function writeLifecycleConfig(configDir: string, effective: Record<string, unknown>): Promise<string> {
  const dir = join(configDir, 'lifecycle');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'devcontainer.json');
  const placement = typeof effective.workspaceFolder === 'string' ? { workspaceFolder: effective.workspaceFolder } : {};
  // The image is never used for an existing container; the CLI only needs a config that names one.
  await writeFile(file, JSON.stringify({ image: 'berth/lifecycle-only', ...placement }), { mode: 0o600 });
  return file;
}

/** What the CLI will start the container with: the config merged with its features and the image's label. */
export function readConfigurationArgs(options: { workspaceFolder: string; configPath?: string | null; overrideConfigPath: string | null }): string[] {
  return ['read-configuration', ...commonArgs(options), '--include-merged-configuration', '--include-features-configuration'];
}


/** Creates (or reuses, same label) the session's dev container and runs its lifecycle commands. */
export async function devcontainerUp(options: DevcontainerUpOptions): Promise<UpResult> {
  checkSessionId(options.sessionId);
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_UP_TIMEOUT_MS;
  const removeOnFailure = options.removeOnFailure ?? true;
  const secrets = options.secrets ?? {};
  const interpreter = new UpLogInterpreter({
    onProgress: options.onProgress,
    onLog: options.onLog,
    secrets: [...Object.values(secrets), ...(options.redact ?? [])],
  });
  if (options.signal?.aborted) throw new DevcontainerError({ kind: 'aborted', message: 'devcontainer up aborted before it started' });

  const ownConfigDir = !options.configDir;
  const configDir = options.configDir ?? join(tmpdir(), 'berth-devcontainer', `${options.sessionId}-${process.pid}-${Date.now()}`);
  let secretsFile: string | null = null;
  try {
    interpreter.progress('preparing dev container');
    let config: Awaited<ReturnType<typeof prepareConfig>>;
    let cliPath: string;
    try {
      config = await prepareConfig({
        workspaceFolder: options.workspaceFolder,
        configPath: options.configPath,
        configDir,
        defaultImage: options.defaultImage ?? DEFAULT_IMAGE,
        mounts: options.mounts,
      });
    } catch (error) {
      const message = (error as Error).message;
      // Compose configs are a refusal (their services can mount anything), not a broken config.
      throw new DevcontainerError({ kind: /Docker Compose/.test(message) ? 'refused' : 'config', message: error instanceof ConfigChoiceError ? message : `invalid dev container config: ${message}` });
    }
    try {
      cliPath = options.cliPath ?? devcontainerCliPath();
    } catch (error) {
      throw new DevcontainerError({ kind: 'spawn', message: (error as Error).message });
    }
    interpreter.log(
      `config: ${config.source === 'repo' ? config.repoConfigPath : `default (image ${options.defaultImage ?? DEFAULT_IMAGE})`}` +
        (config.overrideConfigPath ? `, override ${config.overrideConfigPath}` : ''),
    );
    if (config.dropped?.length) {
      interpreter.log(`ignored in the repo's config (they would reach the host): ${config.dropped.join(', ')}`);
      interpreter.progress(`ignoring ${config.dropped.join(', ')} from the repo's config: they would reach the host`);
    }
    if (Object.keys(secrets).length > 0) {
      await mkdir(configDir, { recursive: true });
      secretsFile = join(configDir, 'secrets.json');
      await writeFile(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
    }
    const env = { ...(options.env ?? process.env), ...(options.cliTmpDir ? { TMPDIR: options.cliTmpDir } : {}) };
    if (options.cliTmpDir) await mkdir(options.cliTmpDir, { recursive: true, mode: 0o700 });
    if (!options.skipManifestCache) await (options.controlManifest ?? defaultControlManifest).prepare(env);

    const deadline = started + timeoutMs;
    const common = { workspaceFolder: options.workspaceFolder, overrideConfigPath: config.overrideConfigPath, configPath: config.repoConfigPath };
    const berthMounts = [options.workspaceFolder, ...(options.mounts ?? []).map((m) => m.source)];
    const run = (args: string[]) => runCli(cliPath, args, { env, timeoutMs: Math.max(1, deadline - Date.now()), signal: options.signal, interpreter });
    // Cleans up after a failed phase; the caller throws what it returns (awaited, inside the try).
    const fail = async (error: DevcontainerError): Promise<DevcontainerError> => {
      if (removeOnFailure) await removeLeftovers(options.sessionId, interpreter);
      return error;
    };
    // Its phases are one `up` to the user: one time budget, one way to say it ran out.
    const endedEarly = (outcome: CliOutcome, phase: string) => {
      const where = interpreter.lastMessage ? ` (last step: ${interpreter.lastMessage})` : '';
      interpreter.log(`devcontainer ${phase}: ${outcome.ended}`);
      return new DevcontainerError({
        kind: outcome.ended === 'timeout' ? 'timeout' : 'aborted',
        message: outcome.ended === 'timeout' ? `devcontainer up timed out after ${Math.round(timeoutMs / 1000)} s${where}` : `devcontainer up aborted${where}`,
        outputTail: interpreter.failureTail(),
      });
    };

    // 1. What the container would be started with, before it exists: the config merged with its
    // features and its image's devcontainer.metadata label. A verdict that depends only on what
    // the key covers is remembered (read-configuration costs a CLI run).
    const verdict = await verdictKey(config, options.workspaceFolder, (options.mounts ?? []).map(mountString));
    let merged: ReadConfiguration | null = null;
    const remembered = verdict ? cleanVerdicts.get(verdict) : undefined;
    if (remembered) {
      const disguised = await disguisedVolumesIn(remembered);
      if (disguised.length > 0) throw await fail(new DevcontainerError({ kind: 'refused', message: refusal(disguised) }));
    } else {
      interpreter.progress('reading the dev container configuration');
      const read = await run(readConfigurationArgs(common));
      if (read.ended !== 'exited') throw await fail(endedEarly(read, 'read-configuration'));
      merged = parseReadConfiguration(read.stdout);
      if (!merged) {
        throw await fail(
          new DevcontainerError({
            kind: read.spawnError ? 'spawn' : 'config',
            message: read.spawnError ? `cannot start the Dev Containers CLI: ${read.spawnError.message}` : 'the dev container configuration could not be resolved',
            outputTail: interpreter.failureTail(),
            exitCode: read.exitCode,
          }),
        );
      }
      const excess = [...mergedConfigExcess(merged, berthMounts), ...(await disguisedVolumesIn(namedVolumes(merged)))];
      if (excess.length > 0) {
        interpreter.log(`refused before up: ${excess.join('; ')}`);
        throw await fail(new DevcontainerError({ kind: 'refused', message: refusal(excess) }));
      }
      if (verdict) cleanVerdicts.set(verdict, namedVolumes(merged));
    }

    // 2. The container. When everything its configuration depends on is pinned (the verdict's key:
    // the config, the image by id, local features by content), `up` starts exactly what was
    // checked and may run the lifecycle commands itself. Otherwise (a feature from a registry, a
    // Dockerfile build) it creates the container only, and the commands wait for the inspection.
    const pinned = verdict !== null;
    const outcome = await run(
      upArgs({
        sessionId: options.sessionId,
        labels: options.labels,
        ...common,
        secretsFile,
        lockfile: hasLockfile(config.repoConfigPath),
        skipPostCreate: !pinned,
      }),
    );
    if (outcome.ended !== 'exited') throw await fail(endedEarly(outcome, 'up'));
    const result = parseUpResult(outcome.stdout);
    if (!result) {
      throw await fail(
        new DevcontainerError({
          kind: outcome.spawnError ? 'spawn' : 'protocol',
          message: outcome.spawnError
            ? `cannot start the Dev Containers CLI: ${outcome.spawnError.message}`
            : `devcontainer up exited with ${outcome.exitCode ?? outcome.signal} without a result`,
          outputTail: interpreter.failureTail(),
          exitCode: outcome.exitCode,
        }),
      );
    }
    if (result.outcome === 'error') throw await fail(cliFailure(result, interpreter, outcome.exitCode));
    // What `up` itself says it merged: checked again (a remembered verdict must still hold).
    const startedWith = result.mergedConfiguration ?? merged?.mergedConfiguration ?? {};
    const again = mergedConfigExcess({ mergedConfiguration: startedWith }, berthMounts);
    if (again.length > 0) {
      if (verdict) cleanVerdicts.delete(verdict);
      interpreter.log(`refused after up: ${again.join('; ')}`);
      throw await fail(new DevcontainerError({ kind: 'refused', message: refusal(again) }));
    }

    // 3. What it really got: refused (and removed) unless it is what Berth grants.
    const inspect = await inspectContainer(result.containerId);
    const got = inspect ? await containerExcessOf(inspect, berthMounts) : ['a configuration Berth cannot read (docker inspect)'];
    if (got.length > 0) {
      interpreter.log(`refused after up: container ${result.containerId.slice(0, 12)} has ${got.join('; ')}`);
      throw await fail(new DevcontainerError({ kind: 'refused', message: refusal([`the container was created with ${listing(got)}`]) }));
    }

    // 4. Only now the repo's lifecycle commands (when `up` did not run them, and there are any:
    // the CLI run costs half a second).
    const hooks = ['onCreateCommands', 'updateContentCommands', 'postCreateCommands', 'postStartCommands', 'postAttachCommands'] as const;
    const hasLifecycle = !pinned && (!result.mergedConfiguration || hooks.some((hook) => (startedWith[hook]?.length ?? 0) > 0));
    const lifecycle = hasLifecycle
      ? await run(
          runUserCommandsArgs({
            containerId: result.containerId,
            workspaceFolder: options.workspaceFolder,
            lifecycleConfigPath: await writeLifecycleConfig(configDir, config.effective),
            secretsFile,
          }),
        )
      : null;
    if (lifecycle && lifecycle.ended !== 'exited') throw await fail(endedEarly(lifecycle, 'run-user-commands'));
    const ran = lifecycle ? parseCommandResult(lifecycle.stdout) : ({ outcome: 'success' } as const);
    if (lifecycle && (!ran || ran.outcome === 'error')) {
      throw await fail(
        ran?.outcome === 'error'
          ? cliFailure({ ...ran, containerId: result.containerId }, interpreter, lifecycle.exitCode)
          : new DevcontainerError({
              kind: 'protocol',
              message: `devcontainer run-user-commands exited with ${lifecycle.exitCode ?? lifecycle.signal} without a result`,
              outputTail: interpreter.failureTail(),
              exitCode: lifecycle.exitCode,
            }),
      );
    }
    const durationMs = Date.now() - started;
    interpreter.log(`devcontainer up: container ${result.containerId} user ${result.remoteUser} in ${durationMs} ms`);
    return {
      containerId: result.containerId,
      remoteUser: result.remoteUser,
      remoteWorkspaceFolder: result.remoteWorkspaceFolder,
      // The label's values: up's merged config resolved ${containerEnv:…} without the runtime's defaults (PATH).
      remoteEnv: await remoteEnvOf(inspect ? labelRemoteEnv(inspect) : (startedWith.remoteEnv ?? {}), result.containerId, inspect),
      image: inspect?.Image && inspect.Config?.Image ? { id: inspect.Image, name: inspect.Config.Image } : null,
      dropped: config.dropped ?? [],
      configSource: config.source,
      durationMs,
    };
  } catch (error) {
    // What the CLI said last tells one failure from another (describeFailure).
    if (error instanceof DevcontainerError && error.logTail.length === 0) error.logTail.push(...interpreter.recentLog());
    throw error;
  } finally {
    if (secretsFile) await rm(secretsFile, { force: true });
    if (ownConfigDir) await rm(configDir, { recursive: true, force: true });
    if (options.cliTmpDir) await rm(options.cliTmpDir, { recursive: true, force: true });
  }
}

/**
 * `remoteEnv` as the CLI's own exec would set it: `${containerEnv:NAME}` and
 * `${containerEnv:NAME:default}` from the container's environment (`${localEnv:…}` the CLI already
 * substituted); a null value leaves the variable as the container has it.
 */
export function resolveRemoteEnv(remoteEnv: Record<string, string | null>, containerEnv: readonly string[]): Record<string, string> {
  const container = new Map(containerEnv.map((entry) => {
    const eq = entry.indexOf('=');
    return [entry.slice(0, eq), entry.slice(eq + 1)] as const;
  }));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(remoteEnv)) {
    if (value === null || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    out[name] = value.replace(/\$\{containerEnv:([^}:]+)(?::([^}]*))?\}/g, (_m, ref: string, fallback?: string) => container.get(ref) ?? fallback ?? '');
  }
  return out;
}

/**
 * Keys (see verdictKey) of configurations found clean by read-configuration in this process, with
 * the named volumes they mount: what Docker has under those names is checked again every time.
 */
const cleanVerdicts = new Map<string, string[]>();

/** The named volumes (not anonymous, not per-container `${…}` names) a configuration mounts. */
function namedVolumes(read: ReadConfiguration): string[] {
  return (read.mergedConfiguration.mounts ?? []).flatMap((mount) => {
    const { type, source } = mountParts(mount);
    return type === 'volume' && source && !source.includes('${') ? [source] : [];
  });
}

/**
 * What the merged configuration's verdict depends on, when that is all it depends on: the config
 * the CLI reads, where it lies, the image (by id) and local features (by content). Null when
 * something else could change it: a Dockerfile build (its base image), a feature from a registry
 * (a tag can move), a path of this workspace in the config.
 */
async function verdictKey(config: PreparedConfig, workspaceFolder: string, berthMounts: readonly string[]): Promise<string | null> {
  // Berth's own mounts (the shared folder is per session) are allowed whatever they are.
  const own = new Set(berthMounts);
  const effective = Array.isArray(config.effective.mounts)
    ? { ...config.effective, mounts: config.effective.mounts.filter((m) => !(typeof m === 'string' && own.has(m))) }
    : config.effective;
  const text = JSON.stringify(effective);
  if (effective.build !== undefined || effective.dockerFile !== undefined || typeof effective.image !== 'string') return null;
  if (text.includes('${localWorkspaceFolder')) return null;
  const features = effective.features && typeof effective.features === 'object' ? Object.keys(effective.features) : [];
  if (features.some((id) => !id.startsWith('./') && !id.startsWith('../'))) return null;
  const imageId = (await runDocker(['image', 'inspect', '--format', '{{.Id}}', effective.image]).catch(() => '')).trim();
  if (!imageId) return null;
  const hash = createHash('sha256').update(`${text}\0${config.repoConfigPath ? relative(workspaceFolder, config.repoConfigPath) : ''}\0${imageId}`);
  const configDir = config.repoConfigPath ? dirname(config.repoConfigPath) : workspaceFolder;
  for (const id of features.sort()) hash.update(`\0${id}\0${await treeDigest(resolve(configDir, id))}`);
  return hash.digest('hex');
}

/** A digest of a folder's files (names and contents), for a local feature. */
async function treeDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort();
  for (const file of files) hash.update(`${relative(dir, file)}\0`).update(await readFile(file).catch(() => Buffer.alloc(0)));
  return hash.digest('hex');
}

/** `remoteEnv`, resolved against the container's environment when it refers to it. */
async function remoteEnvOf(remoteEnv: Record<string, string | null>, containerId: string, inspect: ContainerInspect | null): Promise<Record<string, string>> {
  const refersToContainer = Object.values(remoteEnv).some((v) => v?.includes('${containerEnv:'));
  return resolveRemoteEnv(remoteEnv, refersToContainer ? await containerEnvOf(containerId, inspect) : []);
}

/**
 * The environment a process started in the container gets (its config's and the runtime's own,
 * such as the default PATH an imported image does not declare), for `${containerEnv:…}`.
 */
async function containerEnvOf(containerId: string, inspect: ContainerInspect | null): Promise<string[]> {
  const environ = await runDocker(['exec', containerId, 'cat', '/proc/self/environ'], { timeoutMs: 10_000 }).catch(() => null);
  return environ ? environ.split('\0').filter(Boolean) : (inspect?.Config?.Env ?? []);
}

/** The sentence a refused sandbox fails with: what was asked for, by whom, and what to do. */
function refusal(problems: string[]): string {
  return `the dev container asks for more than a Berth sandbox gets: ${problems.join('; ')}. Sandboxes get no host mounts, devices or privileges; remove these settings (or the feature) from the dev container config`;
}

function cliFailure(result: { message?: string; description?: string; containerId?: string }, interpreter: UpLogInterpreter, exitCode: number | null): DevcontainerError {
  const redact = (s: string | undefined) => (s === undefined ? undefined : interpreter.redactText(s));
  const description = redact(result.description);
  const cliMessage = redact(result.message);
  interpreter.log(`devcontainer failed: ${description ?? ''} ${cliMessage ?? ''}`.trim());
  return new DevcontainerError({
    kind: 'failed',
    message: [description, cliMessage].filter(Boolean).join(' ') || 'devcontainer up failed',
    description,
    cliMessage,
    lifecycleFailure: interpreter.lifecycleFailure,
    outputTail: interpreter.failureTail(),
    containerId: result.containerId,
    exitCode,
  });
}

/** A repo that pins its features keeps its lockfile checked; Berth writes none into a clone. */
function hasLockfile(repoConfigPath: string | null): boolean {
  if (!repoConfigPath) return false;
  const dir = dirname(repoConfigPath);
  return ['devcontainer-lock.json', '.devcontainer-lock.json'].some((name) => existsSync(join(dir, name)));
}

async function inspectContainer(containerId: string): Promise<ContainerInspect | null> {
  const [raw] = JSON.parse(await runDocker(['inspect', '--type', 'container', containerId])) as unknown[];
  const inspect = containerInspectSchema.safeParse(raw);
  return inspect.success ? inspect.data : null;
}

/** The created container (and its named volumes) against what Berth grants. */
async function containerExcessOf(inspect: ContainerInspect, berthMounts: readonly string[]): Promise<string[]> {
  const excess = containerExcess(inspect, berthMounts);
  for (const volume of (inspect.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name)) {
    const disguised = await disguisedVolume(volume.Name!);
    if (disguised) excess.push(disguised);
  }
  return excess;
}

/**
 * A named volume that is a host directory in disguise (local driver, `o=bind`, `device=/…`, or
 * another driver): its description, or null for a plain volume (or none of that name yet: Docker
 * then creates an empty one).
 */
async function disguisedVolume(name: string): Promise<string | null> {
  const [info] = JSON.parse(await runDocker(['volume', 'inspect', name]).catch(() => '[]')) as { Driver?: string; Options?: Record<string, string> | null }[];
  if (!info) return null;
  const opts = info.Options ?? {};
  if ((info.Driver && info.Driver !== 'local') || opts.device || /\bbind\b/.test(opts.o ?? '') || opts.type === 'none') {
    return `volume ${name} (${info.Driver ?? '?'} driver${opts.device ? `, device ${opts.device}` : ''})`;
  }
  return null;
}

/** The named volumes that exist already as host directories in disguise. */
async function disguisedVolumesIn(names: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of names) {
    const disguised = await disguisedVolume(name);
    if (disguised) found.push(`a ${disguised}`);
  }
  return found;
}

async function removeLeftovers(sessionId: string, interpreter: UpLogInterpreter): Promise<void> {
  try {
    let removed = await removeSessionContainers(sessionId);
    await new Promise((r) => setTimeout(r, LATE_CONTAINER_RECHECK_MS));
    removed += await removeSessionContainers(sessionId);
    if (removed > 0) interpreter.log(`removed ${removed} container(s) of session ${sessionId} after the failure`);
  } catch (error) {
    interpreter.log(`could not remove the containers of session ${sessionId}: ${(error as Error).message}`);
  }
}

interface CliOutcome {
  ended: 'exited' | 'timeout' | 'aborted';
  stdout: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
}

async function runCli(
  cliPath: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; timeoutMs: number; signal: AbortSignal | undefined; interpreter: UpLogInterpreter },
): Promise<CliOutcome> {
  let stdout = '';
  // Its own process group: a kill reaches the docker clients it spawned too.
  const result = await runProcess(process.execPath, [cliPath, ...args], {
    env: options.env,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    killGraceMs: KILL_GRACE_MS,
    onText: (text, stream) => {
      if (stream === 'stdout' && stdout.length < STDOUT_LIMIT) stdout += text;
    },
    onLine: (line, stream) => {
      if (stream === 'stderr') options.interpreter.handleLine(line);
    },
  });
  const ended: CliOutcome['ended'] = result.timedOut ? 'timeout' : result.aborted ? 'aborted' : 'exited';
  if (ended !== 'exited') options.interpreter.log(`devcontainer: ${ended === 'timeout' ? `timed out after ${options.timeoutMs} ms` : 'aborted'}, the CLI was stopped`);
  return { ended, stdout, exitCode: result.exitCode, signal: result.signal, ...(result.spawnError ? { spawnError: result.spawnError } : {}) };
}

/**
 * `devcontainer exec` argv, for comparison with dockerExecArgv (which Berth prefers: ~5x faster).
 * It applies the config's remoteEnv and the user-env probe, but: it needs the text log format
 * (with `--log-format json` it switches to a pty, swallows stdout and never ends on stdin EOF),
 * and it starts in the remote user's home, hence the `cd`.
 */
export function devcontainerExecArgv(containerId: string, command: string, args: readonly string[], options: { cwd?: string; cliPath?: string } = {}): ExecCommand {
  const inner = options.cwd ? ['/bin/sh', '-c', 'cd "$0" && exec "$@"', options.cwd, command, ...args] : [command, ...args];
  return {
    command: process.execPath,
    args: [options.cliPath ?? devcontainerCliPath(), 'exec', '--container-id', containerId, ...inner],
    env: {},
  };
}
