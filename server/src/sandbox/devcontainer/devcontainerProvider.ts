import type { PipedChild } from '../../util/launcher';
import { realpathSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, basename, join } from 'node:path';
import type { Sandbox, SandboxCreateRequest, SandboxProvider, SandboxRef, SpawnOptions, TerminalCommand } from '../provider';
import { SANDBOX_SESSION_VAR, sandboxEnv } from '../env';
import { describeFailure } from './failures';
import { ProcessGroups } from '../processGroups';
import { hostProcessTags, killOrphanProcesses } from '../hostProcesses';
import { BerthError } from '../../util/errors';
import { runProcess } from '../../util/process';
import {
  adoptBuiltImage,
  ControlManifest,
  DevcontainerError,
  pruneImages,
  devcontainerUp,
  dockerDataRootFreeBytes,
  dockerExecArgv,
  listLabelledContainers,
  removeContainer,
  runDocker,
  type UpResult,
} from './cli';

export const INSTANCE_LABEL = 'berth.instance';
// Where the host's Node binary, the agent host bundle and the shared folder appear in the container.
const NODE_TARGET = '/opt/berth/node/bin/node';
const AGENT_TARGET = '/opt/berth/agent';
const SHARED_TARGET = '/berth/shared';
/** The user's login shell when the image has bash, else sh. */
const LOGIN_SHELL = 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi';

export interface DevcontainerProviderOptions {
  instance: string;
  agentHostScript: string;
  defaultImage: string;
  timeoutMs: number;
  /** Values never to show in logs (tokens, keys). */
  redact: string[];
  /** The server's own files of this provider (the control manifest's last good copy). */
  stateDir: string;
  /** Where the Dev Containers CLI's control manifest is fetched from. */
  controlManifestUrl: string;
}

/** The environment of the host-side `docker` client: enough to reach the daemon, nothing secret. */
function dockerClientEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = sandboxEnv({});
  for (const name of ['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CONTEXT', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

class DevcontainerSandbox implements Sandbox {
  readonly ref: SandboxRef;
  readonly workspaceFolder: string;
  readonly sharedFolder = SHARED_TARGET;
  readonly agentHost: { node: string; script: string };
  readonly notices: readonly string[];
  private readonly processes = new ProcessGroups();

  constructor(
    private sessionId: string,
    private readonly instance: string,
    private readonly up: UpResult,
    agentHostScript: string,
  ) {
    this.ref = { provider: 'devcontainer', containerId: up.containerId };
    this.notices = up.dropped.length ? [`ignored in the repo's config (they would reach the host): ${up.dropped.join(', ')}`] : [];
    this.workspaceFolder = up.remoteWorkspaceFolder;
    this.agentHost = { node: NODE_TARGET, script: `${AGENT_TARGET}/${basename(agentHostScript)}` };
  }

  /** `docker exec -i` into the container as its remote user; env values travel outside argv. */
  spawn(command: string, args: string[], options: SpawnOptions = {}): PipedChild {
    const exec = dockerExecArgv(this.up.containerId, command, args, {
      user: this.up.remoteUser,
      cwd: options.cwd ?? this.workspaceFolder,
      // The config's remoteEnv, as for the CLI's own exec; Berth's own variables win.
      env: { ...this.up.remoteEnv, ...options.env, [SANDBOX_SESSION_VAR]: this.sessionId },
    });
    return this.processes.spawn(exec.command, exec.args, { env: dockerClientEnv({ ...exec.env, ...hostProcessTags(this.instance, this.sessionId) }) });
  }

  terminal(): TerminalCommand {
    const exec = dockerExecArgv(this.up.containerId, '/bin/sh', ['-c', LOGIN_SHELL], {
      tty: true,
      user: this.up.remoteUser,
      cwd: this.workspaceFolder,
      env: { ...this.up.remoteEnv, TERM: 'xterm-256color', [SANDBOX_SESSION_VAR]: this.sessionId },
    });
    return { command: exec.command, args: exec.args, env: dockerClientEnv({ ...exec.env, ...hostProcessTags(this.instance, this.sessionId) }) };
  }

  assignTo(sessionId: string): void {
    this.sessionId = sessionId;
  }

  async destroy(): Promise<void> {
    // Removing the container ends everything inside it; the exec clients then exit on their own.
    // A container Docker would not remove is the caller's to record (SandboxTeardown retries it).
    try {
      await removeContainer(this.up.containerId);
    } finally {
      this.processes.killAll();
    }
  }
}

/**
 * A config's non-root `remoteUser` must be able to write the clone, which the server made as root:
 * the workspace (and the shared folder) change hands to that user's uid and gid. A server that is
 * not root leaves ownership alone (its uid is the one files have).
 */
async function giveWorkspaceTo(up: UpResult, dirs: string[], log: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0 || up.remoteUser === 'root') return;
  const ids = (await runDocker(['exec', '-u', up.remoteUser, up.containerId, 'sh', '-c', 'id -u; id -g'])).trim().split('\n').map(Number);
  const [uid, gid] = ids;
  if (uid === undefined || gid === undefined || !Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) return;
  for (const dir of dirs) await chownTree(dir, uid, gid);
  log(`workspace owned by ${up.remoteUser} (${uid}:${gid}) for the container`);
}

/** chown -R that never follows a link (-P, -h), so a link the repo holds cannot hand over a host file. */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const r = await runProcess('chown', ['-R', '-P', '-h', `${uid}:${gid}`, '--', path], { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`chown of ${path} failed: ${r.spawnError?.message ?? r.output.lastLines(2).join(' ')}`);
}

/**
 * Removes the per-`up` folders (`<session>-<pid>-<ms>`: override configs, which may hold a secrets
 * file, and the CLI's temp folders) of servers that died during `up`: their pid no longer runs.
 */
async function removeStaleConfigDirs(root = join(tmpdir(), 'berth-devcontainer')): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const pid = Number(/-(\d+)-\d+$/.exec(name)?.[1]);
    if (!pid || pidAlive(pid)) continue;
    await rm(join(root, name), { recursive: true, force: true }).catch(() => {});
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sandboxes as real dev containers, provisioned by the official Dev Containers CLI. The agent host
 * runs inside on the server's own Node binary, bind-mounted read-only (the image needs glibc).
 */
export class DevcontainerProvider implements SandboxProvider {
  readonly name = 'devcontainer' as const;
  readonly setupInsideSandbox = true;

  private readonly controlManifest: ControlManifest;

  constructor(private readonly options: DevcontainerProviderOptions) {
    this.controlManifest = new ControlManifest({ url: options.controlManifestUrl, stateFile: join(options.stateDir, 'control-manifest.json') });
  }

  async create(request: SandboxCreateRequest): Promise<Sandbox> {
    const { agentHostScript } = this.options;
    try {
      const up = await devcontainerUp({
        sessionId: request.sessionId,
        labels: { [INSTANCE_LABEL]: this.options.instance },
        workspaceFolder: request.workspaceDir,
        configPath: request.configPath ?? null,
        secrets: request.secrets,
        mounts: [
          { source: realpathSync(process.execPath), target: NODE_TARGET, readonly: true },
          { source: dirname(realpathSync(agentHostScript)), target: AGENT_TARGET, readonly: true },
          { source: request.sharedDir, target: SHARED_TARGET },
        ],
        defaultImage: this.options.defaultImage,
        timeoutMs: this.options.timeoutMs,
        signal: request.signal,
        onProgress: request.onProgress,
        onLog: request.onLog,
        redact: this.options.redact,
        controlManifest: this.controlManifest,
        // Its downloads and caches go where Berth removes them (one folder per `up`).
        cliTmpDir: join(this.options.stateDir, 'tmp', `${request.sessionId}-${process.pid}-${Date.now()}`),
        // Tagged: a CLI (and its docker clients) left running by a killed server is killed on restart.
        env: dockerClientEnv(hostProcessTags(this.options.instance, request.sessionId)),
      });
      request.onLog(`container ${up.containerId.slice(0, 12)} up (${up.configSource} config, user ${up.remoteUser})`);
      await giveWorkspaceTo(up, [request.workspaceDir, request.sharedDir], request.onLog);
      if (up.image) {
        // One image per repository and config, not one per session.
        const key = createHash('sha256').update(`${request.repoUrl}\0${request.configPath ?? ''}`).digest('hex').slice(0, 24);
        const named = await adoptBuiltImage(up.image, key, join(this.options.stateDir, 'images')).catch((err: unknown) => {
          request.onLog(`could not name the built image: ${String(err)}`);
          return null;
        });
        if (named) request.onLog(`built image kept as ${named}`);
      }
      return new DevcontainerSandbox(request.sessionId, this.options.instance, up, agentHostScript);
    } catch (err) {
      if (err instanceof DevcontainerError) {
        if (err.kind === 'aborted') throw new BerthError('aborted', 'cancelled');
        const failure = describeFailure(err, err.logTail, request.workspaceDir, [dirname(this.options.stateDir)]);
        request.onLog(`sandbox failed (${failure.code}): ${failure.message.split('\n')[0]}`);
        throw new BerthError(failure.code, failure.message);
      }
      throw err;
    }
  }

  async destroy(ref: SandboxRef): Promise<void> {
    if (ref.provider === 'devcontainer') await removeContainer(ref.containerId);
  }

  async removeOrphans(liveSessionIds: ReadonlySet<string>): Promise<number> {
    // Host processes first (a CLI still running `up` would otherwise create a container later).
    await killOrphanProcesses(this.options.instance, liveSessionIds);
    await removeStaleConfigDirs();
    await removeStaleConfigDirs(join(this.options.stateDir, 'tmp'));
    const mine = await listLabelledContainers({}, `${INSTANCE_LABEL}=${this.options.instance}`);
    let removed = 0;
    for (const c of mine) {
      if (liveSessionIds.has(c.sessionId)) continue;
      await removeContainer(c.id).catch(() => {});
      removed++;
    }
    return removed;
  }

  async freeBytes(): Promise<number | null> {
    return dockerDataRootFreeBytes();
  }

  async pruneBuilt(maxAgeMs: number): Promise<string[]> {
    return pruneImages(join(this.options.stateDir, 'images'), maxAgeMs);
  }
}
