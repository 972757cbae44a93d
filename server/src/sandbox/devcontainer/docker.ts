// Small, bounded-time Docker CLI helpers for the devcontainer provider.
import { runProcess } from '../../util/process';
import { statfs } from 'node:fs/promises';

/** The label every Berth container carries: `berth.session=<sessionId>`. */
export const SESSION_LABEL = 'berth.session';

export interface DockerOptions {
  /** Docker CLI to run; defaults to `docker` on PATH. */
  dockerPath?: string;
  timeoutMs?: number;
}

export class DockerCommandError extends Error {
  constructor(
    message: string,
    readonly args: readonly string[],
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = 'DockerCommandError';
  }
}

/** Runs `docker …` and resolves with stdout; rejects on a non-zero exit or after `timeoutMs`. */
export async function runDocker(args: readonly string[], options: DockerOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  let stderr = '';
  const result = await runProcess(options.dockerPath ?? 'docker', [...args], {
    env: process.env,
    timeoutMs,
    collectStdout: 16 * 1024 * 1024,
    onText: (text, stream) => {
      if (stream === 'stderr' && stderr.length < 65_536) stderr += text;
    },
  });
  if (result.exitCode === 0 && !result.stdoutTruncated) return result.stdout.toString('utf8');
  const reason = result.timedOut
    ? `timed out after ${timeoutMs} ms`
    : stderr.trim() || result.spawnError?.message || (result.stdoutTruncated ? 'too much output' : `exit ${result.exitCode ?? result.signal}`);
  throw new DockerCommandError(`docker ${args[0] ?? ''} failed: ${reason}`, args, stderr, result.timedOut);
}

/** Whether a Docker daemon answers within `timeoutMs` (a wedged socket must not hang the caller). */
export async function dockerAvailable(options: DockerOptions = {}): Promise<boolean> {
  try {
    await runDocker(['version', '--format', '{{.Server.Version}}'], { ...options, timeoutMs: options.timeoutMs ?? 5_000 });
    return true;
  } catch {
    return false;
  }
}

/** `docker rm -f`; a container that is already gone counts as removed. */
export async function removeContainer(containerId: string, options: DockerOptions = {}): Promise<void> {
  try {
    await runDocker(['rm', '-f', '--volumes', containerId], options);
  } catch (error) {
    if (error instanceof DockerCommandError && /no such container/i.test(error.stderr)) return;
    throw error;
  }
}

export interface LabelledContainer {
  id: string;
  sessionId: string;
}

/** Every container (running or not) carrying the Berth session label, optionally only those with another label too. */
export async function listLabelledContainers(options: DockerOptions = {}, alsoLabel?: string): Promise<LabelledContainer[]> {
  const filters = ['--filter', `label=${SESSION_LABEL}`, ...(alsoLabel ? ['--filter', `label=${alsoLabel}`] : [])];
  const stdout = await runDocker(['ps', '-a', '--no-trunc', ...filters, '--format', `{{.ID}}\t{{.Label "${SESSION_LABEL}"}}`], options);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id = '', sessionId = ''] = line.split('\t');
      return { id, sessionId };
    })
    .filter((c) => c.id.length > 0);
}

/** Removes every container of one session; returns how many were removed. */
export async function removeSessionContainers(sessionId: string, options: DockerOptions = {}): Promise<number> {
  const stdout = await runDocker(['ps', '-a', '-q', '--no-trunc', '--filter', `label=${SESSION_LABEL}=${sessionId}`], options);
  const ids = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  for (const id of ids) await removeContainer(id, options);
  return ids.length;
}

/** Free bytes (for unprivileged users) on the filesystem of Docker's data root, or null if it is not local. */
export async function dockerDataRootFreeBytes(options: DockerOptions = {}): Promise<number | null> {
  const root = (await runDocker(['info', '--format', '{{.DockerRootDir}}'], { ...options, timeoutMs: options.timeoutMs ?? 10_000 })).trim();
  if (!root) return null;
  try {
    const stats = await statfs(root);
    return stats.bavail * stats.bsize;
  } catch {
    // A remote daemon (DOCKER_HOST) or a root dir we cannot see.
    return null;
  }
}

export interface ExecCommand {
  /** Program to spawn on the host. */
  command: string;
  args: string[];
  /** Extra environment for the spawned host process: values travel this way, never in argv. */
  env: Record<string, string>;
}

export interface DockerExecOptions {
  /** A TTY for the process (a terminal: the caller runs `docker` itself in a PTY). */
  tty?: boolean;
  /** The container user (the `remoteUser` of `up`). */
  user?: string;
  /** Working directory inside the container (the `remoteWorkspaceFolder` of `up`). */
  cwd?: string;
  env?: Record<string, string>;
  dockerPath?: string;
}

/**
 * `docker exec -i` argv for a command inside the container with piped stdio.
 * Env values are passed as `-e NAME` (inherited from the docker client's env) so they never show
 * in argv or `ps`; spawn it with `{ env: { ...process.env, ...result.env } }`.
 * Note: killing the docker client does not kill the process in the container; close its stdin
 * (the agent host exits on EOF) or remove the container.
 */
export function dockerExecArgv(containerId: string, command: string, args: readonly string[], options: DockerExecOptions = {}): ExecCommand {
  const argv = ['exec', '-i', ...(options.tty ? ['-t'] : [])];
  if (options.user) argv.push('-u', options.user);
  if (options.cwd) argv.push('-w', options.cwd);
  const env = options.env ?? {};
  for (const name of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name: ${name}`);
    argv.push('-e', name);
  }
  argv.push(containerId, command, ...args);
  return { command: options.dockerPath ?? 'docker', args: argv, env: { ...env } };
}
