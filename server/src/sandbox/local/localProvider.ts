import type { PipedChild } from '../../util/launcher';
import { existsSync } from 'node:fs';
import type { Sandbox, SandboxCreateRequest, SandboxProvider, SandboxRef, SpawnOptions, TerminalCommand } from '../provider';
import { sandboxEnv } from '../env';
import { ProcessGroups } from '../processGroups';
import { hostProcessTags, killOrphanProcesses, killSessionProcesses } from '../hostProcesses';

export interface LocalProviderOptions {
  /** Tags every process this server starts, so that a restart finds the ones a crash left behind. */
  instance: string;
  agentHostScript: string;
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

  spawn(command: string, args: string[], options: SpawnOptions = {}): PipedChild {
    return this.processes.spawn(command, args, {
      cwd: options.cwd ?? this.workspaceFolder,
      env: sandboxEnv({ ...options.env, ...hostProcessTags(this.instance, this.sessionId) }),
    });
  }

  terminal(): TerminalCommand {
    const shell = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
    // Tagged like every process of the sandbox: its teardown (and a restart) ends the shell too.
    return { command: shell, args: ['-i'], cwd: this.workspaceFolder, env: sandboxEnv({ TERM: 'xterm-256color', ...hostProcessTags(this.instance, this.sessionId) }) };
  }

  async destroy(): Promise<void> {
    this.processes.killAll();
    // Anything that escaped its process group (daemonised by a setup command) still carries the tags.
    await killSessionProcesses(this.instance, this.sessionId);
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
    await killSessionProcesses(ref.instance, ref.sessionId);
  }

  async removeOrphans(liveSessionIds: ReadonlySet<string>): Promise<number> {
    return killOrphanProcesses(this.options.instance, liveSessionIds);
  }

  async freeBytes(): Promise<number | null> {
    return null;
  }
}
