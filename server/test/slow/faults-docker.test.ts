// Issue 7: the Docker daemon stops while the `sandbox` step runs. The preparation fails cleanly with
// a readable message, and Retry works once the daemon is back. This stops the machine's dockerd
// (for seconds), so it runs only where that is safe: in CI, or with BERTH_FAULTS_DOCKERD=1.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_IMAGE, dockerAvailable, listLabelledContainers } from '../../src/sandbox/devcontainer/cli';
import { makeRepo, ROOT, sleep, startTestServer } from '../helpers';
import { dockerOrSkip, dockerReadiness } from './docker';

const allowed = Boolean(process.env.CI) || process.env.BERTH_FAULTS_DOCKERD === '1';

function dockerdPid(): number | null {
  try {
    const pid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
    return pid > 0 && existsSync(`/proc/${pid}`) ? pid : null;
  } catch {
    return null;
  }
}

async function stopDockerd(): Promise<void> {
  const pid = dockerdPid();
  if (!pid) throw new Error('no dockerd pid file: this test stops the local dockerd only');
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await sleep(100);
}

/** Starts dockerd again (scripts/ensure-docker.sh) and waits until it answers. */
async function startDockerd(): Promise<void> {
  execFileSync('bash', [join(ROOT, 'scripts/ensure-docker.sh')], { stdio: 'ignore', timeout: 90_000 });
  const deadline = Date.now() + 60_000;
  while (!(await dockerAvailable()) && Date.now() < deadline) await sleep(250);
}

describe('faults: the Docker daemon stops during the sandbox step', () => {
  it('fails cleanly with a readable message; Retry works once the daemon is back', async (ctx) => {
    if (!allowed) {
      ctx.skip('stops the machine\'s Docker daemon: runs in CI or with BERTH_FAULTS_DOCKERD=1');
      return;
    }
    if (!dockerOrSkip(ctx, await dockerReadiness())) return;
    const t = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', timeouts: { sandboxMs: 60_000 } as never });
    let stopped = false;
    try {
      const alice = t.api('alice');
      const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, postCreateCommand: 'sleep 8' }) });
      const r = await alice.start({ repo: { url: repo }, prompt: 'docker goes away', autoInitiate: true });
      const id = r.body.sessionId as string;
      await alice.waitFor(id, (s) => s.step === 'sandbox', 20_000);
      await sleep(2000); // the container is up, postCreateCommand runs
      stopped = true;
      await stopDockerd();
      const failed = await alice.waitFor(id, (s) => s.status === 'failed', 60_000);
      await startDockerd();
      stopped = false;
      assert.equal(failed.lastError?.step, 'sandbox');
      const message = failed.lastError.message;
      assert.ok(message.length > 0 && message.length < 4000, message);
      assert.doesNotMatch(message, /^\s*[{[]|\n\s+at /, `readable, no JSON dump or stack: ${message}`);
      assert.match(message, /docker|daemon|postCreateCommand|container/i, message);

      const retried = await alice.request('POST', `/v1/sessions/${id}/retry`);
      assert.equal(retried.status, 202, JSON.stringify(retried.body));
      const ready = await alice.waitFor(id, (s) => s.status === 'ready' || s.status === 'failed', 90_000);
      assert.equal(ready.status, 'ready', JSON.stringify(ready.lastError));
      const containers = (await listLabelledContainers()).filter((c) => c.sessionId === id);
      assert.equal(containers.length, 1, `one container for the session: ${JSON.stringify(containers)}`);
      await alice.request('DELETE', `/v1/sessions/${id}`);
    } finally {
      if (stopped || !(await dockerAvailable())) await startDockerd();
      await t.close();
    }
  });
});
