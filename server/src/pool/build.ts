// Builds one warm sandbox with the same steps a start runs (clone, sandbox, setup, agent start),
// for no session and no user: no credential, no secret, nothing recorded in the store.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WarmPoolSpec } from '../config';
import type { ServerContext } from '../context';
import type { AgentConnection } from '../agent/connection';
import { git } from '../git/git';
import type { Sandbox } from '../sandbox/provider';
import { newSessionRecord, type SessionRecord } from '../store/store';
import { BerthError } from '../util/errors';
import type { PreparationRun, PreparationStepModule } from '../preparation/types';
import { clone } from '../preparation/steps/clone';
import { sandbox as sandboxStep } from '../preparation/steps/sandbox';
import { setup } from '../preparation/steps/setup';
import { agentStart } from '../preparation/steps/agentStart';

export interface WarmSandbox {
  /** `pool_…`: names its container, processes and folders until a start claims it. */
  readonly id: string;
  readonly key: string;
  readonly spec: WarmPoolSpec;
  /** The commit its clone (and everything setup made) is at. */
  readonly headSha: string;
  readonly workspaceDir: string;
  readonly sharedDir: string;
  readonly sandbox: Sandbox;
  readonly agent: AgentConnection;
  readonly readyAt: number;
  /** Where its agent host's log lines go from now on (the claiming session's log). */
  logTo(sink: (line: string) => void): void;
}

export function poolDirs(poolRoot: string, id: string): { workspaceDir: string; sharedDir: string } {
  return { workspaceDir: join(poolRoot, id, 'workspace'), sharedDir: join(poolRoot, id, 'shared') };
}

/** A session record for the steps to read: the pool's repository, owned by nobody. */
function ownerless(id: string, spec: WarmPoolSpec, now: string): SessionRecord {
  return newSessionRecord(
    { id, owner: '', repoUrl: spec.repo, repoBranch: spec.branch, prompt: null, setup: spec.setup, autoInitiate: false, step: null, devcontainer: spec.devcontainer, model: null },
    now,
  );
}

/** Puts the clone on the spec's branch (setup runs on what a claiming start will work on). */
async function checkoutSpecBranch(run: PreparationRun, spec: WarmPoolSpec, signal: AbortSignal): Promise<string> {
  const opts = { cwd: run.workspaceDir, timeoutMs: run.ctx.config.timeouts.branchMs, signal };
  if (spec.branch) {
    const switched = await git(['switch', '--detach', `origin/${spec.branch}`], opts);
    if (switched.exitCode !== 0) throw new BerthError('branch_failed', `the pool's branch ${spec.branch} is not on the remote`);
  }
  const head = await git(['rev-parse', 'HEAD'], opts);
  if (head.exitCode !== 0) throw new BerthError('branch_failed', 'the pool clone has no commit');
  return head.output.lastLines(1)[0]?.trim() ?? '';
}

/**
 * Runs the steps for a pool sandbox. On failure everything it made is gone (sandbox, agent host,
 * folders) and the error is thrown.
 */
export async function buildWarmSandbox(
  ctx: ServerContext,
  spec: WarmPoolSpec,
  key: string,
  id: string,
  dirs: { workspaceDir: string; sharedDir: string },
  signal: AbortSignal,
): Promise<WarmSandbox> {
  let sink: (line: string) => void = (line) => ctx.logger.debug({ poolId: id, line }, 'warm pool sandbox');
  const run: PreparationRun = {
    ctx,
    session: ownerless(id, spec, new Date(ctx.clock()).toISOString()),
    job: { id: -1, sessionId: id, kind: 'prepare', payload: { mode: 'async' }, state: 'running', attempts: 1, runAt: 0, leaseOwner: null, leaseUntil: null, createdAt: 0, target: null },
    resume: false,
    workspaceKept: false,
    forPool: true,
    warm: null,
    ...dirs,
    sandbox: null,
    agent: null,
    runtime: null,
    goLive: () => {
      throw new BerthError('internal', 'a pool sandbox has no session to go live');
    },
    secrets: { setup: {}, agent: {} },
    initiateTurn: null,
    early: new Map(),
    log: (line) => sink(line),
    progress: () => {},
  };
  const step = async (module: PreparationStepModule) => {
    if (signal.aborted) throw new BerthError('aborted', 'cancelled');
    if (module.skip?.(run)) return;
    await module.run(run, signal);
  };
  try {
    await step(clone);
    const headSha = await checkoutSpecBranch(run, spec, signal);
    const inside = ctx.provider.setupInsideSandbox;
    if (!inside) await step(setup);
    await step(sandboxStep);
    if (inside) await step(setup);
    await step(agentStart);
    const { sandbox, agent } = run;
    if (!sandbox || !agent) throw new BerthError('internal', 'the pool build ended without a sandbox and agent host');
    return {
      id,
      key,
      spec,
      headSha,
      ...dirs,
      sandbox,
      agent,
      readyAt: ctx.clock(),
      logTo: (next) => {
        sink = next;
      },
    };
  } catch (err) {
    run.agent?.kill();
    if (run.sandbox) await ctx.teardown.destroySandbox(run.sandbox, null);
    await rm(join(dirs.workspaceDir, '..'), { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}
