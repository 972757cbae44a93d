import { BerthError } from '../../util/errors';
import type { PreparationStepModule } from '../types';

/**
 * Sends the first prompt (or the message that woke a reaped session) and waits until the agent
 * has really started the turn. Only then is the session initiated: `initiatedAt` is set here and
 * nowhere else, so a failure can never leave it looking initiated.
 */
export const initiate: PreparationStepModule = {
  name: 'initiate',
  describe: (run) => (run.initiateTurn?.first ? 'sending your first prompt' : 'sending your message'),
  timeoutMs: (c) => c.timeouts.initiateMs,
  skip: (run) => (run.initiateTurn ? null : 'no prompt to send'),
  async run(run, signal) {
    const { ctx, session } = run;
    const turn = run.initiateTurn;
    const runtime = run.runtime;
    if (!turn || !runtime) throw new BerthError('internal', 'nothing to initiate');
    runtime.beginTurn(turn.turnId, turn.text);
    try {
      await runtime.agent.startTurn(turn.turnId, turn.text, ctx.config.timeouts.initiateMs, signal);
    } catch (err) {
      runtime.abandonTurn(turn.turnId);
      throw err instanceof BerthError
        ? new BerthError(err.code === 'aborted' ? 'aborted' : 'initiate_failed', `the agent did not accept the prompt: ${err.message}`)
        : err;
    }
    const now = new Date().toISOString();
    // The status is left to the pipeline's last write (runtime.settleStatus), which is ordered with
    // the turn's own: this turn may already be complete.
    await ctx.store.updateSession(session.id, {
      ...(turn.first ? { initiatedAt: now } : {}),
      lastActivityAt: now,
    });
    return { message: 'the agent accepted the prompt' };
  },
};
