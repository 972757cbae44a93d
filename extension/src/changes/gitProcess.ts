// git in the user's own repository: always an argument array (never a shell string), the user's
// own configuration (it is their repository), no prompts, and errors that say what git said.
import { spawn } from 'node:child_process';

export interface GitRunOptions {
  cwd: string;
  input?: Buffer | string;
  /** Exit codes that are answers rather than failures (e.g. `merge-file` counts conflicts in it). */
  okCodes?: readonly number[];
  timeoutMs?: number;
  /** Stdout beyond this is an error: a runaway output never fills memory. */
  maxOutputBytes?: number;
}

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export class GitError extends Error {
  constructor(
    message: string,
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'GitError';
  }
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;

/** How often a command that found the index locked is tried again (VS Code's own git refreshes take the lock briefly). */
const LOCK_RETRIES = 5;
const LOCK_RETRY_MS = 200;

/** Runs `git args…` in `cwd`; anything but exit 0 (or an `okCodes` code) is a GitError with git's own words. */
export async function runGit(args: readonly string[], options: GitRunOptions): Promise<GitResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await runOnce(args, options);
    } catch (err) {
      // git takes the lock before it changes anything: trying again is safe.
      if (!(err instanceof GitError) || !/index\.lock': File exists/.test(err.stderr) || attempt >= LOCK_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
    }
  }
}

function runOnce(args: readonly string[], options: GitRunOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: options.cwd,
      env: {
        ...process.env,
        // Nothing may wait for a password typed into a terminal nobody sees.
        GIT_TERMINAL_PROMPT: '0',
        // git's messages are parsed in a few places (missing prerequisites): keep them in English.
        LC_ALL: 'C',
        LANGUAGE: 'C',
      },
      stdio: 'pipe',
      windowsHide: true,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    let failure: string | null = null;
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const timer = setTimeout(() => {
      failure = 'timed out';
      child.kill('SIGKILL');
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        failure = 'produced too much output';
        child.kill('SIGKILL');
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 32_768) stderr += chunk.toString('utf8');
    });
    child.stdin.on('error', () => {}); // git may exit without reading its input
    child.stdin.end(options.input ?? '');
    child.on('error', (err) => {
      clearTimeout(timer);
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new GitError(missing ? 'git is not installed or not on the PATH' : `git could not run: ${err.message}`, args, null, ''));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const exit = code ?? -1;
      if (failure) {
        reject(new GitError(`git ${args[0]} ${failure}`, args, code, stderr));
      } else if (exit === 0 || options.okCodes?.includes(exit)) {
        resolve({ code: exit, stdout: Buffer.concat(chunks), stderr });
      } else {
        reject(new GitError(`git ${args[0]} failed: ${gitSays(stderr) || `exit code ${exit}`}`, args, code, stderr));
      }
    });
  });
}

/** git's own explanation: its error/fatal lines (hints dropped), or its last lines. */
export function gitSays(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() && !l.startsWith('hint:'));
  const errors = lines.filter((l) => /^(error|fatal):/.test(l));
  return (errors.length ? errors : lines.slice(-3))
    .map((l) => l.replace(/^(error|fatal):\s*/, '').trim())
    .join(' ')
    .slice(0, 1000);
}
