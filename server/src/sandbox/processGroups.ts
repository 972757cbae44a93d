import { launch, type LaunchOptions, type PipedChild } from '../util/launcher';
import { killGroup } from '../util/process';

/** The host processes a sandbox started, each in a process group of its own, killed together. */
export class ProcessGroups {
  private readonly children = new Set<PipedChild>();

  spawn(command: string, args: string[], options: Pick<LaunchOptions, 'cwd' | 'env'>): PipedChild {
    const child = launch(command, args, { ...options, detached: true });
    this.children.add(child);
    child.on('close', () => this.children.delete(child));
    return child;
  }

  killAll(): void {
    for (const child of this.children) killGroup(child);
    this.children.clear();
  }
}
