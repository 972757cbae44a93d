import { runProcess } from '../../util/process';
import { BerthError } from '../../util/errors';
import { sandboxEnv } from '../../sandbox/env';
import { hostProcessTags } from '../../sandbox/hostProcesses';
import type { PreparationRun, PreparationStepModule } from '../types';

const ERROR_TAIL_LINES = 20;

function shorten(command: string, max = 60): string {
  const oneLine = command.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/** Runs one setup command where the provider says setup belongs: in the sandbox, or on the host workspace. */
function runSetupCommand(run: PreparationRun, command: string, signal: AbortSignal, onLine: (line: string) => void) {
  const { ctx } = run;
  const timeoutMs = ctx.config.timeouts.setupCommandMs;
  if (ctx.provider.setupInsideSandbox) {
    const sandbox = run.sandbox;
    if (!sandbox) throw new BerthError('internal', 'setup needs the sandbox, but none is running');
    return runProcess('/bin/sh', ['-c', command], {
      timeoutMs,
      signal,
      onLine,
      spawner: (cmd, args) => sandbox.spawn(cmd, args, { env: run.secrets.setup }),
    });
  }
  return runProcess('/bin/sh', ['-c', command], {
    cwd: run.workspaceDir,
    // Tagged like sandbox processes, so a crash of the server cannot leave them running unseen.
    env: sandboxEnv({ ...run.secrets.setup, ...hostProcessTags(ctx.config.instanceTag, run.session.id) }),
    timeoutMs,
    signal,
    onLine,
  });
}

/** Runs the session's setup commands in order; the first failure stops the run with its output. */
export const setup: PreparationStepModule = {
  name: 'setup',
  describe: (run) =>
    run.session.setup.length === 0 ? 'no setup commands' : `running ${run.session.setup.length} setup command(s)`,
  // Each command has its own timeout; the step as a whole gets all of them.
  timeoutMs: (c) => c.timeouts.setupCommandMs * 32 + 1000,
  skip: (run) => {
    if (run.session.setup.length === 0) return 'no setup commands';
    if (run.warm) return 'already ran in the warm sandbox';
    if (run.workspaceKept && !run.ctx.provider.setupInsideSandbox) return 'already ran in the kept workspace';
    return null;
  },
  async run(run, signal) {
    const { ctx, session } = run;
    const started = Date.now();
    for (const [index, command] of session.setup.entries()) {
      const label = `running "${shorten(command)}" (${index + 1}/${session.setup.length})`;
      run.progress(label);
      run.log(`$ ${ctx.redactor.redact(command)}`);
      const result = await runSetupCommand(run, command, signal, (line) => {
        const clean = ctx.redactor.redact(line);
        run.log(clean);
        run.progress(label, clean.slice(0, 300));
      });
      if (result.aborted) throw new BerthError('aborted', 'cancelled');
      const tail = ctx.redactor.redact(result.output.lastLines(ERROR_TAIL_LINES).join('\n'));
      const withOutput = tail ? `\n${tail}` : '';
      if (result.timedOut) {
        throw new BerthError(
          'setup_timeout',
          `setup command "${shorten(command)}" did not finish within ${Math.round(ctx.config.timeouts.setupCommandMs / 1000)} s${withOutput}`,
        );
      }
      if (result.spawnError) throw new BerthError('setup_failed', `setup command could not start: ${result.spawnError.message}`);
      if (result.exitCode !== 0) {
        const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
        throw new BerthError('setup_failed', `setup command "${shorten(command)}" ${how}${withOutput}`);
      }
    }
    return { message: `${session.setup.length} command(s) in ${((Date.now() - started) / 1000).toFixed(1)} s` };
  },
};
