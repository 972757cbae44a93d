import { checkBranchName } from '../../git/repoUrl';
import { git } from '../../git/git';
import { BerthError, errorMessage } from '../../util/errors';
import type { PreparationStepModule, PreparationRun } from '../types';

/** A branch of the session's own: where its checkpoints go and what it pushes by default. */
const ownBranch = (run: PreparationRun) => `berth/${run.session.id.slice(4, 16)}`;

/**
 * The branch the agent works on. A branch the start named that exists is where the work starts
 * from (and what a pull request targets), never where it is pushed: the session gets a branch of
 * its own. A named branch that does not exist yet is created and is the work branch. A session
 * already under way keeps the branch it has.
 */
async function chooseBranch(run: PreparationRun, remoteHas: (name: string) => Promise<boolean>): Promise<{ work: string; from: string | null }> {
  const { session } = run;
  if (session.workBranch) return { work: session.workBranch, from: null };
  const named = session.repoBranch;
  if (named && (await remoteHas(named))) return { work: ownBranch(run), from: named };
  return { work: named ?? ownBranch(run), from: null };
}

/** Creates the session's work branch in the clone (from the branch the start named, if it exists). */
export const branch: PreparationStepModule = {
  name: 'branch',
  describe: (run) => (run.session.repoBranch ? `creating a branch from ${run.session.repoBranch}` : `creating ${ownBranch(run)}`),
  timeoutMs: (c) => c.timeouts.branchMs,
  skip: (run) => (run.workspaceKept ? 'workspace kept from the earlier sandbox' : null),
  async run(run, signal) {
    const opts = { cwd: run.workspaceDir, timeoutMs: run.ctx.config.timeouts.branchMs, signal };
    const remoteHas = async (name: string) => (await git(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${name}`], opts)).exitCode === 0;
    const { work: name, from } = await chooseBranch(run, remoteHas);
    for (const branchName of [name, from]) {
      const invalid = branchName ? checkBranchName(branchName) : null;
      if (invalid) throw new BerthError('invalid_branch', invalid);
    }
    // -C: a fresh clone may already have a local branch of that name (the default one).
    const args = from ? ['switch', '-C', name, '--no-track', `origin/${from}`] : ['switch', '-C', name];
    const result = await git(args, opts);
    if (result.exitCode !== 0) {
      throw new BerthError('branch_failed', `could not create ${name}: ${result.output.lastLines(3).join('\n')}`);
    }
    const exists = from !== null;
    // Still the server's own clone (no sandbox or setup command has run in it): the moment to take
    // the base commit, or to put back the newest checkpoint of a session resumed on a fresh clone.
    try {
      if ((await run.ctx.checkpoints.prepareWorkspace(run.session, run.workspaceDir, name)) === 'restored') {
        return { message: `on ${name}, your changes restored` };
      }
    } catch (err) {
      throw new BerthError('branch_failed', `could not ${run.session.baseSha ? 'restore the changes' : 'record the base commit'}: ${run.ctx.redactor.redact(errorMessage(err))}`);
    }
    return { message: exists ? `created ${name} from ${from}` : `created ${name}` };
  },
};
