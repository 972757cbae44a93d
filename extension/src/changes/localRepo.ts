// The user's local checkout, as far as bringing a session's work home needs it: is it the same
// repository, does it have the base commit, fetch the session's bundle, make a branch of it.
// No vscode import: tested against real git repositories in temp dirs.
import { SESSION_ID_PATTERN } from '@berth/protocol';
import { GitError, gitSays, runGit, type GitRunOptions } from './gitProcess';
import { sameRepository } from './repoUrl';

export interface Remote {
  name: string;
  url: string;
}

/** Where a session's fetched work is kept in the local repository (never a branch the user sees). */
export function sessionRef(sessionId: string): string {
  if (!SESSION_ID_PATTERN.test(sessionId)) throw new Error(`"${sessionId}" is not a session id`);
  return `refs/berth/sessions/${sessionId}`;
}

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export function short(sha: string): string {
  return sha.slice(0, 7);
}

/** The workspace lacks the commit the session started from: nothing can be applied until it is fetched. */
export class MissingBaseError extends Error {
  constructor(
    readonly base: string,
    /** The remote the user can fetch it from, when one points at the session's repository. */
    readonly remote: Remote | null,
  ) {
    super(
      `This repository does not have commit ${short(base)}, where the session started. ` +
        (remote ? `Fetch it first (git fetch ${remote.name}).` : 'Fetch the branch the session started from first.'),
    );
    this.name = 'MissingBaseError';
  }
}

export class BranchExistsError extends Error {
  constructor(
    readonly branch: string,
    /** Where the existing branch points. */
    readonly at: string,
  ) {
    super(`A branch named "${branch}" already exists (at ${short(at)}).`);
    this.name = 'BranchExistsError';
  }
}

export interface BranchResult {
  branch: string;
  head: string;
  checkedOut: boolean;
  /** Uncommitted changes that came along to the new branch (git carries them when they do not clash). */
  carried: string[];
}

export class LocalRepo {
  private constructor(readonly root: string) {}

  /** The repository containing `dir`, or null when `dir` is not in a git work tree. */
  static async open(dir: string): Promise<LocalRepo | null> {
    try {
      const top = (await runGit(['rev-parse', '--show-toplevel'], { cwd: dir })).stdout.toString('utf8').trim();
      return top ? new LocalRepo(top) : null;
    } catch {
      return null;
    }
  }

  git(args: readonly string[], options: Omit<GitRunOptions, 'cwd'> = {}) {
    return runGit(args, { ...options, cwd: this.root });
  }

  async text(args: readonly string[], options: Omit<GitRunOptions, 'cwd'> = {}): Promise<string> {
    return (await this.git(args, options)).stdout.toString('utf8').trim();
  }

  async gitDir(): Promise<string> {
    return this.text(['rev-parse', '--absolute-git-dir']);
  }

  async objectFormat(): Promise<'sha1' | 'sha256'> {
    const format = await this.text(['rev-parse', '--show-object-format']).catch(() => 'sha1');
    return format === 'sha256' ? 'sha256' : 'sha1';
  }

  async remotes(): Promise<Remote[]> {
    const out = await this.text(['remote', '-v']);
    const remotes = new Map<string, string>();
    for (const line of out.split('\n')) {
      const m = /^(\S+)\t(.+) \(fetch\)$/.exec(line);
      if (m) remotes.set(m[1]!, m[2]!);
    }
    return [...remotes].map(([name, url]) => ({ name, url }));
  }

  /** The remote pointing at `repoUrl` (origin first), if any. */
  async remoteFor(repoUrl: string): Promise<Remote | null> {
    const matching = (await this.remotes()).filter((r) => sameRepository(r.url, repoUrl));
    return matching.find((r) => r.name === 'origin') ?? matching[0] ?? null;
  }

  async hasCommit(sha: string): Promise<boolean> {
    if (!FULL_SHA.test(sha)) return false;
    try {
      await this.git(['cat-file', '-e', `${sha}^{commit}`]);
      return true;
    } catch {
      return false;
    }
  }

  async resolveRef(ref: string): Promise<string | null> {
    try {
      return await this.text(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
    } catch {
      return null;
    }
  }

  /** `git fetch <remote>`: brings a missing base commit (the user's credentials helper applies; no prompt). */
  async fetchRemote(remote: string): Promise<void> {
    const names = (await this.remotes()).map((r) => r.name);
    if (!names.includes(remote)) throw new Error(`There is no remote named "${remote}".`);
    await this.git(['fetch', '--quiet', remote], { timeoutMs: 10 * 60_000 });
  }

  /**
   * Fetches the session's bundle (one ref, `refs/heads/<branch>`, prerequisite: the base commit) into
   * `refs/berth/sessions/<id>`; checks that it holds the head the server announced.
   */
  async fetchBundle(bundleFile: string, options: { sessionId: string; branch: string; base: string; head: string }): Promise<string> {
    const target = sessionRef(options.sessionId);
    await this.checkBranchName(options.branch);
    if (!(await this.hasCommit(options.base))) throw new MissingBaseError(options.base, null);
    try {
      // `+`: a later checkpoint of the same session replaces the earlier one here.
      await this.git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', bundleFile, `+refs/heads/${options.branch}:${target}`], { timeoutMs: 10 * 60_000 });
    } catch (err) {
      if (err instanceof GitError && /lacks these prerequisite|prerequisite/i.test(err.stderr)) throw new MissingBaseError(options.base, null);
      throw err;
    }
    const fetched = await this.resolveRef(target);
    if (fetched !== options.head) {
      throw new Error(`The downloaded changes end at ${fetched ? short(fetched) : 'nothing'}, not at ${short(options.head)} as the server said. Try again.`);
    }
    return fetched;
  }

  /** Refuses names git would refuse (or read as an option), with git's own check. */
  async checkBranchName(name: string): Promise<void> {
    if (!name || name.startsWith('-')) throw new Error(`"${name}" is not a valid branch name`);
    try {
      await this.git(['check-ref-format', '--branch', name]);
    } catch {
      throw new Error(`"${name}" is not a valid branch name`);
    }
  }

  async currentBranch(): Promise<string | null> {
    const name = await this.text(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '');
    return name || null;
  }

  /** Paths with uncommitted changes (staged, unstaged or untracked). */
  async uncommitted(): Promise<string[]> {
    const out = (await this.git(['status', '--porcelain=v1', '-z', '--untracked-files=all'])).stdout.toString('utf8');
    const paths: string[] = [];
    const entries = out.split('\0');
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.length < 4) continue;
      paths.push(entry.slice(3));
      if (entry[0] === 'R' || entry[0] === 'C') i++; // the original path follows a rename
    }
    return paths;
  }

  /**
   * A local branch at `head`. With `checkout`, `git switch -c`: uncommitted changes come along when
   * they do not clash, and git refuses (changing nothing) when they do — they are never lost.
   */
  async createBranch(options: { name: string; head: string; checkout: boolean }): Promise<BranchResult> {
    const { name, head, checkout } = options;
    await this.checkBranchName(name);
    if (!FULL_SHA.test(head) || !(await this.hasCommit(head))) throw new Error(`Commit ${short(head)} is not in this repository; fetch the session's changes first.`);
    const existing = await this.resolveRef(`refs/heads/${name}`);
    if (existing) throw new BranchExistsError(name, existing);
    if (!checkout) {
      await this.git(['branch', '--no-track', name, head]);
      return { branch: name, head, checkedOut: false, carried: [] };
    }
    const before = await this.uncommitted();
    try {
      await this.git(['switch', '--no-track', '-c', name, head]);
    } catch (err) {
      if (err instanceof GitError) {
        const files = err.stderr
          .split('\n')
          .filter((l) => l.startsWith('\t'))
          .map((l) => l.trim());
        // git stopped before creating the branch; make sure, so that a retry with the same name works.
        const created = await this.resolveRef(`refs/heads/${name}`);
        if (created && (await this.currentBranch()) !== name) await this.git(['branch', '-D', name]).catch(() => {});
        throw new Error(
          files.length
            ? `git did not switch to "${name}": your uncommitted changes to ${files.join(', ')} would be overwritten. ` +
                'Nothing was changed. Commit or stash them, or apply onto the working tree instead.'
            : `git did not switch to "${name}": ${gitSays(err.stderr)}. Nothing was changed.`,
        );
      }
      throw err;
    }
    const after = new Set(await this.uncommitted());
    return { branch: name, head, checkedOut: true, carried: before.filter((p) => after.has(p)) };
  }
}
