import { isAbsolute } from 'node:path';

export type RepoTransport = 'https' | 'http' | 'ssh' | 'git' | 'file';

/** What a server allows besides https, ssh and git. */
export interface RepoUrlPolicy {
  allowLocal: boolean;
  /** Plain http (tests, private networks): credentials would cross the network unencrypted. */
  allowHttp?: boolean;
}

export type RepoUrlCheck = { ok: true; transport: RepoTransport; url: string } | { ok: false; reason: string };

// scp-like ssh syntax: user@host:path (no scheme, no "::").
const SCP_LIKE = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!:)[^\s]+$/;

/**
 * Decides whether a repository URL may be handed to git. Only https, ssh and git transports are
 * allowed (local paths and file:// only when the server allows local repos): this blocks option
 * injection (`--upload-pack=…`) and transports that run commands (`ext::`, `fd::`).
 */
/** The URL policy of a server's configuration. */
export function repoPolicy(config: { allowLocalRepos: boolean; allowHttp: boolean }): RepoUrlPolicy {
  return { allowLocal: config.allowLocalRepos, allowHttp: config.allowHttp };
}

export function checkRepoUrl(raw: string, policy: RepoUrlPolicy | boolean): RepoUrlCheck {
  const { allowLocal, allowHttp = false } = typeof policy === 'boolean' ? { allowLocal: policy } : policy;
  const url = raw.trim();
  if (url.length === 0) return { ok: false, reason: 'the repository URL is empty' };
  if (url.startsWith('-')) return { ok: false, reason: 'a repository URL cannot start with "-"' };
  if (/[\s\x00-\x1f\x7f]/.test(url)) return { ok: false, reason: 'the repository URL contains spaces or control characters' };
  if (url.includes('::')) return { ok: false, reason: 'git remote helper transports ("…::…") are not allowed' };

  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme) {
    switch (scheme) {
      case 'https':
        return { ok: true, transport: 'https', url };
      case 'http':
        return allowHttp
          ? { ok: true, transport: 'http', url }
          : { ok: false, reason: 'plain http:// repositories are disabled on this server (use https://, or start it with --allow-http)' };
      case 'ssh':
      case 'git+ssh':
        return { ok: true, transport: 'ssh', url };
      case 'git':
        return { ok: true, transport: 'git', url };
      case 'file':
        return allowLocal
          ? { ok: true, transport: 'file', url }
          : { ok: false, reason: 'local repositories are disabled on this server (start it with --allow-local-repos)' };
      default:
        return { ok: false, reason: `the "${scheme}" transport is not allowed; use https, ssh or git` };
    }
  }
  if (SCP_LIKE.test(url)) return { ok: true, transport: 'ssh', url };
  if (isAbsolute(url)) {
    return allowLocal
      ? { ok: true, transport: 'file', url }
      : { ok: false, reason: 'local repositories are disabled on this server (start it with --allow-local-repos)' };
  }
  return { ok: false, reason: 'not a repository URL: use https://…, ssh://…, git://… or user@host:path' };
}

/** A branch name that git accepts and that cannot be read as an option. */
export function checkBranchName(name: string): string | null {
  if (name.startsWith('-')) return 'a branch name cannot start with "-"';
  if (name.length > 255) return 'the branch name is too long';
  // The rules of git-check-ref-format, for a branch.
  if (
    /[\x00-\x20\x7f~^:?*[\\]/.test(name) ||
    name.includes('..') ||
    name.includes('@{') ||
    name === '@' ||
    name.startsWith('/') ||
    name.endsWith('/') ||
    name.endsWith('.') ||
    name.includes('//') ||
    name.split('/').some((part) => part.startsWith('.') || part.endsWith('.lock'))
  ) {
    return `"${name}" is not a valid branch name`;
  }
  return null;
}
