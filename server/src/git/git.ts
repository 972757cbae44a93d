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

/** A credential for git on the host: given to a credential helper, never in a URL, argv or file. */
export interface GitCredential {
  username: string;
  token: string;
}

/**
 * How a git command reaches a remote: exactly its transport, and for http(s) the credential
 * through a helper that reads it from the git process's environment (any helper from a config is
 * dropped first, so nothing stores it).
 */
export function remoteAccess(transport: RepoTransport, credential: GitCredential | null): { args: string[]; env: Record<string, string> } {
  const useCredential = credential && (transport === 'https' || transport === 'http');
  return {
    args: [
      ...transportConfig(transport),
      '-c', 'credential.helper=',
      ...(useCredential
        ? ['-c', 'credential.helper=!f() { test "$1" = get && printf \'username=%s\\npassword=%s\\n\' "$BERTH_GIT_USERNAME" "$BERTH_GIT_PASSWORD"; }; f']
        : []),
    ],
    env: useCredential ? { BERTH_GIT_USERNAME: credential.username, BERTH_GIT_PASSWORD: credential.token } : {},
  };
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
