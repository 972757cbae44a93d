import { runProcess, type RunResult } from '../util/process';
import type { RepoTransport } from './repoUrl';

export interface GitRunOptions {
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** Extra environment (the host-process tags that let a restart find a git left running). */
  env?: Record<string, string>;
}

/** Environment for git: never prompt, never read the user's config for credentials or hooks. */
function gitEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'true',
    SSH_ASKPASS: 'true',
    GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o ConnectTimeout=15',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_PROTOCOL_FROM_USER: '0',
    GIT_AUTHOR_NAME: 'Berth',
    GIT_AUTHOR_EMAIL: 'berth@localhost',
    GIT_COMMITTER_NAME: 'Berth',
    GIT_COMMITTER_EMAIL: 'berth@localhost',
  };
}

export function git(args: string[], options: GitRunOptions): Promise<RunResult> {
  return runProcess('git', args, { ...options, env: { ...gitEnv(), ...options.env } });
}

/** `-c` flags allowing exactly one transport; everything else (ext, fd, …) stays forbidden. */
export function transportConfig(transport: RepoTransport): string[] {
  return [
    '-c', 'protocol.allow=never',
    '-c', `protocol.${transport}.allow=always`,
    // A remote that stalls mid-transfer (http) is dropped rather than waited on forever.
    '-c', 'http.lowSpeedLimit=1000',
    '-c', 'http.lowSpeedTime=30',
    '-c', 'core.hooksPath=/dev/null',
  ];
}
