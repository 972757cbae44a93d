import { mkdir } from 'node:fs/promises';
import type { PreparationStepModule } from '../types';

/** Creates the sandbox the agent will run in (a container, or the local workspace). */
export const sandbox: PreparationStepModule = {
  name: 'sandbox',
  describe: (run) => (run.warm ? 'taking over the warm sandbox' : `starting a ${run.ctx.provider.name} sandbox`),
  timeoutMs: (c) => c.timeouts.sandboxMs,
  async run(run, signal) {
    const { ctx, session } = run;
    if (run.warm && run.sandbox) {
      return { message: `warm sandbox claimed (ready ${((ctx.clock() - run.warm.readyAt) / 1000).toFixed(0)} s before this start)` };
    }
    await mkdir(run.sharedDir, { recursive: true });
    const started = Date.now();
    const created = await ctx.provider.create({
      sessionId: session.id,
      workspaceDir: run.workspaceDir,
      sharedDir: run.sharedDir,
      repoUrl: session.repoUrl,
      configPath: session.devcontainer ?? null,
      secrets: run.secrets.setup,
      signal,
      onProgress: (message, detail) => run.progress(message, detail === undefined ? undefined : ctx.redactor.redact(detail)),
      onLog: (line) => run.log(ctx.redactor.redact(line)),
    });
    run.sandbox = created;
    if (!run.forPool) await ctx.store.updateSession(session.id, { sandbox: created.ref });
    // Shown with the step in the chat, not only in the log.
    const notices = created.notices?.length ? `; ${created.notices.join('; ')}` : '';
    return { message: `${ctx.provider.name} sandbox up in ${((Date.now() - started) / 1000).toFixed(1)} s${notices}` };
  },
};
