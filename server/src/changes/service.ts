// The use cases behind the changes routes: what changed, the diff, a file at a checkpoint, the
// bundle, and the push. All of them read the server's checkpoints, never the live sandbox, so
// they work the same while the session sleeps and on any instance.
import type { PipedChild } from '../util/launcher';
import type { ChangesResponse, PushResponse } from '@berth/protocol';
import type { ServerContext } from '../context';
import { remoteAccess } from '../git/git';
import { checkBranchName, checkRepoUrl, repoPolicy } from '../git/repoUrl';
import { hostProcessTags } from '../sandbox/hostProcesses';
import type { CheckpointRecord, SessionRecord } from '../store/store';
import { ApiError } from '@berth/protocol';
import { redactUrlCredentials } from '@berth/protocol';
import type { CheckpointRepo } from './checkpointRepo';
import { workBranchOf } from './checkpoints';
import { compareUrl } from './compareUrl';
import { totals } from './diffStat';
import { runHostGit } from './hostGit';

/** Looks a session up for its owner (another user's is 404). */
export interface SessionLookup {
  owned(owner: string, id: string): Promise<SessionRecord>;
}

interface Work {
  session: SessionRecord;
  repo: CheckpointRepo;
  checkpoints: CheckpointRecord[];
  base: string;
  head: string;
  branch: string;
}

export class ChangesService {
  constructor(
    private readonly ctx: ServerContext,
    private readonly sessions: SessionLookup,
  ) {}

  private async work(owner: string, id: string): Promise<Work> {
    const session = await this.sessions.owned(owner, id);
    if (!session.baseSha) throw new ApiError(409, 'not_ready', 'the session has not been cloned yet: it has no changes');
    const { repo, checkpoints } = await this.ctx.checkpoints.readable(session);
    const base = session.baseSha;
    return { session, repo, checkpoints, base, head: checkpoints.at(-1)?.sha ?? base, branch: workBranchOf(session) };
  }

  /** A commit a client names must be the session's own: its base or one of its checkpoints. */
  private known(work: Work, sha: string | undefined, fallback: string, field: string): string {
    if (sha === undefined) return fallback;
    if (sha === work.base || work.checkpoints.some((c) => c.sha === sha)) return sha;
    throw new ApiError(404, 'not_found', `${field}: not a commit of this session`, { field });
  }

  async changes(owner: string, id: string, query: { from?: string; to?: string }): Promise<ChangesResponse> {
    const work = await this.work(owner, id);
    const from = this.known(work, query.from, work.base, 'from');
    const to = this.known(work, query.to, work.head, 'to');
    const files = await work.repo.changedFiles(from, to);
    return {
      base: work.base,
      head: work.head,
      branch: work.branch,
      from,
      to,
      files,
      ...totals(files),
      checkpoints: work.checkpoints.map((c) => ({
        sha: c.sha,
        turnId: c.turnId,
        createdAt: c.createdAt,
        files: c.files,
        additions: c.additions,
        deletions: c.deletions,
      })),
    };
  }

  async diff(owner: string, id: string, query: { from?: string; to?: string; path?: string }): Promise<PipedChild> {
    const work = await this.work(owner, id);
    const from = this.known(work, query.from, work.base, 'from');
    const to = this.known(work, query.to, work.head, 'to');
    return work.repo.spawnDiff(from, to, query.path);
  }

  async content(owner: string, id: string, query: { ref: string; path: string }): Promise<PipedChild> {
    const work = await this.work(owner, id);
    const ref = this.known(work, query.ref, work.head, 'ref');
    const blob = await work.repo.blobAt(ref, query.path);
    if (!blob) throw new ApiError(404, 'not_found', `${query.path} is not a file at ${ref.slice(0, 12)}`);
    return work.repo.spawnBlob(blob);
  }

  async bundle(owner: string, id: string): Promise<{ stream: PipedChild; head: string; branch: string }> {
    const work = await this.work(owner, id);
    if (work.head === work.base) throw new ApiError(409, 'conflict', 'the session has no changes yet');
    return { stream: work.repo.spawnBundle(work.branch, work.base), head: work.head, branch: work.branch };
  }

  /** Pushes the newest checkpoint to the session's origin, fast-forward only (never a force push). */
  async push(owner: string, id: string, requested: string | undefined): Promise<PushResponse> {
    const work = await this.work(owner, id);
    if (work.head === work.base) throw new ApiError(409, 'conflict', 'nothing to push: the session has no changes yet');
    const branch = requested ?? work.branch;
    const invalid = checkBranchName(branch);
    if (invalid) throw new ApiError(400, 'bad_request', invalid, { field: 'branch' });
    const remote = checkRepoUrl(work.session.repoUrl, repoPolicy(this.ctx.config));
    if (!remote.ok) throw new ApiError(409, 'conflict', remote.reason);
    // The owner's credential (or the one the start's URL carried), through the helper only.
    const access = remoteAccess(remote.transport, await this.ctx.vault.gitCredential(work.session));
    const result = await runHostGit([...access.args, 'push', '--porcelain', '--no-verify', '--', remote.url, `${work.head}:refs/heads/${branch}`], {
      gitDir: work.repo.gitDir,
      timeoutMs: this.ctx.config.timeouts.cloneMs,
      env: { ...hostProcessTags(this.ctx.config.instanceTag, id), GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o ConnectTimeout=15', ...access.env },
    });
    const shown = redactUrlCredentials(remote.url);
    if (result.code !== 0) {
      const report = this.ctx.redactor.redact(`${result.stdout.toString('utf8')}\n${result.stderr}`);
      const rejected = /^!\t.*\[(?:remote )?rejected\]\s*(.*)$/m.exec(report);
      if (rejected) {
        const why = rejected[1]?.replace(/^\(|\)$/g, '') || 'rejected';
        throw new ApiError(409, 'push_rejected', `the remote rejected the push to ${branch}: ${why}`, { branch });
      }
      const why = result.timedOut ? 'the push timed out' : lastLines(report, 3) || `git exited with ${result.code}`;
      throw new ApiError(502, 'push_failed', `the push to ${shown} failed: ${why}`, { branch });
    }
    const pushed = { branch, head: work.head, at: new Date().toISOString() };
    await this.ctx.store.updateSession(id, { pushed });
    // A pull request targets the branch the session started from, when the start named one.
    const base = work.session.repoBranch && work.session.repoBranch !== branch ? work.session.repoBranch : undefined;
    const url = compareUrl(remote.url, branch, base);
    return { remote: shown, branch, head: work.head, ...(url ? { compareUrl: url } : {}) };
  }
}

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'Done' && !l.startsWith('To '))
    .slice(-n)
    .join(' | ');
}
