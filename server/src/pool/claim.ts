// Hands a warm pool sandbox to a start: checked against the remote with the owner's credential,
// then its clone and shared folder become the session's, and its sandbox (and agent host) the run's.
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { git, remoteAccess, type GitCredential } from '../git/git';
import type { RepoUrlCheck } from '../git/repoUrl';
import type { PreparationRun } from '../preparation/types';
import type { WarmSandbox } from './build';

type Remote = Extract<RepoUrlCheck, { ok: true }>;

/** The branch moved on since the pool sandbox was built: it (and its siblings) are out of date. */
export class StaleWarmSandbox extends Error {}

/** The commit the start would clone: the branch's (or the default branch's) head, read with the owner's credential. */
async function remoteHead(run: PreparationRun, remote: Remote, credential: GitCredential | null, branch: string | null, signal: AbortSignal): Promise<string> {
  const access = remoteAccess(remote.transport, credential);
  const ref = branch ? `refs/heads/${branch}` : 'HEAD';
  const result = await git([...access.args, 'ls-remote', '--', remote.url, ref], {
    timeoutMs: run.ctx.config.timeouts.cloneMs,
    signal,
    env: access.env,
  });
  const sha = /^([0-9a-f]{40,64})\s/m.exec(result.output.lastLines(20).join('\n'))?.[1];
  if (result.exitCode !== 0 || !sha) {
    const why = result.timedOut ? 'timed out' : result.output.lastLines(2).join(' ') || 'no such branch';
    throw new Error(`the repository could not be read with the owner's credentials: ${why}`);
  }
  return sha;
}

/** Whether the agent host the pool started can serve this start as it is (same model, no secrets). */
function agentFits(run: PreparationRun): boolean {
  const defaultModel = run.ctx.config.llm?.model ?? null;
  const model = run.session.model ?? defaultModel;
  return model === defaultModel && Object.keys(run.secrets.agent).length === 0;
}

/** Claims `entry` for the run, or throws why not (the caller then discards it and clones cold). */
export async function claimInto(run: PreparationRun, entry: WarmSandbox, remote: Remote, credential: GitCredential | null, signal: AbortSignal): Promise<void> {
  const { ctx, session } = run;
  const head = await remoteHead(run, remote, credential, entry.spec.branch, signal);
  if (head !== entry.headSha) throw new StaleWarmSandbox(`the branch moved on (${entry.headSha.slice(0, 7)} → ${head.slice(0, 7)})`);
  if (!entry.agent.alive) throw new Error('its agent host has ended');
  const local = await git(['rev-parse', 'HEAD'], { cwd: entry.workspaceDir, timeoutMs: ctx.config.timeouts.branchMs, signal });
  if (local.exitCode !== 0 || local.output.lastLines(1)[0]?.trim() !== entry.headSha) throw new Error('its clone is damaged');

  // The container's bind mounts hold the folders themselves: moved, they stay mounted.
  for (const [from, to] of [
    [entry.workspaceDir, run.workspaceDir],
    [entry.sharedDir, run.sharedDir],
  ] as const) {
    await rm(to, { recursive: true, force: true });
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
  }
  await rm(dirname(entry.workspaceDir), { recursive: true, force: true });
  await ctx.store.updateSession(session.id, { sandbox: entry.sandbox.ref });
  run.sandbox = entry.sandbox;
  entry.sandbox.assignTo?.(session.id);
  const agentReused = agentFits(run);
  if (agentReused) {
    run.agent = entry.agent;
    entry.logTo((line) => run.log(line));
  } else entry.agent.kill(); // the agent start step starts one with this start's model and secrets
  run.warm = { poolId: entry.id, readyAt: entry.readyAt, agentReused };
}
