// The session's work, kept by the server: the base commit, a checkpoint after every turn that
// changed the work tree (and before a sandbox stops), and everything read from them. The store
// holds each checkpoint's bundle, so any instance can rebuild the chain; the local repository
// under DATA_DIR/checkpoints is a copy of it.
import { existsSync } from 'node:fs';
import type { ChangedFile, ChangesData, ChangesSummary } from '@berth/protocol';
import type { ServerContext } from '../context';
import { checkRepoUrl, repoPolicy } from '../git/repoUrl';
import { remoteAccess } from '../git/git';
import { hostProcessTags } from '../sandbox/hostProcesses';
import { FencedError, type CheckpointRecord, type SessionRecord } from '../store/store';
import { BerthError, errorMessage } from '../util/errors';
import { CheckpointRepo } from './checkpointRepo';
import { totals } from './diffStat';

/** The first line of a commit message: the prompt's first line, shortened. */
const SUBJECT_LENGTH = 72;

export interface RecordRequest {
  reason: ChangesData['reason'];
  turnId: string | null;
  /** The turn's prompt, for the commit message. */
  prompt?: string;
  /** The instance that must still hold the session (a runtime's checkpoint: see FencedError). */
  fence?: string;
}

export function commitMessage(sessionId: string, request: RecordRequest): string {
  const firstLine = request.prompt?.split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
  const subject =
    request.reason === 'stop' || !firstLine
      ? 'Berth: the work tree when the sandbox stopped'
      : firstLine.length > SUBJECT_LENGTH
        ? `${firstLine.slice(0, SUBJECT_LENGTH - 1)}…`
        : firstLine;
  const trailers = [`Berth-Session: ${sessionId}`, ...(request.turnId ? [`Berth-Turn: ${request.turnId}`] : [])];
  return `${subject}\n\n${trailers.join('\n')}\n`;
}

/** The summary the view shows before any checkpoint: nothing changed yet. */
export function emptyChanges(base: string, branch: string): NonNullable<SessionRecord['changes']> {
  return { base, head: base, branch, files: [], additions: 0, deletions: 0 };
}

export class Checkpoints {
  /** One operation at a time per session: snapshots and rebuilds share the repository and its index. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly ctx: Pick<ServerContext, 'config' | 'paths' | 'store' | 'events' | 'logger' | 'redactor' | 'vault'>) {}

  repo(sessionId: string): CheckpointRepo {
    return new CheckpointRepo(this.ctx.paths.checkpoints(sessionId));
  }

  private exclusive<T>(sessionId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(sessionId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(sessionId, tail);
    void tail.then(() => {
      if (this.locks.get(sessionId) === tail) this.locks.delete(sessionId);
    });
    return run;
  }

  /**
   * The branch step, on a clone the server just made (no sandbox has touched it yet): a first start
   * records its base; a session that already has one (a resume on a fresh clone: another instance,
   * a lost workspace) gets its work tree back at the newest checkpoint.
   */
  async prepareWorkspace(session: SessionRecord, workspaceDir: string, branch: string): Promise<'captured' | 'restored'> {
    return this.exclusive(session.id, async () => {
      const repo = this.repo(session.id);
      if (!session.baseSha) {
        const base = await repo.captureBase(workspaceDir, branch);
        await this.ctx.store.updateSession(session.id, { baseSha: base, workBranch: branch, changes: emptyChanges(base, branch) });
        return 'captured';
      }
      const checkpoints = await this.ctx.store.listCheckpoints(session.id);
      await this.sync(session, repo, checkpoints);
      await repo.restoreInto(workspaceDir, workBranchOf(session), session.baseSha, checkpoints.at(-1)?.sha ?? session.baseSha);
      return 'restored';
    });
  }

  /** Forgets the base of a first start that failed (its clone is removed; a retry clones anew). */
  async discard(sessionId: string): Promise<void> {
    await this.exclusive(sessionId, () => this.repo(sessionId).remove());
  }

  /**
   * Records a checkpoint of the session's work tree, if it changed since the last one, and appends
   * the `changes` event. Returns its data, or null when nothing changed (or there is nothing to
   * record yet). Never throws: a failure is logged and reported as a persisted `error`.
   */
  async record(sessionId: string, request: RecordRequest): Promise<ChangesData | null> {
    try {
      return await this.exclusive(sessionId, () => this.recordNow(sessionId, request));
    } catch (err) {
      if (err instanceof FencedError) throw err; // the caller stops what it runs, writes nothing
      const message = this.ctx.redactor.redact(errorMessage(err));
      this.ctx.logger.error({ sessionId, err: message }, 'checkpoint failed');
      await this.ctx.events
        .append(sessionId, 'error', {
          code: 'checkpoint_failed',
          message: `the changes of this turn could not be recorded: ${message}`,
          ...(request.turnId ? { turnId: request.turnId } : {}),
        })
        .catch(() => {});
      return null;
    }
  }

  private async recordNow(sessionId: string, request: RecordRequest): Promise<ChangesData | null> {
    const session = await this.ctx.store.getSession(sessionId);
    const workspace = this.ctx.paths.workspace(sessionId);
    if (!session?.baseSha || !existsSync(workspace)) return null;
    const repo = this.repo(sessionId);
    const checkpoints = await this.ctx.store.listCheckpoints(sessionId);
    await this.sync(session, repo, checkpoints);
    const branch = workBranchOf(session);
    const parent = checkpoints.at(-1)?.sha ?? session.baseSha;
    const result = await repo.snapshot({
      workTree: workspace,
      parent,
      branch,
      message: commitMessage(sessionId, request),
      maxFileBytes: this.ctx.config.checkpointMaxFileBytes,
    });
    if (result.skipped.length) this.ctx.logger.info({ sessionId, skipped: result.skipped.length }, 'checkpoint left files out');
    if (!result.sha) return null;
    const sha = result.sha;
    const [files, cumulative, bundle] = await Promise.all([
      repo.changedFiles(parent, sha),
      repo.changedFiles(session.baseSha, sha),
      repo.bundle(branch, parent),
    ]);
    const checkpoint: CheckpointRecord = {
      sessionId,
      seq: checkpoints.length + 1,
      sha,
      parent,
      turnId: request.turnId,
      reason: request.reason,
      createdAt: new Date().toISOString(),
      files: files.length,
      ...totals(files),
    };
    const summary = { base: session.baseSha, head: sha, branch, files: cumulative, ...totals(cumulative) };
    if (!(await this.ctx.store.addCheckpoint(checkpoint, bundle, summary))) {
      throw new BerthError('conflict', 'another checkpoint of this session was recorded at the same time');
    }
    const data: ChangesData = {
      turnId: request.turnId,
      reason: request.reason,
      base: parent,
      head: sha,
      files,
      ...totals(files),
      ...(result.skipped.length ? { skipped: result.skipped } : {}),
    };
    await this.ctx.events.append(sessionId, 'changes', data, request.fence);
    return data;
  }

  /**
   * Makes the local repository hold the base and every stored checkpoint: built from the remote
   * and the stored bundles when this instance has none (or lost it), completed when another
   * instance recorded checkpoints since.
   */
  private async sync(session: SessionRecord, repo: CheckpointRepo, checkpoints: CheckpointRecord[]): Promise<void> {
    const base = session.baseSha;
    if (!base) throw new BerthError('not_ready', 'the session has no base commit yet');
    const head = checkpoints.at(-1)?.sha ?? base;
    // The usual case: this instance recorded the newest checkpoint itself (each one holds its parents).
    if (repo.exists() && (await repo.hasCommit(head))) return;
    const branch = workBranchOf(session);
    if (!repo.exists() || !(await repo.hasCommit(base))) {
      const remote = checkRepoUrl(session.repoUrl, repoPolicy(this.ctx.config));
      if (!remote.ok) throw new BerthError('invalid_repo', remote.reason);
      const access = remoteAccess(remote.transport, await this.ctx.vault.gitCredential(session));
      await repo.init(branch);
      await repo.fetchBase(remote.url, base, access.args, { ...hostProcessTags(this.ctx.config.instanceTag, session.id), ...access.env }, this.ctx.config.timeouts.cloneMs);
    }
    // Checkpoints recorded elsewhere since: from the newest one held here, add the rest in order.
    let held = checkpoints.length;
    while (held > 0 && !(await repo.hasCommit(checkpoints[held - 1]!.sha))) held--;
    for (const checkpoint of checkpoints.slice(held)) {
      const bundle = await this.ctx.store.checkpointBundle(session.id, checkpoint.seq);
      if (!bundle) throw new BerthError('internal', `checkpoint ${checkpoint.seq} has no stored bundle`);
      await repo.unbundle(bundle);
    }
    await repo.setHead(branch, head);
  }

  /** The local repository, complete, for reading (changes, diff, content, bundle, push). */
  async readable(session: SessionRecord): Promise<{ repo: CheckpointRepo; checkpoints: CheckpointRecord[] }> {
    return this.exclusive(session.id, async () => {
      const repo = this.repo(session.id);
      const checkpoints = await this.ctx.store.listCheckpoints(session.id);
      await this.sync(session, repo, checkpoints);
      return { repo, checkpoints };
    });
  }

  async changedFiles(session: SessionRecord, from: string, to: string, path?: string): Promise<ChangedFile[]> {
    const { repo } = await this.readable(session);
    return repo.changedFiles(from, to, path);
  }
}

export function workBranchOf(session: SessionRecord): string {
  return session.workBranch ?? session.repoBranch ?? `berth/${session.id.slice(4, 16)}`;
}

/** The view's `changes`: the stored summary and the last push. */
export function changesView(session: SessionRecord): ChangesSummary | null {
  if (!session.changes) return null;
  return { ...session.changes, pushed: session.pushed ?? null };
}
