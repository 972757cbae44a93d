// `npm run bench:devcontainer`: time to ready on real dev containers, split by step, against a plain
// sequential `git clone && devcontainer up` of the same repo in the same run. Prints figures only.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamEvent } from '@berth/protocol';
import { DEFAULT_IMAGE, devcontainerCliPath, dockerAvailable, removeSessionContainers } from '../src/sandbox/devcontainer/cli';
import { isReady, makeRepo, startTestServer, tempDir } from '../test/helpers';

const RUNS = 3;

function stepTimes(events: StreamEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) if (e.type === 'preparing' && e.data.state === 'done') out[e.data.step] = e.data.elapsedMs;
  return out;
}

function plainCloneAndUp(repo: string, label: string): number {
  const dir = join(tempDir('berth-bench-plain-'), 'ws');
  const started = performance.now();
  execFileSync('git', ['clone', '-q', repo, dir]);
  execFileSync(process.execPath, [devcontainerCliPath(), 'up', '--workspace-folder', dir, '--id-label', `berth.session=${label}`, '--log-format', 'json'], { stdio: 'ignore' });
  const ms = performance.now() - started;
  rmSync(dir, { recursive: true, force: true });
  return ms;
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
    for (let run = 1; run <= RUNS; run++) {
      const plainLabel = `bench-plain-${process.pid}-${run}`;
      const plain = plainCloneAndUp(repo, plainLabel);
      await removeSessionContainers(plainLabel);
      const startedAt = performance.now();
      const { body } = await alice.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true });
      const stream = await alice.stream(body.sessionId);
      await stream.waitFor(isReady, 120_000);
      const total = performance.now() - startedAt;
      const steps = stepTimes(stream.events);
      await stream.close();
      await alice.request('DELETE', `/v1/sessions/${body.sessionId}`);
      const split = Object.entries(steps)
        .filter(([s]) => s !== 'ready')
        .map(([s, ms]) => `${s} ${ms}`)
        .join(', ');
      console.log(`run ${run}: berth to ready ${total.toFixed(0)} ms (${split}); plain git clone && devcontainer up ${plain.toFixed(0)} ms`);
    }
  } finally {
    await t.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
