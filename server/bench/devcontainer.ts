// `npm run bench:devcontainer`: time to ready on real dev containers, split by step, for the first
// start of a repo (cold mirror) and the second start of the same repo, against a bare
// `devcontainer up` of the same repo alone and a plain sequential `git clone && devcontainer up`,
// all in the same run. Prints figures only.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamEvent } from '@berth/protocol';
import { DEFAULT_IMAGE, devcontainerCliPath, dockerAvailable, removeSessionContainers } from '../src/sandbox/devcontainer/cli';
import { isReady, makeRepo, startTestServer, tempDir, type ApiClient } from '../test/helpers';

const SECOND_STARTS = 3;

function stepTimes(events: StreamEvent[]): string {
  const out: string[] = [];
  for (const e of events) {
    if (e.type === 'preparing' && e.data.state === 'done' && e.data.step !== 'ready') out.push(`${e.data.step} ${e.data.elapsedMs}`);
  }
  return out.join(', ');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `devcontainer up` alone, on a clone made beforehand (not timed); the container is removed after. */
async function bareUp(repo: string, label: string, withClone: boolean): Promise<number> {
  const dir = join(tempDir('berth-bench-plain-'), 'ws');
  const up = () =>
    execFileSync(process.execPath, [devcontainerCliPath(), 'up', '--workspace-folder', dir, '--id-label', `berth.session=${label}`, '--log-format', 'json'], { stdio: 'ignore' });
  let started = performance.now();
  if (withClone) execFileSync('git', ['clone', '-q', repo, dir]);
  else {
    execFileSync('git', ['clone', '-q', repo, dir]);
    started = performance.now();
  }
  up();
  const ms = performance.now() - started;
  await removeSessionContainers(label);
  rmSync(join(dir, '..'), { recursive: true, force: true });
  return ms;
}

async function berthStart(alice: ApiClient, repo: string): Promise<{ ms: number; steps: string }> {
  const startedAt = performance.now();
  const { body } = await alice.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true });
  const stream = await alice.stream(body.sessionId);
  await stream.waitFor(isReady, 120_000);
  const ms = performance.now() - startedAt;
  const steps = stepTimes(stream.events);
  await stream.close();
  await alice.request('DELETE', `/v1/sessions/${body.sessionId}`);
  return { ms, steps };
}

async function main(): Promise<void> {
  if (!(await dockerAvailable())) throw new Error('no Docker daemon answers: run scripts/ensure-docker.sh and npm run images');
  const repo = makeRepo({
    'README.md': '# small repo\n',
    '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, postCreateCommand: 'true' }),
  });
  const t = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat' });
  try {
    const alice = t.api('alice');
    console.log(`time to ready on real dev containers (image ${DEFAULT_IMAGE}, small repo with devcontainer.json)\n`);
    const first = await berthStart(alice, repo);
    console.log(`first start (mirror created):  ${first.ms.toFixed(0)} ms  (${first.steps})`);
    const seconds: number[] = [];
    const bares: number[] = [];
    const plains: number[] = [];
    for (let run = 1; run <= SECOND_STARTS; run++) {
      const second = await berthStart(alice, repo);
      seconds.push(second.ms);
      console.log(`second start #${run} (mirror):    ${second.ms.toFixed(0)} ms  (${second.steps})`);
      bares.push(await bareUp(repo, `bench-bare-${process.pid}-${run}`, false));
      plains.push(await bareUp(repo, `bench-plain-${process.pid}-${run}`, true));
      console.log(`  bare devcontainer up alone ${bares.at(-1)!.toFixed(0)} ms; git clone && devcontainer up ${plains.at(-1)!.toFixed(0)} ms`);
    }
    const ratio = median(seconds) / median(bares);
    console.log(
      `\nmedians: second start ${median(seconds).toFixed(0)} ms, bare devcontainer up ${median(bares).toFixed(0)} ms, ` +
        `git clone && devcontainer up ${median(plains).toFixed(0)} ms`,
    );
    console.log(`ratio second start / bare up = ${ratio.toFixed(2)}x (target <= 1.5x)`);
  } finally {
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
