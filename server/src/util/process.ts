import { launch, type Child, type LaunchOptions } from './launcher';
import { StringDecoder } from 'node:string_decoder';

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
export function killGroup(child: Child, signal: NodeJS.Signals = 'SIGKILL'): void {
  child.killGroup(signal);
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Time limit; then the process group is stopped (see `killGraceMs`). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Written to stdin, which is then closed (no input: stdin is /dev/null). */
  input?: string | Buffer;
  /** On a timeout or an abort: SIGTERM to the group, then SIGKILL after this long (0: SIGKILL at once). */
  killGraceMs?: number;
  /** Every complete line of stdout and stderr (UTF-8, decoded across chunk boundaries). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Stdout and stderr text as it comes (UTF-8, decoded across chunk boundaries). */
  onText?: (text: string, stream: 'stdout' | 'stderr') => void;
  /** Keeps stdout's bytes, up to this many; past them the process is stopped (`stdoutTruncated`). */
  collectStdout?: number;
  /** After the process exits, output its leftovers still hold pipes for is read this long at most. */
  drainMs?: number;
  /** Starts the process; by default `launch` (detached). */
  spawner?: (command: string, args: string[], options: LaunchOptions) => Child;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The tail of stdout and stderr together, as text. */
  output: OutputTail;
  /** Stdout's bytes, with `collectStdout`. */
  stdout: Buffer;
  stdoutTruncated: boolean;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  spawnError?: Error;
}

export interface RunningProcess {
  child: Child;
  done: Promise<RunResult>;
}

/**
 * The one way Berth runs a process to completion: in its own process group (so a kill reaches
 * what it started), with a time limit and an abort signal (SIGTERM, then SIGKILL after a grace),
 * UTF-8 text decoded across chunk boundaries, and whatever it left running killed at the end.
 */
export function startProcess(command: string, args: string[], options: RunOptions): RunningProcess {
  const output = new OutputTail();
  const spawner = options.spawner ?? launch;
  const child = spawner(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const done = new Promise<RunResult>((resolve) => {
    let timedOut = false;
    let aborted = false;
    let spawnError: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stdoutTruncated = false;
    const stop = () => {
      const grace = options.killGraceMs ?? 0;
      if (grace <= 0) return killGroup(child);
      killGroup(child, 'SIGTERM');
      killTimer ??= setTimeout(() => killGroup(child), grace);
    };
    const watch = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
      if (!stream) return;
      const decoder = new StringDecoder('utf8');
      const lines = lineSplitter((line) => options.onLine?.(line, name));
      const text = (t: string) => {
        if (!t) return;
        output.push(t);
        lines.push(t);
        options.onText?.(t, name);
      };
      stream.on('data', (chunk: Buffer) => {
        if (name === 'stdout' && options.collectStdout !== undefined && !stdoutTruncated) {
          if (stdoutBytes + chunk.length > options.collectStdout) {
            stdoutTruncated = true;
            killGroup(child);
          } else {
            stdoutBytes += chunk.length;
            stdout.push(chunk);
          }
        }
        text(decoder.write(chunk));
      });
      stream.on('end', () => {
        text(decoder.end());
        lines.end();
      });
    };
    watch(child.stdout, 'stdout');
    watch(child.stderr, 'stderr');
    if (options.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // the process may exit without reading its input
      child.stdin.end(options.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    let settled = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      options.signal?.removeEventListener('abort', onAbort);
      // Descendants may outlive the direct child: clean the group up.
      killGroup(child);
      if (options.drainMs !== undefined) {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }
      resolve({ exitCode, signal, output, stdout: Buffer.concat(stdout), stdoutTruncated, timedOut, aborted, ...(spawnError ? { spawnError } : {}) });
    };
    child.on('error', (err) => {
      spawnError = err;
      if (child.pid === undefined) finish(null, null);
    });
    child.on('close', (exitCode, signal) => finish(exitCode, signal));
    // A background process may hold the pipes open after the leader is gone: do not wait for it.
    if (options.drainMs !== undefined) {
      const drainMs = options.drainMs;
      child.on('exit', (exitCode, signal) => {
        drainTimer = setTimeout(() => finish(exitCode, signal), drainMs);
      });
    }
  });
  return { child, done };
}

/** Runs a process to completion (see startProcess). */
export function runProcess(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  return startProcess(command, args, options).done;
}
