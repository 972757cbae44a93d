import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Sandbox, SandboxCreateRequest, SandboxProvider, SandboxRef, SpawnOptions } from '../provider';
import { SANDBOX_OWNER_VAR, SANDBOX_SESSION_VAR, sandboxEnv } from '../env';
import { ProcessGroups } from '../processGroups';

export interface LocalProviderOptions {
  /** Tags every process this server starts, so that a restart finds the ones a crash left behind. */
  instance: string;
  agentHostScript: string;
}

/** Finds live processes whose environment carries the given owner tag (Linux /proc). */
function processesOf(instance: string): { pid: number; sessionId: string | undefined }[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found: { pid: number; sessionId: string | undefined }[] = [];
  const ownerEntry = `${SANDBOX_OWNER_VAR}=${instance}`;
  for (const pid of pids) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    const vars = environ.split('\0');
    if (!vars.includes(ownerEntry)) continue;
    const session = vars.find((v) => v.startsWith(`${SANDBOX_SESSION_VAR}=`))?.slice(SANDBOX_SESSION_VAR.length + 1);
    found.push({ pid: Number(pid), sessionId: session });
  }
  return found;
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

class LocalSandbox implements Sandbox {
  readonly ref: SandboxRef;
  readonly agentHost: { node: string; script: string };
  private readonly processes = new ProcessGroups();

  constructor(
    private readonly sessionId: string,
    private readonly instance: string,
    readonly workspaceFolder: string,
    readonly sharedFolder: string,
    agentHostScript: string,
  ) {
    this.ref = { provider: 'local', instance, sessionId };
    this.agentHost = { node: process.execPath, script: agentHostScript };
  }

  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcessWithoutNullStreams {
    return this.processes.spawn(command, args, {
      cwd: options.cwd ?? this.workspaceFolder,
      env: sandboxEnv({
        ...options.env,
        [SANDBOX_SESSION_VAR]: this.sessionId,
        [SANDBOX_OWNER_VAR]: this.instance,
      }),
    });
  }

  async destroy(): Promise<void> {
    this.processes.killAll();
    // Anything that escaped its process group (daemonised by a setup command) still carries the tags.
    for (const p of processesOf(this.instance)) if (p.sessionId === this.sessionId) killPid(p.pid);
  }
}

/** The embedded provider: the workspace is a host folder, processes are host children. */
export class LocalProvider implements SandboxProvider {
  readonly name = 'local' as const;
  readonly setupInsideSandbox = false;

  constructor(private readonly options: LocalProviderOptions) {}

  async create(request: SandboxCreateRequest): Promise<Sandbox> {
    request.onProgress('using a local workspace');
    return new LocalSandbox(
      request.sessionId,
      this.options.instance,
      request.workspaceDir,
      request.sharedDir,
      this.options.agentHostScript,
    );
  }

  async destroy(ref: SandboxRef): Promise<void> {
    if (ref.provider !== 'local') return;
    for (const p of processesOf(ref.instance)) if (p.sessionId === ref.sessionId) killPid(p.pid);
  }

  async removeOrphans(liveSessionIds: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const p of processesOf(this.options.instance)) {
      if (p.sessionId && liveSessionIds.has(p.sessionId)) continue;
      killPid(p.pid);
      removed++;
    }
    return removed;
  }

  async freeBytes(): Promise<number | null> {
    return null;
  }
}
