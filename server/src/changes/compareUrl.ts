// The "open a pull request" page of a pushed branch, for the hosts that have a known one.

/** host and `owner/repo` path of a remote URL (https, ssh:// or scp-like), credentials dropped. */
function hostAndPath(url: string): { host: string; path: string } | null {
  const scp = /^[^@\s/]+@([^:/\s]+):(?!\/)(.+)$/.exec(url);
  if (scp) return { host: scp[1]!.toLowerCase(), path: scp[2]! };
  try {
    const parsed = new URL(url);
    if (!['https:', 'http:', 'ssh:', 'git+ssh:', 'git:'].includes(parsed.protocol)) return null;
    return { host: parsed.hostname.toLowerCase(), path: decodeURIComponent(parsed.pathname.replace(/^\/+/, '')) };
  } catch {
    return null;
  }
}

const encodeBranch = (branch: string) => branch.split('/').map(encodeURIComponent).join('/');

/**
 * GitHub, GitLab (gitlab.com or a host named gitlab.*) and Bitbucket; undefined for other hosts.
 * `base`: the branch the pull request targets (default: the repository's default branch).
 */
export function compareUrl(remoteUrl: string, branch: string, base?: string): string | undefined {
  const remote = hostAndPath(remoteUrl);
  if (!remote) return undefined;
  const path = remote.path.replace(/\.git$/, '').replace(/\/+$/, '');
  if (!/^[^/]+(\/[^/]+)+$/.test(path) || path.split('/').some((p) => p === '..' || p === '.')) return undefined;
  const repoPath = path.split('/').map(encodeURIComponent).join('/');
  if (remote.host === 'github.com') {
    return base
      ? `https://github.com/${repoPath}/compare/${encodeBranch(base)}...${encodeBranch(branch)}?expand=1`
      : `https://github.com/${repoPath}/pull/new/${encodeBranch(branch)}`;
  }
  if (remote.host === 'bitbucket.org') {
    return `https://bitbucket.org/${repoPath}/pull-requests/new?source=${encodeURIComponent(branch)}${base ? `&dest=${encodeURIComponent(base)}` : ''}`;
  }
  if (remote.host === 'gitlab.com' || remote.host.startsWith('gitlab.')) {
    const target = base ? `&merge_request%5Btarget_branch%5D=${encodeURIComponent(base)}` : '';
    return `https://${remote.host}/${repoPath}/-/merge_requests/new?merge_request%5Bsource_branch%5D=${encodeURIComponent(branch)}${target}`;
  }
  return undefined;
}
