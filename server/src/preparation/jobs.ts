import { randomBytes } from 'node:crypto';
import type { ServerContext } from '../context';
import type { JobRecord } from '../store/store';
import type { PreparationOutcome } from './pipeline';
import { cancel, cancelReasonOf, type CancelReason } from './cancellation';

export type JobHandler = (job: JobRecord, signal: AbortSignal) => Promise<PreparationOutcome>;

interface Running {
  job: JobRecord;
  controller: AbortController;
  startedAt: number;
  done: Promise<void>;
}

/** Lease owners of one instance share this prefix, so that a restart releases only its own leases. */
export function jobOwnerPrefix(config: { instanceTag: string }): string {
  return `runner_${config.instanceTag}:`;
}

/**
 * Runs durable preparation jobs: the job table plays the part of the seed's Durable Object alarm.
 * A job is claimed under a lease that is renewed while it runs; a job whose process died is
 * claimed again once its lease has expired (at once after a single-node restart). At most
 * `maxConcurrentPreparations` run at a time; the others wait in order and are told their place.
 */
export class JobRunner {
  readonly owner: string;
  private readonly running = new Map<number, Running>();
  private readonly waiters = new Map<number, ((outcome: PreparationOutcome) => void)[]>();
  private pollTimer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private pumping = false;
  private pumpAgain = false;
  /** Slots taken by background work (the warm pool's builds). */
  private reserved = 0;

  constructor(
    private readonly ctx: ServerContext,
    private readonly handler: JobHandler,
  ) {
    this.owner = jobOwnerPrefix(ctx.config) + randomBytes(6).toString('hex');
  }

  start(): void {
    const { jobPollMs, jobLeaseMs } = this.ctx.config;
    this.pollTimer = setInterval(() => this.nudge(), jobPollMs);
    this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(250, Math.floor(jobLeaseMs / 3)));
    this.nudge();
  }

  /** Looks for due jobs now (after an enqueue, a finish, or on the poll interval). */
  nudge(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.nudge();
      }
    });
  }

  private async pump(): Promise<void> {
    const { store, config, logger } = this.ctx;
    try {
      while (!this.stopped && this.running.size + this.reserved < config.maxConcurrentPreparations) {
        const job = await store.claimJob(this.owner, await this.ctx.sharedClock(), config.jobLeaseMs, config.instanceTag);
        if (!job) break;
        this.launch(job);
      }
      await this.announceQueue();
    } catch (err) {
      logger.error({ err }, 'claiming jobs failed');
    }
  }

  private launch(job: JobRecord): void {
    const { store, config, logger } = this.ctx;
    const controller = new AbortController();
    const entry: Running = { job, controller, startedAt: this.ctx.clock(), done: Promise.resolve() };
    this.running.set(job.id, entry);
    entry.done = (async () => {
      let outcome: PreparationOutcome = { result: 'failed' };
      try {
        if (job.attempts > config.maxJobAttempts) {
          // Interrupted by crashes again and again: stop trying, fail and roll back.
          cancel(controller, 'attempts');
        }
        // Whoever runs a session's job hosts its sandbox: messages for it are addressed here.
        await store.updateSession(job.sessionId, { instance: config.instanceTag });
        outcome = await this.handler(job, controller.signal);
      } catch (err) {
        logger.error({ err, jobId: job.id, sessionId: job.sessionId }, 'preparation job crashed');
      } finally {
        this.running.delete(job.id);
      }
      const reason = cancelReasonOf(controller.signal);
      try {
        if (reason === 'shutdown') {
          // Picked up again by the next start; the clock is read now, not when the job began.
          await store.reschedule(job.id, await this.ctx.sharedClock());
        } else if (reason !== 'lease_lost' && reason !== 'deleted') {
          await store.finishJob(job.id, outcome.result === 'ready' ? 'done' : 'failed');
        }
      } catch (err) {
        logger.error({ err, jobId: job.id }, 'recording the job outcome failed');
      }
      for (const resolve of this.waiters.get(job.id) ?? []) resolve(outcome);
      this.waiters.delete(job.id);
      this.nudge();
    })();
  }

  /**
   * Tells waiting sessions watched here their place in the queue ("queued: 3 ahead"). Every
   * instance sees the shared queue and tells its own clients: nothing crosses instances.
   */
  private async announceQueue(): Promise<void> {
    if (this.running.size < this.ctx.config.maxConcurrentPreparations) return;
    if (this.ctx.bus.watchedSessions().length === 0) return; // nobody here to tell: spare the query
    const queued = await this.ctx.store.queuedSessions(await this.ctx.sharedClock());
    queued.forEach((sessionId, ahead) => {
      if (this.ctx.bus.subscriberCount(sessionId) === 0) return;
      this.ctx.events.broadcast(
        sessionId,
        'preparing',
        { step: 'queued', state: 'started', message: `queued: ${ahead + this.running.size} ahead`, elapsedMs: 0 },
        'here',
      );
    });
  }

  private async renewLeases(): Promise<void> {
    const { store, config } = this.ctx;
    for (const entry of this.running.values()) {
      // The lease runs from the moment of renewal: the clock is read here, never captured earlier.
      const ok = await this.ctx
        .sharedClock()
        .then((now) => store.renewLease(entry.job.id, this.owner, now + config.jobLeaseMs))
        .catch(() => false);
      if (!ok) cancel(entry.controller, 'lease_lost');
    }
  }

  /**
   * A slot for background work (a warm pool build) if one is free, keeping one for starts; the
   * returned function gives it back.
   */
  reserveBackgroundSlot(): (() => void) | null {
    const max = this.ctx.config.maxConcurrentPreparations;
    if (this.stopped || this.running.size + this.reserved >= max || this.reserved >= Math.max(1, max - 1)) return null;
    this.reserved++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.reserved--;
      this.nudge();
    };
  }

  /** Resolves when the job finishes (the synchronous start path waits on this). */
  waitFor(jobId: number): Promise<PreparationOutcome> {
    return new Promise((resolve) => {
      const list = this.waiters.get(jobId) ?? [];
      list.push(resolve);
      this.waiters.set(jobId, list);
    });
  }

  /** Stops a session's running job; resolves once it has rolled back. */
  async cancelSession(sessionId: string, reason: CancelReason): Promise<void> {
    const entries = [...this.running.values()].filter((e) => e.job.sessionId === sessionId);
    for (const e of entries) cancel(e.controller, reason);
    await Promise.all(entries.map((e) => e.done));
  }

  /** Jobs running longer than the preparation budget (the reaper fails them). */
  overBudget(now: number): { sessionId: string; cancel(): void }[] {
    return [...this.running.values()]
      .filter((e) => now - e.startedAt > this.ctx.config.preparationBudgetMs)
      .map((e) => ({ sessionId: e.job.sessionId, cancel: () => cancel(e.controller, 'budget') }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.renewTimer) clearInterval(this.renewTimer);
    const entries = [...this.running.values()];
    for (const e of entries) cancel(e.controller, 'shutdown');
    await Promise.all(entries.map((e) => e.done));
  }
}
