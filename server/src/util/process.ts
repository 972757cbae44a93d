import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Keeps the last `maxBytes` of a stream of text, and its last complete lines. */
export class OutputTail {
  private text = '';
  constructor(private readonly maxBytes = 16_384) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.maxBytes) this.text = this.text.slice(this.text.length - this.maxBytes);
  }
  toString(): string {
    return this.text;
  }
  lastLines(n: number): string[] {
    return this.text.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.length > 0).slice(-n);
  }
}

/** Splits a byte stream into lines, calling `onLine` for each complete one. */
export function lineSplitter(
  onLine: (line: string) => void,
  limit?: { maxLength: number; onOverflow(): void },
): { push(chunk: string): void; end(): void } {
  let pending = '';
  let overflowed = false;
  return {
    push(chunk) {
      if (overflowed) return;
      // Only the new chunk is searched: a long line arriving in pieces costs linear time.
      let start = 0;
      let nl: number;
      while ((nl = chunk.indexOf('\n', start)) >= 0) {
        onLine((pending + chunk.slice(start, nl)).replace(/\r$/, ''));
        pending = '';
        start = nl + 1;
      }
      pending += chunk.slice(start);
      // A peer that never ends its line must not grow this buffer without bound.
      if (limit && pending.length > limit.maxLength) {
        overflowed = true;
        pending = '';
        limit.onOverflow();
      }
    },
    end() {
      if (pending.length > 0) onLine(pending);
      pending = '';
    },
  };
}

/**
 * Signals a whole process group (children run detached, in a group of their own). Works after the
 * group's leader has exited too: descendants it left behind are still in the group.
 */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal?: AbortSignal;
  input?: string;
  onLine?: (line: string) => void;
  /** Starts the process; by default a detached child_process.spawn. */
  spawner?: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  output: OutputTail;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  spawnError?: Error;
}

/** Runs a process to completion in its own process group, with a hard timeout and abort. */
export function runProcess(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    const output = new OutputTail();
    const spawner = options.spawner ?? spawn;
    const child = spawner(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let timedOut = false;
    let aborted = false;
    let spawnError: Error | undefined;
    const lines = lineSplitter((line) => options.onLine?.(line));
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output.push(text);
      lines.push(text);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // the process may exit without reading its input
      child.stdin.end(options.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      killGroup(child);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      lines.end();
      // Descendants may outlive the direct child: clean the group up.
      killGroup(child);
      resolve({ exitCode, signal, output, timedOut, aborted, ...(spawnError ? { spawnError } : {}) });
    });
  });
}
