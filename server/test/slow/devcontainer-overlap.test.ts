// Overlapped preparation steps on real dev containers: the agent host starts while setup runs inside
// the container, yet the `preparing` events still announce the steps one after the other.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamEvent } from '@berth/protocol';
import { listLabelledContainers } from '../../src/sandbox/devcontainer/cli';
import { stepOrder } from '../../src/preparation/pipeline';
import { isFailed, isReady, makeRepo, startTestServer, turnComplete, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const dockerOrSkip = (t: TestContext) => requireDocker(t, notReady);

// Waits up to 5 s for the agent host process to show up in the container (the bracket keeps grep
// from finding its own command line), then leaves a proof in the workspace.
const SEES_AGENT = "for i in $(seq 1 50); do if grep -qs 'agent-hos[t]' /proc/[0-9]*/cmdline; then echo seen > overlap-proof.txt; break; fi; sleep 0.1; done; sleep 0.3";

type Preparing = Extract<StreamEvent, { type: 'preparing' }>;

/** Every step's events form one contiguous block, in pipeline order, `started` before `done`. */
function assertSequential(events: StreamEvent[]): void {
  const preparing = events.filter((e): e is Preparing => e.type === 'preparing' && e.data.step !== 'queued');
  const order = stepOrder(true).map((s) => s.name as string);
  const seen: string[] = [];
  for (const e of preparing) {
    const step = e.data.step;
    if (seen.at(-1) !== step) {
      assert.ok(!seen.includes(step), `${step} announced again after a later step: ${seen.join(' → ')}`);
      seen.push(step);
    }
  }
  const pipeline = seen.filter((s) => order.includes(s));
  assert.deepEqual(pipeline, [...pipeline].sort((a, b) => order.indexOf(a) - order.indexOf(b)), `steps out of order: ${seen.join(' → ')}`);
  for (const step of pipeline) {
    const states = preparing.filter((e) => e.data.step === step).map((e) => e.data.state);
    const done = states.indexOf('done');
    if (done >= 0) assert.equal(states.slice(done + 1).length, 0, `${step}: events after done: ${states}`);
  }
}

describe('overlapped steps (real Docker)', { concurrency: false }, () => {
  let t: TestServer;
  before(async () => {
    if (notReady) return;
    t = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat' });
  });
  after(async () => {
    await t?.close();
  });

  it('the agent host starts during setup; events still come step by step', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true, setup: [SEES_AGENT] });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(isReady, 60_000, 'ready');
    await stream.waitFor(turnComplete, 30_000);
    assert.ok(existsSync(join(t.server.ctx.paths.workspace(body.sessionId), 'overlap-proof.txt')), 'setup saw the agent host already running');
    assertSequential(stream.events);
    const done = (step: string) => stream.events.find((e): e is Preparing => e.type === 'preparing' && e.data.step === step && e.data.state === 'done');
    assert.ok(done('setup') && done('agent_start'));
    assert.ok(stream.events.indexOf(done('setup')!) < stream.events.indexOf(done('agent_start')!));
    await stream.close();
  });

  it('a failing setup also stops the agent host started early; no container or exec client left', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true, setup: [`${SEES_AGENT}; exit 4`] });
    const stream = await alice.stream(body.sessionId);
    const failed = await stream.waitFor(isFailed, 60_000, 'failed');
    assert.ok(failed.type === 'preparing' && /setup: .*exited with code 4/.test(failed.data.message), JSON.stringify(failed.data));
    assertSequential(stream.events);
    assert.deepEqual((await listLabelledContainers()).filter((c) => c.sessionId === body.sessionId), []);
    const log = (await alice.request('GET', `/v1/sessions/${body.sessionId}/log`)).body as string;
    assert.match(log, /step agent_start started early/);
    const execs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('docker exec') && l.includes(body.sessionId));
    assert.deepEqual(execs, [], 'no docker exec client of the session left');
    await stream.close();
  });
});
