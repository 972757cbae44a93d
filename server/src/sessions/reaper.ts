import type { ServerContext } from '../context';
import { pruneMirrors } from '../git/mirror';
import type { JobRunner } from '../preparation/jobs';

/**
 * Periodic housekeeping: fails preparations that overrun their budget and stops sandboxes that
 * have been idle too long (their session sleeps; the next message resumes it); hourly, removes
 * repo mirrors and built dev container images nobody used for a while.
 */
const MIRROR_PRUNE_INTERVAL_MS = 3_600_000;

export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  private lastMirrorPrune = 0;

  constructor(
    private readonly ctx: ServerContext,
    private readonly jobs: JobRunner,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.ctx.config.reaperIntervalMs);
  }

  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.ctx.clock();
      for (const job of this.jobs.overBudget(now)) {
        this.ctx.logger.warn({ sessionId: job.sessionId }, 'preparation over budget: failing it');
        job.cancel();
      }
      for (const runtime of this.ctx.runtimes.all()) {
        if (runtime.turn) continue;
        if (now - runtime.lastActivity < this.ctx.config.idleTimeoutMs) continue;
        this.ctx.logger.info({ sessionId: runtime.sessionId }, 'stopping idle sandbox');
        await runtime.dispose();
        await this.ctx.lifecycle.transition(runtime.sessionId, 'sleeping', { patch: { sandbox: null } });
      }
      const destroyed = await this.ctx.teardown.retry();
      if (destroyed) this.ctx.logger.info({ destroyed }, 'destroyed sandboxes that had resisted');
      if (now - this.lastMirrorPrune >= MIRROR_PRUNE_INTERVAL_MS) {
        this.lastMirrorPrune = now;
        const removed = await pruneMirrors(this.ctx.config.dataDir, this.ctx.config.mirrorMaxAgeMs);
        if (removed.length) this.ctx.logger.info({ count: removed.length }, 'removed unused repo mirrors');
        const images = (await this.ctx.provider.pruneBuilt?.(this.ctx.config.imageMaxAgeMs)) ?? [];
        if (images.length) this.ctx.logger.info({ count: images.length }, 'removed unused dev container images');
      }
    } catch (err) {
      this.ctx.logger.error({ err }, 'reaper sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
