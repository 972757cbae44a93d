// The warm pool on real dev containers: a matching start claims a sandbox built ahead of it, the
// pool refills, and whatever does not match exactly (setup, a new commit, a new config, a damaged
// pool sandbox) goes the cold way without the user seeing an error. A kill -9 leaves nothing behind.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DiagnosticsResponse, StreamEvent } from '@berth/protocol';
import { DEFAULT_IMAGE, listLabelledContainers, runDocker } from '../../src/sandbox/devcontainer/cli';
import type { WarmPoolSpec } from '../../src/config';
import { ApiClient, isReady, makeRepo, sleep, startTestServer, tempDir, testStoreFor, TEST_PG_URL, turnComplete, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';
import { kill9, startCli, stop } from './faults';

const notReady = await dockerReadiness();
const dockerOrSkip = (t: TestContext) => requireDocker(t, notReady);

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
// Setup leaves a stamp of when it ran (ignored by git, so no change of the session's own).
const SETUP = 'mkdir -p node_modules && date +%s%N > node_modules/stamp';
const config = (env: string) => JSON.stringify({ image: DEFAULT_IMAGE, containerEnv: { WARM_CONFIG: env } });

function repoWithConfig(): string {
  return makeRepo({ 'README.md': '# warm\n', '.gitignore': 'node_modules/\n', '.devcontainer/devcontainer.json': config('one') });
}

/** Commits a change to the bare repo (through a scratch clone). */
function commit(bare: string, file: string, content: string): string {
  const work = join(tempDir('berth-push-'), 'w');
  execFileSync('git', ['clone', '-q', bare, work]);
  writeFileSync(join(work, file), content);
  execFileSync('git', ['-C', work, 'commit', '-qam', `change ${file}`], { env: gitEnv });
  execFileSync('git', ['-C', work, 'push', '-q', 'origin', 'HEAD'], { env: gitEnv });
  return execFileSync('git', ['-C', work, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
}

async function pool(api: ApiClient): Promise<DiagnosticsResponse['warmPool']> {
  return ((await api.request('GET', '/v1/diagnostics')).body as DiagnosticsResponse).warmPool;
}

async function waitPoolReady(api: ApiClient, ready = 1, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await pool(api);
    if (p.every((x) => x.ready >= ready)) return;
    if (Date.now() > deadline) throw new Error(`warm pool not ready: ${JSON.stringify(p)}`);
    await sleep(200);
  }
}

type Preparing = Extract<StreamEvent, { type: 'preparing' }>;
const doneMessage = (events: StreamEvent[], step: string) =>
  events.find((e): e is Preparing => e.type === 'preparing' && e.data.step === step && e.data.state === 'done')?.data.message ?? '';

async function startAndWait(api: ApiClient, repo: string, setup: string[]): Promise<{ id: string; events: StreamEvent[] }> {
  const { status, body } = await api.start({ repo: { url: repo }, prompt: 'hello warm', autoInitiate: true, setup });
  assert.ok(status === 201 || status === 202, JSON.stringify(body));
  const stream = await api.stream(body.sessionId);
  await stream.waitFor(isReady, 90_000, 'ready');
  await stream.waitFor(turnComplete, 30_000, 'first turn');
  await stream.close();
  assert.ok(!stream.events.some((e) => e.type === 'error'), `no error event: ${JSON.stringify(stream.events.filter((e) => e.type === 'error'))}`);
  return { id: body.sessionId, events: stream.events };
}

const containerOf = async (sessionId: string, t: TestServer) => {
  const s = await t.server.ctx.store.getSession(sessionId);
  assert.ok(s?.sandbox?.provider === 'devcontainer', 'a container sandbox');
  return s.sandbox.containerId;
};

const containerEnv = async (containerId: string, name: string) => (await runDocker(['exec', containerId, 'printenv', name])).trim();

describe('warm pool (real Docker)', { concurrency: false }, () => {
  let t: TestServer;
  let repo: string;
  before(async () => {
    if (notReady) return;
    repo = repoWithConfig();
    const spec: WarmPoolSpec = { repo, branch: null, size: 1, setup: [SETUP], devcontainer: null };
    t = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', warmPool: [spec] });
  });
  after(async () => {
    await t?.close();
  });

  it('a matching start claims the warm sandbox (setup and agent host already done) and the pool refills', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    await waitPoolReady(alice);
    const [poolDir] = readdirSync(t.server.ctx.paths.pool);
    const stamp = readFileSync(join(t.server.ctx.paths.pool, poolDir!, 'workspace/node_modules/stamp'), 'utf8');
    const poolContainers = (await listLabelledContainers()).filter((c) => c.sessionId === poolDir);
    assert.equal(poolContainers.length, 1, 'the pool sandbox is a container of its own');

    const { id, events } = await startAndWait(alice, repo, [SETUP]);
    assert.match(doneMessage(events, 'clone'), /warm sandbox claimed/);
    assert.match(doneMessage(events, 'sandbox'), /warm sandbox claimed/);
    assert.match(doneMessage(events, 'setup'), /already ran in the warm sandbox/);
    assert.match(doneMessage(events, 'agent_start'), /already running in the warm sandbox/);
    assert.equal(await containerOf(id, t), poolContainers[0]!.id, 'the session runs in the pool container');
    const workspace = t.server.ctx.paths.workspace(id);
    assert.equal(readFileSync(join(workspace, 'node_modules/stamp'), 'utf8'), stamp, 'setup ran once, before the start');
    // The moved folder is still the container's workspace: a file written inside shows on the host.
    const folder = (await runDocker(['inspect', '--format', '{{range .Mounts}}{{if eq .Type "bind"}}{{.Destination}} {{end}}{{end}}', poolContainers[0]!.id])).split(' ').find((d) => d.startsWith('/workspaces/'));
    await runDocker(['exec', poolContainers[0]!.id, 'sh', '-c', `echo from-container > ${folder}/inside.txt`]);
    assert.equal(readFileSync(join(workspace, 'inside.txt'), 'utf8'), 'from-container\n');
    const branch = execFileSync('git', ['-C', workspace, 'branch', '--show-current'], { encoding: 'utf8' }).trim();
    assert.match(branch, /^berth\//, 'on the session branch');

    await waitPoolReady(alice);
    const [refilled, ...more] = readdirSync(t.server.ctx.paths.pool);
    assert.deepEqual(more, [], 'one pool folder: the claimed one moved to the session');
    assert.notEqual(refilled, poolDir, 'a new pool sandbox, not the claimed one');
    assert.equal((await listLabelledContainers()).filter((c) => c.sessionId === refilled).length, 1);
    await alice.request('DELETE', `/v1/sessions/${id}`);
  });

  it('a start with other setup commands goes the cold way and leaves the pool alone', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    await waitPoolReady(alice);
    const before = (await listLabelledContainers()).filter((c) => c.sessionId.startsWith('pool_')).map((c) => c.id);
    const { id, events } = await startAndWait(alice, repo, []);
    assert.match(doneMessage(events, 'clone'), /^cloned in/);
    assert.doesNotMatch(doneMessage(events, 'sandbox'), /warm/);
    assert.notEqual(await containerOf(id, t), before[0]);
    assert.deepEqual((await listLabelledContainers()).filter((c) => c.sessionId.startsWith('pool_')).map((c) => c.id), before);
    assert.deepEqual(await pool(alice), [{ repo, branch: null, size: 1, ready: 1, building: 0 }]);
    await alice.request('DELETE', `/v1/sessions/${id}`);
  });

  it('a new commit invalidates the pool sandbox: the start clones the new commit, and the refill is built at it', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    await waitPoolReady(alice);
    const [stale] = readdirSync(t.server.ctx.paths.pool);
    const head = commit(repo, 'README.md', '# warm, once more\n');
    const cold = await startAndWait(alice, repo, [SETUP]);
    assert.match(doneMessage(cold.events, 'clone'), /^cloned in/, 'the stale sandbox was not used');
    assert.equal(readFileSync(join(t.server.ctx.paths.workspace(cold.id), 'README.md'), 'utf8'), '# warm, once more\n');
    assert.ok(!(await listLabelledContainers()).some((c) => c.sessionId === stale), 'the stale pool sandbox is gone');
    await waitPoolReady(alice);
    const warm = await startAndWait(alice, repo, [SETUP]);
    assert.match(doneMessage(warm.events, 'clone'), new RegExp(`warm sandbox claimed at ${head.slice(0, 7)}`));
    assert.equal(readFileSync(join(t.server.ctx.paths.workspace(warm.id), 'README.md'), 'utf8'), '# warm, once more\n');
    for (const id of [cold.id, warm.id]) await alice.request('DELETE', `/v1/sessions/${id}`);
  });

  it('a config change (a new commit of devcontainer.json) invalidates the pool sandbox; the refill has the new config', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    await waitPoolReady(alice);
    const head = commit(repo, '.devcontainer/devcontainer.json', config('two'));
    const cold = await startAndWait(alice, repo, [SETUP]);
    assert.match(doneMessage(cold.events, 'clone'), /^cloned in/, 'the stale sandbox was not used');
    const log = (await alice.request('GET', `/v1/sessions/${cold.id}/log`)).body as string;
    assert.match(log, /not used \(the branch moved on/);
    assert.equal(await containerEnv(await containerOf(cold.id, t), 'WARM_CONFIG'), 'two', 'the cold start has the new config');
    assert.equal(execFileSync('git', ['-C', t.server.ctx.paths.workspace(cold.id), 'rev-parse', 'HEAD~0'], { encoding: 'utf8' }).trim().length, 40);

    await waitPoolReady(alice);
    const warm = await startAndWait(alice, repo, [SETUP]);
    assert.match(doneMessage(warm.events, 'clone'), new RegExp(`warm sandbox claimed at ${head.slice(0, 7)}`));
    assert.equal(await containerEnv(await containerOf(warm.id, t), 'WARM_CONFIG'), 'two', 'the refilled sandbox has the new config');
    for (const id of [cold.id, warm.id]) await alice.request('DELETE', `/v1/sessions/${id}`);
  });

  it('a claim that fails (a damaged pool clone) falls back to the cold path without an error', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    await waitPoolReady(alice);
    const [poolDir] = readdirSync(t.server.ctx.paths.pool);
    const damaged = (await listLabelledContainers()).find((c) => c.sessionId === poolDir)!;
    writeFileSync(join(t.server.ctx.paths.pool, poolDir!, 'workspace/.git/HEAD'), 'garbage\n');
    const { id, events } = await startAndWait(alice, repo, [SETUP]);
    assert.match(doneMessage(events, 'clone'), /^cloned in/);
    const log = (await alice.request('GET', `/v1/sessions/${id}/log`)).body as string;
    assert.match(log, /not used \(its clone is damaged\)/);
    assert.ok(!(await listLabelledContainers()).some((c) => c.id === damaged.id), 'the damaged pool sandbox is gone');
    await alice.request('DELETE', `/v1/sessions/${id}`);
  });

  it('a user with secrets for the repository never gets a pool sandbox (its setup ran without them)', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const bob = t.api('bob');
    await waitPoolReady(bob);
    const put = await bob.request('PUT', '/v1/secrets/WARM_SECRET', { value: 'warm-secret-value-123', repo, exposeTo: 'setup' });
    assert.ok(put.status < 300, JSON.stringify(put.body));
    const { id, events } = await startAndWait(bob, repo, [SETUP]);
    assert.match(doneMessage(events, 'clone'), /^cloned in/);
    assert.equal((await pool(bob))[0]!.ready, 1, 'the pool sandbox is still there for others');
    await bob.request('DELETE', `/v1/sessions/${id}`);
  });
});

describe('warm pool and kill -9 (real Docker)', { concurrency: false }, () => {
  it('pool containers of a killed server are removed by the next one; no folder left', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const repo = repoWithConfig();
    const dataDir = tempDir('berth-warm-kill-');
    const args = ['--provider', 'devcontainer', '--agent-command', 'cat', '--warm-pool', `${repo}=2`];
    const first = await startCli(dataDir, args);
    let second: Awaited<ReturnType<typeof startCli>> | null = null;
    try {
      await waitPoolReady(first.api, 2);
      const ours = (await listLabelledContainers()).filter((c) => c.sessionId.startsWith('pool_'));
      assert.equal(ours.length, 2, 'two pool containers');
      await kill9(first);
      second = await startCli(dataDir, args);
      const left = new Set((await listLabelledContainers()).map((c) => c.id));
      for (const c of ours) assert.ok(!left.has(c.id), `container ${c.id.slice(0, 12)} of the killed server removed`);
      await waitPoolReady(second.api, 2);
      assert.equal(readdirSync(join(dataDir, 'pool')).length, 2, 'only the new pool sandboxes in the pool folder');
    } finally {
      if (second) await stop(second);
      await kill9(first);
    }
    const after = (await listLabelledContainers()).filter((c) => c.sessionId.startsWith('pool_'));
    assert.equal(after.length, 0, 'a clean stop removes the pool');
  });
});

describe('warm pool on a shared PostgreSQL (real Docker)', { concurrency: false, skip: TEST_PG_URL ? false : 'needs BERTH_TEST_PG_URL' }, () => {
  it('each instance keeps its own pool; concurrent starts never share a sandbox', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const repo = repoWithConfig();
    const spec: WarmPoolSpec = { repo, branch: null, size: 1, setup: [], devcontainer: null };
    const a = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', warmPool: [spec] });
    const b = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', warmPool: [spec], store: await testStoreFor(a.dataDir) });
    try {
      await Promise.all([waitPoolReady(a.api('alice')), waitPoolReady(b.api('alice'))]);
      const results = await Promise.all([0, 1, 2].map(() => startAndWait(a.api('alice'), repo, [])));
      const containers = await Promise.all(results.map((r) => containerOf(r.id, a)));
      assert.equal(new Set(containers).size, 3, 'three sessions, three containers');
      const warm = results.filter((r) => /warm sandbox claimed/.test(doneMessage(r.events, 'clone')));
      assert.ok(warm.length >= 1 && warm.length <= 2, `warm claims: ${warm.length} (one per instance at most)`);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
