import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkRepoUrl } from '../../git/repoUrl';
import { git, transportConfig } from '../../git/git';
import { BerthError } from '../../util/errors';
import { redactUrlCredentials } from '../../util/redact';
import type { PreparationStepModule } from '../types';

/** Clones the repository into the session's workspace (a fresh clone on every first run). */
export const clone: PreparationStepModule = {
  name: 'clone',
  describe: (run) => `cloning ${redactUrlCredentials(run.session.repoUrl)}`,
  timeoutMs: (c) => c.timeouts.cloneMs,
  skip: (run) => (run.workspaceKept ? 'workspace kept from the earlier sandbox' : null),
  async run(run, signal) {
    const { ctx, session, workspaceDir } = run;
    const check = checkRepoUrl(session.repoUrl, ctx.config.allowLocalRepos);
    if (!check.ok) throw new BerthError('invalid_repo', check.reason);
    await rm(workspaceDir, { recursive: true, force: true });
    await mkdir(dirname(workspaceDir), { recursive: true });
    const started = Date.now();
    const result = await git(
      [...transportConfig(check.transport), 'clone', '--progress', '--no-recurse-submodules', '--', check.url, workspaceDir],
      {
        timeoutMs: ctx.config.timeouts.cloneMs,
        signal,
        onLine: (line) => {
          const clean = ctx.redactor.redact(line);
          run.log(`git: ${clean}`);
          // git reports progress with carriage returns; the last fragment is the current state.
          const latest = clean.split('\r').filter(Boolean).pop();
          if (latest) run.progress(`cloning ${redactUrlCredentials(session.repoUrl)}`, latest.trim());
        },
      },
    );
    if (result.timedOut) {
      throw new BerthError('clone_timeout', `the clone did not finish within ${Math.round(ctx.config.timeouts.cloneMs / 1000)} s (is the remote reachable?)`);
    }
    if (result.aborted) throw new BerthError('aborted', 'cancelled');
    if (result.exitCode !== 0 || !existsSync(join(workspaceDir, '.git'))) {
      const why = ctx.redactor.redact(result.output.lastLines(3).join('\n')) || result.spawnError?.message || 'unknown error';
      throw new BerthError('clone_failed', `git clone failed: ${why}`);
    }
    return { message: `cloned in ${((Date.now() - started) / 1000).toFixed(1)} s` };
  },
};
