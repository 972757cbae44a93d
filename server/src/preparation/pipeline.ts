import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ErrorInfo, PreparationStep } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { JobRecord, SessionRecord } from '../store/store';
import { BerthError, errorMessage } from '../util/errors';
import type { GoLive, PreparationRun, PreparationStepModule } from './types';
import { diskCheck } from './steps/diskCheck';
import { clone } from './steps/clone';
import { branch } from './steps/branch';
import { setup } from './steps/setup';
import { sandbox } from './steps/sandbox';
import { agentStart } from './steps/agentStart';
import { sessionImport } from './steps/sessionImport';
import { initiate } from './steps/initiate';
import { newTurnId } from '../util/ids';
import { cancelReasonOf, endsQuietly } from './cancellation';

export interface PreparationOutcome {
  result: 'ready' | 'failed' | 'cancelled';
  /** Why it failed (the synchronous start answers with it, even after the session was deleted). */
  error?: ErrorInfo;
}

/** The steps in order. Setup runs where the provider says: after the sandbox when it runs inside it. */
export function stepOrder(setupInsideSandbox: boolean): PreparationStepModule[] {
  const middle = setupInsideSandbox ? [sandbox, setup] : [setup, sandbox];
  return [diskCheck, clone, branch, ...middle, agentStart, sessionImport, initiate];
}

function openSessionLog(path: string): WriteStream {
  mkdirSync(dirname(path), { recursive: true });
  return createWriteStream(path, { flags: 'a', mode: 0o600 });
}

/**
 * Runs one preparation (first start, retry or resume) to `ready` or `failed`, announcing each
 * step with volatile `preparing` events. Every failure path rolls back what the run created.
 */
export async function runPreparation(
  ctx: ServerContext,
  job: JobRecord,
  signal: AbortSignal,
  goLive: GoLive,
): Promise<PreparationOutcome> {
  const session = await ctx.store.getSession(job.sessionId);
  if (!session) return { result: 'cancelled' };
  const resume = job.kind === 'resume';
  const workspaceDir = ctx.paths.workspace(session.id);
  const logStream = openSessionLog(ctx.paths.sessionLog(session.id));
  logStream.on('error', (err) => ctx.logger.warn({ err, sessionId: session.id }, 'the session log could not be written'));
  const startedAt = Date.now();
  let currentStep: PreparationStep = 'disk_check';
  let stepStartedAt = startedAt;

  const run: PreparationRun = {
    ctx,
    session,
    job,
    resume,
    workspaceKept: resume && existsSync(join(workspaceDir, '.git')),
    forPool: false,
    warm: null,
    workspaceDir,
    sharedDir: ctx.paths.shared(session.id),
    sandbox: null,
    agent: null,
    runtime: null,
    goLive,
    secrets: { setup: {}, agent: {} },
    initiateTurn: initiateTurnFor(session, job),
    early: new Map(),
    // A step started early, or a process's last output, may still log after the run ended: dropped.
    log: (line) => {
      if (!logStream.writableEnded) logStream.write(`${new Date().toISOString()} ${line}\n`);
    },
    progress: (message, detail) => {
      ctx.events.broadcast(session.id, 'preparing', {
        step: currentStep,
        state: 'started',
        message,
        elapsedMs: Date.now() - stepStartedAt,
        ...(detail !== undefined ? { detail } : {}),
        ...(resume ? { resume } : {}),
      });
    },
  };

  try {
    // A job picked up again after a crash: clear what the interrupted attempt may have left.
    if (job.attempts > 1 && session.sandbox) await ctx.teardown.destroy(session.sandbox, session.id);
    if (run.initiateTurn?.first && session.initialTurnId === null) {
      await ctx.store.updateSession(session.id, { initialTurnId: run.initiateTurn.turnId });
      await ctx.events.append(session.id, 'user_message', { turnId: run.initiateTurn.turnId, text: run.initiateTurn.text });
    }
    if (!(await ctx.lifecycle.transition(session.id, 'preparing', { step: 'disk_check', error: null }))) return { result: 'cancelled' };
    // Read for each run: a secret changed since the last one applies to the next sandbox.
    run.secrets = await ctx.vault.secretsFor(session);
    run.log(`preparation ${resume ? '(resume) ' : ''}started, attempt ${job.attempts}`);

    const steps = stepOrder(ctx.provider.setupInsideSandbox);
    for (const [index, step] of steps.entries()) {
      currentStep = step.name;
      stepStartedAt = Date.now();
      if (signal.aborted) throw new BerthError('aborted', 'cancelled');
      const skipReason = step.skip?.(run) ?? null;
      if (skipReason) {
        ctx.events.broadcast(session.id, 'preparing', { step: step.name, state: 'done', message: `skipped: ${skipReason}`, elapsedMs: 0, ...(resume ? { resume } : {}) });
        continue;
      }
      await ctx.store.updateSession(session.id, { step: step.name });
      run.log(`step ${step.name} started`);
      run.progress(step.describe(run));
      startNextEarly(run, steps[index + 1], signal);
      const result = await withTimeout(step, run, signal);
      run.log(`step ${step.name} done: ${result.message}`);
      ctx.events.broadcast(session.id, 'preparing', {
        step: step.name,
        state: 'done',
        message: result.message,
        elapsedMs: Date.now() - stepStartedAt,
        ...(resume ? { resume } : {}),
      });
    }

    const settled = { lastActivityAt: new Date().toISOString() };
    if (run.runtime) await run.runtime.settleStatus(settled);
    else await ctx.lifecycle.transition(session.id, 'ready', { patch: settled });
    // Only now, after the agent accepted the prompt, may clients unlock their input.
    ctx.events.broadcast(session.id, 'preparing', {
      step: 'ready',
      state: 'done',
      message: run.initiateTurn ? 'ready: the agent is working on your prompt' : 'ready',
      elapsedMs: Date.now() - startedAt,
      ...(resume ? { resume } : {}),
    });
    run.log(`ready after ${Date.now() - startedAt} ms`);
    return { result: 'ready' };
  } catch (err) {
    const reason = cancelReasonOf(signal);
    const failure =
      reason === 'budget'
        ? new BerthError('preparation_timeout', `preparation exceeded its time budget of ${Math.round(ctx.config.preparationBudgetMs / 1000)} s`)
        : reason === 'attempts'
          ? new BerthError('preparation_interrupted', `preparation was interrupted ${job.attempts - 1} times by server restarts; giving up`)
          : err instanceof BerthError
          ? err
          : new BerthError('internal', errorMessage(err));
    run.log(`step ${currentStep} failed: ${ctx.redactor.redact(failure.message)}`);
    await rollback(ctx, run);
    if (endsQuietly(reason)) return { result: 'cancelled' };
    const error = await recordFailure(ctx, run, currentStep, failure, Date.now() - stepStartedAt);
    return { result: 'failed', error };
  } finally {
    logStream.end();
  }
}

function initiateTurnFor(session: SessionRecord, job: JobRecord): PreparationRun['initiateTurn'] {
  if (job.kind === 'resume') return job.payload.turn ? { ...job.payload.turn, first: false } : null;
  // A retry after the first prompt was accepted once must not send it again.
  if (!session.autoInitiate || !session.prompt || session.initiatedAt !== null) return null;
  return { turnId: session.initialTurnId ?? newTurnId(), text: session.prompt, first: true };
}

/** Starts the next step now when it depends on nothing the current one does (overlap). */
function startNextEarly(run: PreparationRun, next: PreparationStepModule | undefined, signal: AbortSignal): void {
  if (!next?.startsEarly?.(run) || next.skip?.(run)) return;
  run.log(`step ${next.name} started early`);
  const started = next.run(run, signal);
  started.catch(() => {}); // awaited (and reported) in its turn, or dropped by a failure before it
  run.early.set(next.name, started);
}

async function withTimeout(step: PreparationStepModule, run: PreparationRun, signal: AbortSignal) {
  const ms = step.timeoutMs(run.ctx.config);
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), ms);
  const combined = AbortSignal.any([signal, timeout.signal]);
  try {
    return await Promise.race([
      run.early.get(step.name) ?? step.run(run, combined),
      new Promise<never>((_, reject) => {
        combined.addEventListener(
          'abort',
          () =>
            reject(
              timeout.signal.aborted && !signal.aborted
                ? new BerthError('step_timeout', `${step.name} did not finish within ${Math.round(ms / 1000)} s`)
                : new BerthError('aborted', 'cancelled'),
            ),
          { once: true },
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Undoes what the run created: agent host, sandbox, and (for a first start) the partial clone. */
async function rollback(ctx: ServerContext, run: PreparationRun): Promise<void> {
  const sessionId = run.session.id;
  if (run.runtime) await run.runtime.dispose({ checkpoint: false }).catch((err: unknown) => ctx.logger.error({ err, sessionId }, 'rollback: stopping the runtime failed'));
  else {
    run.agent?.kill();
    if (run.sandbox) await ctx.teardown.destroySandbox(run.sandbox, run.session.id);
  }
  if (!run.resume) {
    await rm(run.workspaceDir, { recursive: true, force: true }).catch(() => {});
    await ctx.checkpoints.discard(run.session.id).catch(() => {});
  }
  await rm(run.sharedDir, { recursive: true, force: true }).catch(() => {});
  // A first start that failed was never prepared: a retry must start over (clone anew, send the prompt).
  const firstStart = { preparedAt: null, baseSha: null, workBranch: null, changes: null };
  await ctx.store.updateSession(run.session.id, { sandbox: null, ...(run.resume ? {} : firstStart) }).catch(() => {});
}

/**
 * Marks the session failed with a persisted error, or (a synchronous start, whose caller gets the
 * error in its response) deletes it, but only if it holds no events (`onlyIfEmpty`).
 */
async function recordFailure(
  ctx: ServerContext,
  run: PreparationRun,
  step: PreparationStep,
  failure: BerthError,
  elapsedMs: number,
): Promise<ErrorInfo> {
  const id = run.session.id;
  const message = ctx.redactor.redact(failure.message);
  const error = { code: failure.code, message, step };
  if (run.job.payload.mode === 'sync' && (await ctx.store.deleteSessionIfEmpty(id))) {
    ctx.events.broadcast(id, 'preparing', { step: 'failed', state: 'failed', message, elapsedMs });
    return error;
  }
  const exists = await ctx.store.getSession(id);
  if (!exists) return error;
  await ctx.events.append(id, 'error', error);
  await ctx.lifecycle.transition(id, 'failed', { step: 'failed', error, patch: run.initiateTurn?.first ? { initiatedAt: null } : {} });
  ctx.events.broadcast(id, 'preparing', { step: 'failed', state: 'failed', message: `${step}: ${message}`, elapsedMs });
  return error;
}
