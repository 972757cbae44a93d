import { checkBranchName } from '../../git/repoUrl';
import { git } from '../../git/git';
import { BerthError, errorMessage } from '../../util/errors';
import type { PreparationStepModule, PreparationRun } from '../types';

function workBranch(run: PreparationRun): string {
  return run.session.repoBranch ?? `berth/${run.session.id.slice(4, 16)}`;
}

/** Checks out the requested branch (tracking the remote one when it exists) or creates it. */
export const branch: PreparationStepModule = {
  name: 'branch',
  describe: (run) => `checking out ${workBranch(run)}`,
  timeoutMs: (c) => c.timeouts.branchMs,
  skip: (run) => (run.workspaceKept ? 'workspace kept from the earlier sandbox' : null),
  async run(run, signal) {
    const name = workBranch(run);
    const invalid = checkBranchName(name);
    if (invalid) throw new BerthError('invalid_branch', invalid);
    const opts = { cwd: run.workspaceDir, timeoutMs: run.ctx.config.timeouts.branchMs, signal };
    const remote = await git(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${name}`], opts);
    const exists = remote.exitCode === 0;
    const args = exists ? ['switch', '-C', name, '--track', `origin/${name}`] : ['switch', '-c', name];
    const result = await git(args, opts);
    if (result.exitCode !== 0) {
      throw new BerthError('branch_failed', `could not check out ${name}: ${result.output.lastLines(3).join('\n')}`);
    }
    // Still the server's own clone (no sandbox or setup command has run in it): the moment to take
    // the base commit, or to put back the newest checkpoint of a session resumed on a fresh clone.
    try {
      if ((await run.ctx.checkpoints.prepareWorkspace(run.session, run.workspaceDir, name)) === 'restored') {
        return { message: `on ${name}, your changes restored` };
      }
    } catch (err) {
      throw new BerthError('branch_failed', `could not ${run.session.baseSha ? 'restore the changes' : 'record the base commit'}: ${run.ctx.redactor.redact(errorMessage(err))}`);
    }
    return { message: exists ? `on ${name}` : `created ${name}` };
  },
};
