// Whether two remote URLs name the same repository: `git@github.com:acme/app.git`,
// `https://user@github.com/acme/app` and `ssh://git@github.com/acme/app.git/` all do.
import { resolve } from 'node:path';

/** A comparable form: `host/path` in lower case for hosted remotes, the resolved path for local ones. */
export function normalizeRepoUrl(raw: string): string {
  let url = raw.trim().replace(/\/+$/, '').replace(/\.git$/i, '').replace(/\/+$/, '');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (scheme) {
    if (scheme[1]!.toLowerCase() === 'file') return resolve(decodeURIComponent(url.slice('file://'.length)));
    try {
      const parsed = new URL(url);
      return `${parsed.hostname.toLowerCase()}${decodeURIComponent(parsed.pathname).replace(/\/+$/, '').toLowerCase()}`;
    } catch {
      return url.toLowerCase();
    }
  }
  // scp-like: [user@]host:path
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/\/)(.+)$/.exec(url);
  if (scp && !/^[a-z]:[\\/]/i.test(url)) return `${scp[1]!.toLowerCase()}/${scp[2]!.replace(/^\/+/, '').toLowerCase()}`;
  url = resolve(url);
  return url;
}

export function sameRepository(a: string, b: string): boolean {
  return normalizeRepoUrl(a) === normalizeRepoUrl(b);
}
