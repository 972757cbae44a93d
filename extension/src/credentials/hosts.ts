// Which host a git credential is for, from what the user has at hand: the workspace's remote, a
// pasted repository URL, or a typed `host[:port]`. No vscode import: tested in plain node.
import { CredentialHost } from '@berth/protocol';

/** The user name the server sends when none is given (GitHub, Gitea and most token logins accept any). */
export const DEFAULT_USERNAME = 'x-access-token';
export const GITHUB_HOST = 'github.com';

/**
 * The credential host of an http(s) remote (`github.com`, `git.example.com:8443`), in lower case and
 * without a default port; null for ssh, scp-like and local remotes, which a credential does not serve.
 */
export function credentialHostFromRemote(remote: string): string | null {
  const url = parseUrl(remote.trim());
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  const host = url.host.toLowerCase();
  return CredentialHost.safeParse(host).success ? host : null;
}

/**
 * What the user typed into the host box, as a host: `GitHub.com` → `github.com`; a pasted URL
 * (`https://github.com/acme/app.git`, `git@github.com:acme/app.git`) or `host/path` → its host.
 */
export function normalizeHostInput(text: string): string {
  const value = text.trim();
  if (!value) return '';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    const url = parseUrl(value);
    return url ? url.host.toLowerCase() : value.toLowerCase();
  }
  const scp = /^[^@/\s]+@([^:/\s]+):(?!\d+(\/|$))/.exec(value);
  if (scp) return scp[1]!.toLowerCase();
  return value.replace(/\/.*$/, '').toLowerCase();
}

/** A remote without its user name and password, as a secret's repository scope may be shown and sent. */
export function repoUrlWithoutCredentials(remote: string): string {
  const value = remote.trim();
  const url = parseUrl(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || (!url.username && !url.password)) return value;
  url.username = '';
  url.password = '';
  return url.toString();
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/** What kind of token a host takes, for the token box's prompt. */
export function tokenHint(host: string): string {
  if (host === GITHUB_HOST) return 'a fine-grained personal access token with Contents read and write, or a classic one with the repo scope';
  if (host === 'gitlab.com' || host.startsWith('gitlab.')) return 'a personal access token with read_repository and write_repository';
  if (host === 'bitbucket.org') return 'an app password (with your user name) or an access token (with x-token-auth)';
  return 'a personal access token or password';
}
