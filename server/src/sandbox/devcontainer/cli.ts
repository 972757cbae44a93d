// A typed wrapper around the Dev Containers CLI (it has no library API): spawns its bundled
// `devcontainer.js` with the current Node, parses the JSON result on stdout and the NDJSON log
// on stderr, and owns the process: its own timeout, AbortSignal, whole-process-group kill.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_IMAGE, prepareConfig, type BindMount } from './config.js';
import { SESSION_LABEL, removeSessionContainers, type ExecCommand } from './docker.js';
import { UpLogInterpreter, type LifecycleFailure } from './progress.js';
import { parseUpResult } from './schemas.js';
import { killGroup } from '../../util/process';

export { DEFAULT_IMAGE, findRepoConfig, mountString, parseJsonc, prepareConfig, type BindMount } from './config.js';
export {
  SESSION_LABEL,
  DockerCommandError,
  dockerAvailable,
  dockerDataRootFreeBytes,
  dockerExecArgv,
  listLabelledContainers,
  removeContainer,
  removeSessionContainers,
  runDocker,
  type DockerExecOptions,
  type ExecCommand,
  type LabelledContainer,
} from './docker.js';
export { createRedactor, stripAnsi, type LifecycleFailure } from './progress.js';

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

/**
 * The CLI fetches https://containers.dev/static/devcontainer-control-manifest.json on every `up`
 * unless `<os.tmpdir()>/devcontainercli-<user>/control-manifest.json` is younger than 5 minutes.
 * The request has no timeout: on a network that swallows connections `up` hangs for ever.
 * Refreshing the cache's mtime (or writing an empty manifest) before each `up` skips the fetch.
 * Returns the cache file path.
 */
export async function refreshControlManifestCache(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // os.tmpdir() of the child: TMPDIR, TMP, TEMP, else /tmp (POSIX), without a trailing slash.
  const childTmp = (env.TMPDIR || env.TMP || env.TEMP || tmpdir()).replace(/(.)\/+$/, '$1');
  const file = join(childTmp, `devcontainercli-${userInfo().username}`, 'control-manifest.json');
  const now = new Date();
  try {
    const existing = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (existing && typeof existing === 'object') {
      // Keep a real manifest fetched earlier; just make it fresh.
      await utimes(file, now, now);
      return file;
    }
  } catch {
    // missing or unreadable: write an empty one
  }
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}-${process.pid}-${Date.now()}`;
  await writeFile(temp, JSON.stringify({ disallowedFeatures: [], featureAdvisories: [] }, null, 2));
  await rename(temp, file);
  return file;
}

export type DevcontainerErrorKind = 'config' | 'failed' | 'timeout' | 'aborted' | 'spawn' | 'protocol';

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
  /** Extra bind mounts (read-only ones go through the override config; see config.ts). */
  mounts?: readonly BindMount[];
  /** Image of the default config used when the repo has none. */
  defaultImage?: string;
  /** Where to write the override config (outside the clone); default a temp dir removed after `up`. */
  configDir?: string;
  /** Default 15 minutes. */
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?(message: string, detail?: string): void;
  onLog?(line: string): void;
  /** Env for lifecycle commands, passed via `--secrets-file` (never argv) and redacted from logs. */
  secrets?: Record<string, string>;
  /** Other values to redact from logs and errors. */
  redact?: readonly string[];
  /** Remove the session's containers when `up` fails, times out or is aborted. Default true. */
  removeOnFailure?: boolean;
  /** Environment of the CLI process (PATH must find docker). */
  env?: NodeJS.ProcessEnv;
  cliPath?: string;
  /** Skip the control-manifest cache refresh (for measurements). */
  skipManifestCache?: boolean;
}

export interface UpResult {
  containerId: string;
  remoteUser: string;
  remoteWorkspaceFolder: string;
  configSource: 'repo' | 'default';
  durationMs: number;
}

function checkSessionId(sessionId: string): void {
  // It ends up in a docker label filter and in `--id-label name=value`.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(sessionId)) throw new Error(`invalid session id for a container label: ${sessionId}`);
}

/** Builds the `up` argv (after the script path). */
export function upArgs(options: {
  sessionId: string;
  labels?: Record<string, string>;
  workspaceFolder: string;
  overrideConfigPath: string | null;
  secretsFile: string | null;
}): string[] {
  const args = [
    'up',
    '--workspace-folder',
    options.workspaceFolder,
    '--id-label',
    `${SESSION_LABEL}=${options.sessionId}`,
    ...Object.entries(options.labels ?? {}).flatMap(([k, v]) => ['--id-label', `${k}=${v}`]),
    '--log-format',
    'json',
    // The host uid is irrelevant for Berth and the update would build an extra image.
    '--update-remote-user-uid-default',
    'never',
  ];
  if (options.overrideConfigPath) args.push('--override-config', options.overrideConfigPath);
  if (options.secretsFile) args.push('--secrets-file', options.secretsFile);
  return args;
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
        configDir,
        defaultImage: options.defaultImage ?? DEFAULT_IMAGE,
        mounts: options.mounts,
      });
    } catch (error) {
      throw new DevcontainerError({ kind: 'config', message: `invalid dev container config: ${(error as Error).message}` });
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
    if (config.dropped?.length) interpreter.log(`ignored in the repo's config (they would reach the host): ${config.dropped.join(', ')}`);
    if (Object.keys(secrets).length > 0) {
      await mkdir(configDir, { recursive: true });
      secretsFile = join(configDir, 'secrets.json');
      await writeFile(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
    }
    const env = options.env ?? process.env;
    if (!options.skipManifestCache) await refreshControlManifestCache(env);

    const args = upArgs({
      sessionId: options.sessionId,
      labels: options.labels,
      workspaceFolder: options.workspaceFolder,
      overrideConfigPath: config.overrideConfigPath,
      secretsFile,
    });
    const outcome = await runCli(cliPath, args, { env, timeoutMs, signal: options.signal, interpreter });
    const durationMs = Date.now() - started;

    if (outcome.ended !== 'exited') {
      if (removeOnFailure) await removeLeftovers(options.sessionId, interpreter);
      const where = interpreter.lastMessage ? ` (last step: ${interpreter.lastMessage})` : '';
      throw new DevcontainerError({
        kind: outcome.ended,
        message:
          outcome.ended === 'timeout'
            ? `devcontainer up timed out after ${Math.round(timeoutMs / 1000)} s${where}`
            : `devcontainer up aborted${where}`,
        outputTail: interpreter.failureTail(),
      });
    }

    const result = parseUpResult(outcome.stdout);
    if (!result) {
      if (removeOnFailure) await removeLeftovers(options.sessionId, interpreter);
      throw new DevcontainerError({
        kind: outcome.spawnError ? 'spawn' : 'protocol',
        message: outcome.spawnError
          ? `cannot start the Dev Containers CLI: ${outcome.spawnError.message}`
          : `devcontainer up exited with ${outcome.exitCode ?? outcome.signal} without a result`,
        outputTail: interpreter.failureTail(),
        exitCode: outcome.exitCode,
      });
    }
    if (result.outcome === 'error') {
      const redact = (s: string | undefined) => (s === undefined ? undefined : interpreter.redactText(s));
      const description = redact(result.description);
      const cliMessage = redact(result.message);
      const failure = interpreter.lifecycleFailure;
      interpreter.log(`devcontainer up failed: ${description ?? ''} ${cliMessage ?? ''}`.trim());
      if (removeOnFailure) await removeLeftovers(options.sessionId, interpreter);
      throw new DevcontainerError({
        kind: 'failed',
        message: [description, cliMessage].filter(Boolean).join(' ') || 'devcontainer up failed',
        description,
        cliMessage,
        lifecycleFailure: failure,
        outputTail: interpreter.failureTail(),
        containerId: result.containerId,
        exitCode: outcome.exitCode,
      });
    }
    interpreter.log(`devcontainer up: container ${result.containerId} user ${result.remoteUser} in ${durationMs} ms`);
    return {
      containerId: result.containerId,
      remoteUser: result.remoteUser,
      remoteWorkspaceFolder: result.remoteWorkspaceFolder,
      configSource: config.source,
      durationMs,
    };
  } finally {
    if (secretsFile) await rm(secretsFile, { force: true });
    if (ownConfigDir) await rm(configDir, { recursive: true, force: true });
  }
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

function runCli(
  cliPath: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; timeoutMs: number; signal: AbortSignal | undefined; interpreter: UpLogInterpreter },
): Promise<CliOutcome> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: options.env,
      // Own process group, so a kill reaches the docker clients it spawned too.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderrRest = '';
    let ended: CliOutcome['ended'] = 'exited';
    let spawnError: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;

    const stop = (reason: 'timeout' | 'aborted') => {
      if (ended !== 'exited') return;
      ended = reason;
      options.interpreter.log(`devcontainer up: ${reason === 'timeout' ? `timed out after ${options.timeoutMs} ms` : 'aborted'}, killing the CLI`);
      killGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = () => stop('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (stdout.length < STDOUT_LIMIT) stdout += chunk;
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (stderrRest + chunk).split('\n');
      stderrRest = lines.pop() ?? '';
      for (const line of lines) options.interpreter.handleLine(line);
    });
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // The CLI is gone; make sure nothing of its group stays behind (e.g. `docker events`).
      killGroup(child, 'SIGKILL');
      if (killTimer) clearTimeout(killTimer);
      if (stderrRest) options.interpreter.handleLine(stderrRest);
      resolvePromise({ ended, stdout, exitCode, signal, spawnError });
    });
  });
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
