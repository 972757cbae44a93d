// Setup commands and repository configs that try to reach the host from a dev container (real
// Docker): none of them may write a host file outside the session's own mounts.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_IMAGE } from '../../src/sandbox/devcontainer/cli';
import { execFileSync } from 'node:child_process';
import { isFailed, isReady, makeRepo, removeDir, startTestServer, tempDir, turnComplete, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const dockerOrSkip = (t: TestContext) => requireDocker(t, notReady);

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** A repo whose commit holds symbolic links (name → target) next to ordinary files. */
function repoWithLinks(files: Record<string, string>, links: Record<string, string>): string {
  const bare = makeRepo(files);
  const work = tempDir('berth-links-');
  execFileSync('git', ['clone', '-q', bare, work]);
  for (const [name, target] of Object.entries(links)) execFileSync('ln', ['-s', target, join(work, name)]);
  execFileSync('git', ['-C', work, 'add', '-A']);
  execFileSync('git', ['-C', work, 'commit', '-qm', 'links'], { env: gitEnv });
  execFileSync('git', ['-C', work, 'push', '-q', 'origin', 'main'], { env: gitEnv });
  removeDir(work);
  return bare;
}

/** A host path no container may create: under the host's temp dir, which containers do not share. */
function marker(what: string): string {
  return join(tmpdir(), `berth-escape-${what}-${randomBytes(6).toString('hex')}`);
}

describe('sandbox escapes (devcontainer provider, real Docker)', { concurrency: false }, () => {
  let t: TestServer;
  const markers: string[] = [];
  const mark = (what: string) => {
    const m = marker(what);
    markers.push(m);
    return m;
  };
  before(async () => {
    if (notReady) return;
    t = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', idleTimeoutMs: 1500 });
  });
  after(async () => {
    await t?.close();
    for (const m of markers) rmSync(m, { force: true, recursive: true });
  });

  it('setup commands cannot write host files, the read-only mounts, or reach the Docker daemon', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const hostFile = mark('setup');
    const nodeBefore = statSync(process.execPath).mtimeMs;
    const setup = [
      // The host's temp dir is not the container's.
      `touch ${hostFile}; ln -s ${hostFile} link-to-host; echo escaped > link-to-host`,
      // The Node binary and the agent bundle are the host's own files, mounted read-only.
      'if touch /opt/berth/node/bin/node 2>/dev/null; then echo node-writable; else echo node-read-only; fi >> proof.txt',
      'if touch /opt/berth/agent/planted 2>/dev/null; then echo agent-writable; else echo agent-read-only; fi >> proof.txt',
      // No Docker socket, no privileges to mount the host's disks.
      'if [ -e /var/run/docker.sock ]; then echo docker-socket; else echo no-docker-socket; fi >> proof.txt',
      'if mount -t tmpfs none /mnt 2>/dev/null; then echo can-mount; else echo cannot-mount; fi >> proof.txt',
    ];
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true, setup });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(isReady, 90_000, 'ready');
    const proof = readFileSync(join(t.dataDir, 'workspaces', body.sessionId, 'proof.txt'), 'utf8').trim().split('\n');
    assert.deepEqual(proof, ['node-read-only', 'agent-read-only', 'no-docker-socket', 'cannot-mount']);
    assert.equal(existsSync(hostFile), false, 'the setup command wrote a host file');
    assert.equal(statSync(process.execPath).mtimeMs, nodeBefore);
    await stream.close();
  });

  it("a repository's devcontainer.json cannot run host commands or mount host paths", async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const init = mark('initialize');
    const bind = mark('bind');
    const runArg = mark('runargs');
    const repo = makeRepo({
      'README.md': '# hostile config\n',
      '.devcontainer/Dockerfile': `FROM ${DEFAULT_IMAGE}\n`,
      '.devcontainer/devcontainer.json': JSON.stringify({
        build: { dockerfile: 'Dockerfile', options: ['--network=host'] },
        // Runs on the HOST in the Dev Containers spec.
        initializeCommand: `touch ${init}`,
        mounts: [`source=${tmpdir()},target=/host-tmp,type=bind`],
        runArgs: ['-v', `${tmpdir()}:/host-tmp2`],
        privileged: true,
        postCreateCommand: `touch /host-tmp/${bind.split('/').pop()} /host-tmp2/${runArg.split('/').pop()} 2>/dev/null; true`,
      }),
    });
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor((e) => isReady(e) || isFailed(e), 90_000, 'the end of preparation');
    assert.ok(stream.events.some(isReady), 'the config works without its host-reaching parts');
    const log = await alice.request('GET', `/v1/sessions/${body.sessionId}/log`);
    assert.match(log.body, /ignored in the repo's config \(they would reach the host\): initializeCommand, runArgs, privileged, build.options, bind mounts/);
    assert.equal(existsSync(init), false, 'initializeCommand ran on the host');
    assert.equal(existsSync(bind), false, 'the repo config bind-mounted a host folder');
    assert.equal(existsSync(runArg), false, 'the repo config passed docker run arguments');
    await stream.close();
  });

  it('a setup command that rewrites the devcontainer.json does not reach the host when the sandbox comes back', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const init = mark('resume-initialize');
    const hostile = JSON.stringify({ image: DEFAULT_IMAGE, initializeCommand: `touch ${init}`, mounts: [`source=/,target=/host,type=bind`] });
    const alice = t.api('alice');
    const { body } = await alice.start({
      repo: { url: makeRepo() },
      prompt: 'first',
      autoInitiate: true,
      setup: [`mkdir -p .devcontainer && printf '%s' '${hostile}' > .devcontainer/devcontainer.json`],
    });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(turnComplete, 90_000);
    await alice.waitFor(body.sessionId, (s) => s.status === 'sleeping', 20_000);
    const sent = await alice.message(body.sessionId, 'second');
    assert.equal(sent.status, 202);
    await stream.waitFor((e) => (e.type === 'turn_complete' && e.data.turnId === sent.body.turnId) || isFailed(e), 90_000);
    assert.equal(existsSync(init), false, 'initializeCommand from the rewritten config ran on the host');
    await stream.close();
  });

  it('a config or a build context that leads out of the clone (to the data dir and its secrets) is refused', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const secretFile = join(t.dataDir, 'ticket-secret');
    // On PostgreSQL the ticket secret lives in the store: a planted stand-in is as good a target.
    if (!existsSync(secretFile)) writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const secret = readFileSync(secretFile, 'utf8').trim();
    const alice = t.api('alice');
    const cases = [
      // workspaces/<id>/.devcontainer/devcontainer.json → <data dir>/ticket-secret
      repoWithLinks({ 'README.md': '# link\n' }, { '.devcontainer.json': '../../ticket-secret' }),
      repoWithLinks({ 'README.md': '# link\n', '.devcontainer/keep': '' }, { '.devcontainer/devcontainer.json': '../../../ticket-secret' }),
      makeRepo({
        'README.md': '# context\n',
        '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '../../..' } }),
        '.devcontainer/Dockerfile': `FROM ${DEFAULT_IMAGE}\nCOPY ticket-secret /stolen\n`,
      }),
      repoWithLinks(
        { 'README.md': '# linked context\n', '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '../data' } }), '.devcontainer/Dockerfile': `FROM ${DEFAULT_IMAGE}\nCOPY ticket-secret /stolen\n` },
        { data: '../..' },
      ),
      makeRepo({
        'README.md': '# feature\n',
        '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { '../../../': {} } }),
      }),
    ];
    for (const repo of cases) {
      const { body } = await alice.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true, setup: ['cat /stolen > stolen.txt 2>/dev/null; true'] });
      const stream = await alice.stream(body.sessionId);
      const failed = await stream.waitFor((e) => isReady(e) || isFailed(e), 90_000, 'the end of preparation');
      assert.ok(isFailed(failed), `refused: ${JSON.stringify(failed)}`);
      const view = await alice.get(body.sessionId);
      assert.match(view.body.lastError?.message ?? '', /leads outside the repository/, JSON.stringify(view.body.lastError));
      const log = await alice.request('GET', `/v1/sessions/${body.sessionId}/log`);
      const shown = JSON.stringify(stream.events) + JSON.stringify(view.body) + String(log.body);
      assert.ok(!shown.includes(secret), 'the secret was shown');
      assert.equal(existsSync(join(t.dataDir, 'workspaces', body.sessionId, 'stolen.txt')), false);
      await stream.close();
    }
  });
});
