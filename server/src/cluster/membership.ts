import type { ServerContext } from '../context';
import { settleOrphan } from './orphans';

/**
 * This instance's place among those sharing one database: a heartbeat row that proves it is
 * alive, a janitor that adopts what a dead instance left (its sessions, its addressed jobs), and
 * a sweep that stops local sandboxes of sessions deleted through another instance.
 * An instance is dead once its heartbeat is older than one job lease.
 */
export class Membership {
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(private readonly ctx: ServerContext) {}

  get id(): string {
    return this.ctx.config.instanceTag;
  }

  async start(): Promise<void> {
    await this.ctx.store.heartbeat(this.id, await this.ctx.sharedClock());
    this.timer = setInterval(() => void this.tick(), Math.max(200, Math.floor(this.ctx.config.jobLeaseMs / 3)));
  }

  /** Whether `instance` (another one) is alive now. */
  async alive(instance: string): Promise<boolean> {
    if (instance === this.id) return true;
    return this.ctx.store.instanceAlive(instance, (await this.ctx.sharedClock()) - this.ctx.config.jobLeaseMs);
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    const { store, sharedClock, config, logger } = this.ctx;
    try {
      if (!(await store.heartbeat(this.id, await sharedClock()))) await this.fence();
      await this.stopDeleted();
      for (const dead of await store.takeDeadInstances((await sharedClock()) - config.jobLeaseMs)) {
        if (dead === this.id) continue;
        const sessions = await store.sessionsOn(dead, ['ready', 'running', 'preparing']);
        logger.warn({ instance: dead, sessions: sessions.length }, 'an instance stopped; adopting its sessions');
        for (const session of sessions) {
          // Only reaches a sandbox on this host (same machine, same Docker); elsewhere it fails harmlessly.
          if (session.sandbox) await this.ctx.teardown.destroy(session.sandbox, session.id);
          await settleOrphan(this.ctx, session, 'instance_lost');
        }
        // After the sessions are settled: a message addressed there now resumes anywhere.
        await store.freeJobsOf(dead);
      }
    } catch (err) {
      logger.warn({ err }, 'cluster heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * This instance was declared dead while it stalled (a pause longer than a lease): whatever it
   * runs was adopted elsewhere. Its runtimes stop before anything else is done for them.
   */
  private async fence(): Promise<void> {
    const runtimes = this.ctx.runtimes.all();
    if (runtimes.length) this.ctx.logger.warn({ runtimes: runtimes.length }, 'this instance was taken for dead: stopping its sandboxes');
    await Promise.all(runtimes.map((r) => r.stopFenced()));
  }

  /** A session deleted through another instance: its sandbox here has nobody left to serve. */
  private async stopDeleted(): Promise<void> {
    for (const runtime of this.ctx.runtimes.all()) {
      if (await this.ctx.store.getSession(runtime.sessionId)) continue;
      this.ctx.logger.info({ sessionId: runtime.sessionId }, 'session deleted elsewhere: stopping its sandbox');
      const sessionId = runtime.sessionId;
      await runtime.dispose({ checkpoint: false }).catch((err: unknown) => this.ctx.logger.error({ err, sessionId }, 'stopping a deleted session failed'));
      await this.ctx.checkpoints.discard(sessionId).catch((err: unknown) => this.ctx.logger.error({ err, sessionId }, 'removing a deleted session\'s checkpoints failed'));
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
