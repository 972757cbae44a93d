// The warm pool: per configured repository, N sandboxes built ahead of any start (cloned, container
// up, setup run, agent host started), owned by nobody until a matching start claims one. Each
// instance keeps its own; a claim happens in the job that runs the start, so no two starts get one.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WarmPoolSpec } from '../config';
import type { ServerContext } from '../context';
import type { GitCredential } from '../git/git';
import type { RepoUrlCheck } from '../git/repoUrl';
import type { PreparationRun } from '../preparation/types';
import { errorMessage } from '../util/errors';
import { buildWarmSandbox, poolDirs, type WarmSandbox } from './build';
import { claimInto, StaleWarmSandbox } from './claim';
import { poolKey, specMatch, type WarmMatch } from './spec';

/** Takes one preparation slot if one is free (so the pool stays within `--max-preparations`). */
export type SlotReserver = () => (() => void) | null;

const TICK_MS = 1_000;
const MAX_BACKOFF_MS = 5 * 60_000;

export interface WarmPoolStatus {
  repo: string;
  branch: string | null;
  size: number;
  ready: number;
  building: number;
}

interface PoolState {
  spec: WarmPoolSpec;
  ready: WarmSandbox[];
  building: Set<AbortController>;
  failures: number;
  retryAt: number;
}

export class WarmPool {
  private readonly pools = new Map<string, PoolState>();
  private readonly builds = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly ctx: ServerContext,
    specs: readonly WarmPoolSpec[],
    private readonly reserveSlot: SlotReserver,
  ) {
    for (const spec of specs) {
      const key = poolKey(specMatch(spec));
      const same = this.pools.get(key);
      if (same) same.spec = { ...same.spec, size: same.spec.size + spec.size };
      else this.pools.set(key, { spec, ready: [], building: new Set(), failures: 0, retryAt: 0 });
    }
  }

  get size(): number {
    return this.pools.size;
  }

  /** Starts filling; what an earlier process left in the pool folder is gone (its containers were removed as orphans). */
  async start(): Promise<void> {
    await rm(this.ctx.paths.pool, { recursive: true, force: true });
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  /** Whether a start like this one may be served from the pool (for the step's description). */
  serves(match: WarmMatch): boolean {
    return (this.pools.get(poolKey(match))?.ready.length ?? 0) > 0;
  }

  /**
   * Claims a warm sandbox for the run if one matches it exactly and still is current; returns the
   * step's message, or null for the cold path (the reason is in the session's log, never an error).
   */
  async claim(run: PreparationRun, remote: Extract<RepoUrlCheck, { ok: true }>, credential: GitCredential | null, signal: AbortSignal): Promise<string | null> {
    const { session } = run;
    if (run.resume || run.forPool) return null;
    const key = poolKey({ repoUrl: session.repoUrl, repoBranch: session.repoBranch, setup: session.setup, devcontainer: session.devcontainer ?? null });
    const pool = this.pools.get(key);
    if (!pool) return null;
    if (Object.keys(run.secrets.setup).length > 0) {
      run.log('warm sandbox not used: the owner has secrets for this repository, which a pool sandbox is built without');
      return null;
    }
    const entry = pool.ready.shift();
    if (!entry) {
      run.log('warm pool empty for this repository: cold start');
      return null;
    }
    this.tick(); // refill while this start goes on
    try {
      await claimInto(run, entry, remote, credential, signal);
    } catch (err) {
      const why = this.ctx.redactor.redact(errorMessage(err));
      run.log(`warm sandbox ${entry.id} not used (${why}): cold start`);
      this.ctx.logger.info({ poolId: entry.id, sessionId: session.id, why }, 'warm pool: claim failed, the start goes the cold way');
      run.sandbox = null;
      run.agent = null;
      run.warm = null;
      if (err instanceof StaleWarmSandbox) {
        for (const stale of pool.ready.filter((e) => e.headSha === entry.headSha)) {
          pool.ready.splice(pool.ready.indexOf(stale), 1);
          void this.discard(stale);
        }
      }
      await this.discard(entry);
      this.tick();
      return null;
    }
    const waited = Math.round((this.ctx.clock() - entry.readyAt) / 1000);
    this.ctx.logger.info({ poolId: entry.id, sessionId: session.id, readyForS: waited }, 'warm pool: sandbox claimed');
    run.log(`warm sandbox ${entry.id} claimed (ready for ${waited} s)`);
    return `warm sandbox claimed at ${entry.headSha.slice(0, 7)}, the branch's latest commit`;
  }

  status(): WarmPoolStatus[] {
    return [...this.pools.values()].map((p) => ({
      repo: p.spec.repo,
      branch: p.spec.branch,
      size: p.spec.size,
      ready: p.ready.length,
      building: p.building.size,
    }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const pool of this.pools.values()) for (const build of pool.building) build.abort();
    await Promise.all(this.builds);
    await Promise.all([...this.pools.values()].flatMap((p) => p.ready.splice(0).map((e) => this.discard(e))));
  }

  /** Replaces sandboxes that waited longer than an idle session would, and fills what is missing. */
  private tick(): void {
    if (this.stopped) return;
    const now = this.ctx.clock();
    for (const [key, pool] of this.pools) {
      for (const old of pool.ready.filter((e) => now - e.readyAt > this.ctx.config.idleTimeoutMs || !e.agent.alive)) {
        pool.ready.splice(pool.ready.indexOf(old), 1);
        this.ctx.logger.info({ poolId: old.id }, 'warm pool: sandbox retired (idle too long, or its agent host ended)');
        void this.discard(old);
      }
      while (pool.ready.length + pool.building.size < pool.spec.size && now >= pool.retryAt) {
        const release = this.reserveSlot();
        if (!release) return; // every slot busy: the next tick tries again
        this.build(key, pool, release);
      }
    }
  }

  private build(key: string, pool: PoolState, release: () => void): void {
    const id = `pool_${randomBytes(9).toString('hex')}`;
    const controller = new AbortController();
    pool.building.add(controller);
    const startedAt = this.ctx.clock();
    const done = buildWarmSandbox(this.ctx, pool.spec, key, id, poolDirs(this.ctx.paths.pool, id), controller.signal)
      .then((entry) => {
        if (this.stopped || controller.signal.aborted) return this.discard(entry);
        pool.failures = 0;
        pool.ready.push(entry);
        entry.agent.onExit(() => this.tick());
        this.ctx.logger.info({ poolId: id, repo: pool.spec.repo, branch: pool.spec.branch, ms: this.ctx.clock() - startedAt }, 'warm pool: sandbox ready');
      })
      .catch((err: unknown) => {
        if (this.stopped) return;
        pool.failures++;
        const backoffMs = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** pool.failures);
        pool.retryAt = this.ctx.clock() + backoffMs;
        this.ctx.logger.warn({ repo: pool.spec.repo, err: this.ctx.redactor.redact(errorMessage(err)), retryInMs: backoffMs }, 'warm pool: building a sandbox failed');
      })
      .finally(() => {
        pool.building.delete(controller);
        this.builds.delete(done);
        release();
      });
    this.builds.add(done);
  }

  private async discard(entry: WarmSandbox): Promise<void> {
    entry.agent.kill();
    await this.ctx.teardown.destroySandbox(entry.sandbox, null);
    await rm(join(entry.workspaceDir, '..'), { recursive: true, force: true }).catch(() => {});
  }
}
