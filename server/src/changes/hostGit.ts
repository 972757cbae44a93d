// git on the host, against repositories and work trees a sandbox may have written. Nothing the
// sandbox wrote is obeyed: no system, global or repository config of theirs is read (the git dir
// is always the server's own), no hook runs, no attribute-driven filter or diff driver exists,
// and the work tree's own `.git` is never the repository.
import { launch, type PipedChild } from '../util/launcher';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killGroup, runProcess } from '../util/process';

/** An empty, private home: git finds no `~/.gitconfig`, no `$XDG_CONFIG_HOME/git/*` there. */
const EMPTY_HOME = join(tmpdir(), `berth-git-home-${process.getuid?.() ?? 'u'}`);

/**
 * Settings that override anything a repository could carry (they win over every config file).
 * The server's own repositories carry none of these, but the flags make that independent of them.
 */
export const HARDENING_CONFIG: readonly string[] = [
  'core.fsmonitor=false',
  'core.hooksPath=/dev/null',
  'core.untrackedCache=false',
  'core.autocrlf=false',
  'core.safecrlf=false',
  'core.symlinks=true',
  'core.quotePath=false',
  'core.attributesFile=/dev/null',
  'core.pager=cat',
  'diff.noprefix=false',
  'diff.mnemonicPrefix=false',
  'diff.renames=true',
  'gc.auto=0',
  'maintenance.auto=false',
  'protocol.allow=never',
  'protocol.file.allow=always',
  'advice.detachedHead=false',
].flatMap((c) => ['-c', c]);

export interface HostGitOptions {
  /** The server-owned repository (never a sandbox's `.git`). */
  gitDir: string;
  /** A work tree to read (a sandbox's workspace); none for bare operations. */
  workTree?: string;
  /** The index to use with `workTree` (the server's own file). */
  indexFile?: string;
  input?: Buffer | string;
  timeoutMs?: number;
  /** Stdout beyond this is an error (a runaway output never fills memory). */
  maxOutputBytes?: number;
  /** Extra environment (e.g. the process tags that let a restart find a git left running). */
  env?: Record<string, string>;
}

export interface HostGitResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
  /** Stdout was cut at `maxOutputBytes`. */
  truncated: boolean;
}

export class HostGitError extends Error {
  constructor(
    message: string,
    readonly result: HostGitResult,
  ) {
    super(message);
    this.name = 'HostGitError';
  }
}

function hostGitEnv(options: HostGitOptions): NodeJS.ProcessEnv {
  mkdirSync(EMPTY_HOME, { recursive: true, mode: 0o700 });
  return {
    PATH: process.env.PATH,
    LANG: 'C',
    LC_ALL: 'C',
    HOME: EMPTY_HOME,
    XDG_CONFIG_HOME: EMPTY_HOME,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'true',
    SSH_ASKPASS: 'true',
    GIT_PROTOCOL_FROM_USER: '0',
    GIT_AUTHOR_NAME: 'Berth',
    GIT_AUTHOR_EMAIL: 'berth@localhost',
    GIT_COMMITTER_NAME: 'Berth',
    GIT_COMMITTER_EMAIL: 'berth@localhost',
    GIT_DIR: options.gitDir,
    ...(options.workTree ? { GIT_WORK_TREE: options.workTree } : {}),
    ...(options.indexFile ? { GIT_INDEX_FILE: options.indexFile } : {}),
    ...options.env,
  };
}

/** Starts git with the hardened environment; the caller reads its streams (large outputs). */
export function spawnHostGit(args: string[], options: HostGitOptions): PipedChild {
  const child = launch('git', [...HARDENING_CONFIG, ...args], {
    cwd: options.workTree ?? options.gitDir,
    env: hostGitEnv(options),
    detached: true,
  });
  child.stdin.on('error', () => {}); // git may exit without reading its input
  if (options.input !== undefined) child.stdin.end(options.input);
  else child.stdin.end();
  if (options.timeoutMs) {
    const timer = setTimeout(() => killGroup(child), options.timeoutMs);
    child.once('close', () => clearTimeout(timer));
  }
  return child;
}

/** Runs git to completion and collects its output. */
export async function runHostGit(args: string[], options: HostGitOptions): Promise<HostGitResult> {
  let stderr = '';
  const result = await runProcess('git', [...HARDENING_CONFIG, ...args], {
    cwd: options.workTree ?? options.gitDir,
    env: hostGitEnv(options),
    input: options.input ?? '',
    timeoutMs: options.timeoutMs ?? 60_000,
    collectStdout: options.maxOutputBytes ?? 64 * 1024 * 1024,
    onText: (text, stream) => {
      if (stream === 'stderr' && stderr.length < 16_384) stderr += text;
    },
  });
  if (result.spawnError) stderr += result.spawnError.message;
  return { code: result.exitCode, stdout: result.stdout, stderr, timedOut: result.timedOut, truncated: result.stdoutTruncated };
}

/** Runs git and returns its stdout; anything but exit 0 is a HostGitError naming the command. */
export async function hostGit(args: string[], options: HostGitOptions): Promise<Buffer> {
  const result = await runHostGit(args, options);
  if (result.code !== 0 || result.timedOut || result.truncated) {
    const why = result.timedOut
      ? 'timed out'
      : result.truncated
        ? 'produced too much output'
        : result.stderr.trim().split('\n').slice(-2).join(' | ') || `exit ${result.code}`;
    throw new HostGitError(`git ${args[0]} failed: ${why}`, result);
  }
  return result.stdout;
}

/** `hostGit`, as trimmed text. */
export async function hostGitText(args: string[], options: HostGitOptions): Promise<string> {
  return (await hostGit(args, options)).toString('utf8').trim();
}
