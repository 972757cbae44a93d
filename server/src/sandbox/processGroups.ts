import { spawn, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process';
import { killGroup } from '../util/process';

/** The host processes a sandbox started, each in a process group of its own, killed together. */
export class ProcessGroups {
  private readonly children = new Set<ChildProcessWithoutNullStreams>();

  spawn(command: string, args: string[], options: Pick<SpawnOptions, 'cwd' | 'env'>): ChildProcessWithoutNullStreams {
    const child = spawn(command, args, { ...options, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('close', () => this.children.delete(child));
    return child;
  }

  killAll(): void {
    for (const child of this.children) killGroup(child);
    this.children.clear();
  }
}
