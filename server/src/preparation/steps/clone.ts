import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkRepoUrl, repoPolicy, type RepoUrlCheck } from '../../git/repoUrl';
import { git, remoteAccess, type GitCredential } from '../../git/git';
import { MirrorError, mirrorDir, updateMirror, withMirrorLock } from '../../git/mirror';
import { hostProcessTags } from '../../sandbox/hostProcesses';
import { BerthError, errorMessage } from '../../util/errors';
import { redactUrlCredentials } from '@berth/protocol';
import type { PreparationRun, PreparationStepModule } from '../types';

type Remote = Extract<RepoUrlCheck, { ok: true }>;

// The step's own timer gets a little slack, so that git's timeout (with its clearer message) fires first.
const STEP_SLACK_MS = 2_000;

function timeoutError(ms: number): BerthError {
  return new BerthError('clone_timeout', `the clone did not finish within ${Math.round(ms / 1000)} s (is the remote reachable?)`);
}

/** git's progress (carriage-return fragments) as live step progress, every line in the session log. */
function gitProgress(run: PreparationRun, message: string): (line: string) => void {
  return (line) => {
    const clean = run.ctx.redactor.redact(line);
    run.log(`git: ${clean}`);
    const latest = clean.split('\r').filter(Boolean).pop();
    if (latest) run.progress(message, latest.trim());
  };
}

/** Tagged like sandbox processes: a git left running by a killed server is killed on restart. */
const gitTags = (run: PreparationRun) => hostProcessTags(run.ctx.config.instanceTag, run.session.id);

/** One `git clone` into the workspace, optionally borrowing objects from the mirror (then dissociating). */
async function cloneOnce(run: PreparationRun, remote: Remote, credential: GitCredential | null, reference: string | null, deadline: number, signal: AbortSignal): Promise<void> {
  const { ctx, workspaceDir } = run;
  // A run cancelled while it waited for the mirror lock must not clone after its rollback.
  if (signal.aborted) throw new BerthError('aborted', 'cancelled');
  await rm(workspaceDir, { recursive: true, force: true });
  await mkdir(dirname(workspaceDir), { recursive: true });
  // --dissociate: the clone copies what it borrowed, since the mirror is not mounted in containers.
  const borrow = reference ? ['--reference', reference, '--dissociate'] : [];
  // The remote is asked with this user's credential even when objects come from the mirror.
  const access = remoteAccess(remote.transport, credential);
  const result = await git(
    [...access.args, 'clone', '--progress', '--no-recurse-submodules', ...borrow, '--', remote.url, workspaceDir],
    {
      timeoutMs: Math.max(1, deadline - Date.now()),
      signal,
      onLine: gitProgress(run, `cloning ${redactUrlCredentials(run.session.repoUrl)}`),
      env: { ...gitTags(run), ...access.env },
    },
  );
  if (result.timedOut) throw timeoutError(ctx.config.timeouts.cloneMs);
  if (result.aborted) throw new BerthError('aborted', 'cancelled');
  if (result.exitCode !== 0 || !existsSync(join(workspaceDir, '.git'))) {
    // git's own reason, without its progress chatter or the server's paths (the workspace).
    const reason = result.output
      .lastLines(6)
      .filter((l) => !/^(Cloning into|remote: (Enumerating|Counting|Compressing|Total))/.test(l))
      .slice(-3)
      .map((l) => l.split(workspaceDir).join('the workspace'));
    const why = ctx.redactor.redact(reason.join('\n')) || result.spawnError?.message || 'unknown error';
    throw new BerthError('clone_failed', `git clone failed: ${why}`);
  }
}

/**
 * Brings the repo's mirror up to date and clones with it as reference. Any trouble with the mirror
 * (but a stalled remote, which a plain clone would meet too) falls back to a plain clone and says
 * why in the log; when that plain clone works, the mirror was at fault and is removed, so that the
 * next start rebuilds it.
 */
async function cloneViaMirror(run: PreparationRun, remote: Remote, credential: GitCredential | null, deadline: number, signal: AbortSignal): Promise<'mirror' | 'plain'> {
  const { ctx } = run;
  const dir = mirrorDir(ctx.config.dataDir, remote.url);
  const fallback = async (why: string): Promise<'plain'> => {
    run.log(`mirror not used, plain clone instead: ${ctx.redactor.redact(why)}`);
    await cloneOnce(run, remote, credential, null, deadline, signal);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    return 'plain';
  };
  return withMirrorLock(dir, async () => {
    try {
      run.progress(`updating the local mirror of ${redactUrlCredentials(run.session.repoUrl)}`);
      const how = await updateMirror({
        dir,
        url: remote.url,
        transport: remote.transport,
        timeoutMs: Math.max(1, deadline - Date.now()),
        signal,
        onLine: gitProgress(run, `updating the local mirror of ${redactUrlCredentials(run.session.repoUrl)}`),
        env: gitTags(run),
        credential,
      });
      run.log(`mirror ${how}`);
    } catch (err) {
      if (err instanceof MirrorError && err.kind === 'timeout') throw timeoutError(ctx.config.timeouts.cloneMs);
      if (signal.aborted || (err instanceof MirrorError && err.kind === 'aborted')) throw new BerthError('aborted', 'cancelled');
      return fallback(errorMessage(err));
    }
    try {
      await cloneOnce(run, remote, credential, dir, deadline, signal);
      return 'mirror';
    } catch (err) {
      if (!(err instanceof BerthError) || err.code !== 'clone_failed') throw err;
      // The remote answered the fetch a moment ago: a failing clone points at the mirror.
      return fallback(err.message);
    }
  });
}

/** Clones the repository into the session's workspace (a fresh clone on every first run). */
export const clone: PreparationStepModule = {
  name: 'clone',
  describe: (run) =>
    run.ctx.warmPool?.serves({ ...run.session, devcontainer: run.session.devcontainer ?? null })
      ? `claiming a warm sandbox for ${redactUrlCredentials(run.session.repoUrl)}`
      : `cloning ${redactUrlCredentials(run.session.repoUrl)}`,
  timeoutMs: (c) => c.timeouts.cloneMs + STEP_SLACK_MS,
  skip: (run) => (run.workspaceKept ? 'workspace kept from the earlier sandbox' : null),
  async run(run, signal) {
    const { ctx, session } = run;
    const check = checkRepoUrl(session.repoUrl, repoPolicy(ctx.config));
    if (!check.ok) throw new BerthError('invalid_repo', check.reason);
    const started = Date.now();
    const credential = await ctx.vault.gitCredential(session);
    const claimed = await ctx.warmPool?.claim(run, check, credential, signal);
    if (claimed) return { message: claimed };
    const how = await cloneViaMirror(run, check, credential, started + ctx.config.timeouts.cloneMs, signal);
    return { message: `cloned in ${((Date.now() - started) / 1000).toFixed(1)} s${how === 'mirror' ? ' (local mirror)' : ''}` };
  },
};
