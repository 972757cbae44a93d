// `npm run bench:devcontainer`: time to ready on real dev containers, in one run: a bare
// `devcontainer up` of the repo alone, the cold start of a repo never seen (no mirror), the second
// start of a repo (mirror), and the start of a repo the warm pool keeps ready. Medians and p90 of 5
// each, plus each start's steps. Prints figures only.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DiagnosticsResponse, StreamEvent } from '@berth/protocol';
import { DEFAULT_IMAGE, devcontainerCliPath, dockerAvailable, removeSessionContainers } from '../src/sandbox/devcontainer/cli';
import { isReady, makeRepo, sleep, startTestServer, tempDir, type ApiClient } from '../test/helpers';

const RUNS = 5;

function stepTimes(events: StreamEvent[]): string {
  const out: string[] = [];
  for (const e of events) {
    if (e.type === 'preparing' && e.data.state === 'done' && e.data.step !== 'ready') out.push(`${e.data.step} ${e.data.elapsedMs}`);
  }
  return out.join(', ');
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => sorted(xs)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.9) - 1)]!;
const figures = (xs: number[]) => `median ${median(xs).toFixed(0)} ms, p90 ${p90(xs).toFixed(0)} ms`;

const smallRepo = () =>
  makeRepo({
    'README.md': '# small repo\n',
    '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, postCreateCommand: 'true' }),
  });

/** `devcontainer up` alone, on a clone made beforehand (not timed); the container is removed after. */
async function bareUp(repo: string, label: string): Promise<number> {
  const dir = join(tempDir('berth-bench-plain-'), 'ws');
  execFileSync('git', ['clone', '-q', repo, dir]);
  const started = performance.now();
  execFileSync(process.execPath, [devcontainerCliPath(), 'up', '--workspace-folder', dir, '--id-label', `berth.session=${label}`, '--log-format', 'json'], { stdio: 'ignore' });
  const ms = performance.now() - started;
  await removeSessionContainers(label);
  rmSync(join(dir, '..'), { recursive: true, force: true });
  return ms;
}

async function berthStart(api: ApiClient, repo: string): Promise<{ ms: number; steps: string; warm: boolean }> {
  const startedAt = performance.now();
  const { body } = await api.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true });
  const stream = await api.stream(body.sessionId);
  await stream.waitFor(isReady, 120_000);
  const ms = performance.now() - startedAt;
  const warm = stream.events.some((e) => e.type === 'preparing' && e.data.step === 'sandbox' && /warm sandbox claimed/.test(e.data.message));
  const steps = stepTimes(stream.events);
  await stream.close();
  await api.request('DELETE', `/v1/sessions/${body.sessionId}`);
  return { ms, steps, warm };
}

async function poolReady(api: ApiClient): Promise<void> {
  for (;;) {
    const { warmPool } = (await api.request('GET', '/v1/diagnostics')).body as DiagnosticsResponse;
    if (warmPool.every((p) => p.ready >= p.size)) return;
    await sleep(100);
  }
}

async function main(): Promise<void> {
  if (!(await dockerAvailable())) throw new Error('no Docker daemon answers: run scripts/ensure-docker.sh and npm run images');
  console.log(`time to ready on real dev containers (image ${DEFAULT_IMAGE}, small repo with devcontainer.json), ${RUNS} runs each\n`);
  const bares: number[] = [];
  const colds: number[] = [];
  const seconds: number[] = [];
  const warms: number[] = [];

  const cold = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat' });
  try {
    const api = cold.api('alice');
    const repo = smallRepo();
    await berthStart(api, repo); // makes the mirror and the image the second starts use
    for (let run = 1; run <= RUNS; run++) {
      bares.push(await bareUp(repo, `bench-bare-${process.pid}-${run}`));
      const first = await berthStart(api, smallRepo());
      colds.push(first.ms);
      const second = await berthStart(api, repo);
      seconds.push(second.ms);
      console.log(`#${run}: bare up ${bares.at(-1)!.toFixed(0)} ms; cold start ${first.ms.toFixed(0)} ms (${first.steps}); second start ${second.ms.toFixed(0)} ms (${second.steps})`);
    }
  } finally {
    await cold.close();
  }

  const repo = smallRepo();
  const warm = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', warmPool: [{ repo, branch: null, size: 1, setup: [], devcontainer: null }] });
  try {
    const api = warm.api('alice');
    for (let run = 1; run <= RUNS; run++) {
      await poolReady(api);
      const start = await berthStart(api, repo);
      if (!start.warm) throw new Error(`warm start #${run} did not claim a pool sandbox (${start.steps})`);
      warms.push(start.ms);
      console.log(`#${run}: warm pool start ${start.ms.toFixed(0)} ms (${start.steps})`);
    }
  } finally {
    await warm.close();
  }

  console.log(`\nbare devcontainer up:  ${figures(bares)}`);
  console.log(`cold start:            ${figures(colds)}`);
  console.log(`second start (mirror): ${figures(seconds)}`);
  console.log(`warm pool start:       ${figures(warms)}`);
  console.log(`ratio second start / bare up = ${(median(seconds) / median(bares)).toFixed(2)}x (target <= 1.5x)`);
  console.log(`ratio warm start / bare up = ${(median(warms) / median(bares)).toFixed(2)}x (target <= 0.35x)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
