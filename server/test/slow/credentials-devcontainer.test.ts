// Private repositories and secrets on real dev containers (real Docker): the clone of a private
// repository (basic-auth git remote on loopback) reaches the container without its credential;
// setup-only secrets reach setup and lifecycle commands, agent secrets the agent too; neither the
// token nor a setup-only secret is anywhere in the container's file system or processes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DEFAULT_IMAGE, runDocker } from '../../src/sandbox/devcontainer/cli';
import { answerOf, isFailed, isReady, startTestServer, tempDir, turnComplete, type TestServer } from '../helpers';
import { createRepo, startGitHttpServer, type GitHttpServer } from '../fixtures/git-http-server';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const GIT_TOKEN = 'devcontainer-git-token-24680';
const SETUP_SECRET = 'devcontainer-setup-secret-1357';
const AGENT_SECRET = 'devcontainer-agent-secret-8642';

const sha = (v: string) => execFileSync('sh', ['-c', 'printf %s "$1" | sha256sum | cut -c1-16', 'sh', v], { encoding: 'utf8' }).trim();

describe('private repositories and secrets on real dev containers', { concurrency: false }, () => {
  let t: TestServer;
  let git: GitHttpServer;
  before(async () => {
    if (notReady) return;
    const root = tempDir('berth-git-root-');
    createRepo(root, 'private.git', {
      'README.md': '# private\n',
      '.devcontainer/devcontainer.json': JSON.stringify({
        image: DEFAULT_IMAGE,
        postCreateCommand: 'printf %s "$SETUP_ONLY" | sha256sum | cut -c1-16 > /tmp/lifecycle-saw',
      }),
    });
    git = await startGitHttpServer(root, { alice: { password: GIT_TOKEN, repos: ['private.git'] } });
    const agent =
      'cat > /dev/null; echo "lifecycle=$(cat /tmp/lifecycle-saw)"; echo "setup=$(cat setup-saw)"; ' +
      'echo "agent=$(printf %s "$AGENT_VISIBLE" | sha256sum | cut -c1-16)"; printenv SETUP_ONLY >/dev/null && echo setup-present || echo setup-absent';
    t = await startTestServer({ provider: 'devcontainer', allowHttp: true, agentCommand: agent });
  });
  after(async () => {
    await t?.close();
    await git?.close();
  });

  it('the token and the setup-only secret stay out of the container; each secret reaches only where it is meant to', async (ctx: TestContext) => {
    if (!requireDocker(ctx, notReady)) return;
    const alice = t.api('alice');
    await alice.request('PUT', `/v1/credentials/${encodeURIComponent(git.host)}`, { username: 'alice', token: GIT_TOKEN });
    await alice.request('PUT', '/v1/secrets/SETUP_ONLY', { value: SETUP_SECRET, exposeTo: 'setup' });
    await alice.request('PUT', '/v1/secrets/AGENT_VISIBLE', { value: AGENT_SECRET, exposeTo: 'agent' });
    const { body } = await alice.start({
      repo: { url: `${git.url}/private.git` },
      prompt: 'report',
      autoInitiate: true,
      setup: ['printf %s "$SETUP_ONLY" | sha256sum | cut -c1-16 > setup-saw'],
    });
    const stream = await alice.stream(body.sessionId);
    const end = await stream.waitFor((e) => isReady(e) || isFailed(e), 120_000, 'the end of preparation');
    assert.ok(isReady(end), JSON.stringify((await alice.get(body.sessionId)).body.lastError));
    await stream.waitFor(turnComplete, 30_000);
    const answer = answerOf(stream.events);
    assert.match(answer, new RegExp(`^lifecycle=${sha(SETUP_SECRET)}$`, 'm'), 'the lifecycle command had the setup secret');
    assert.match(answer, new RegExp(`^setup=${sha(SETUP_SECRET)}$`, 'm'), 'the setup command had it');
    assert.match(answer, new RegExp(`^agent=${sha(AGENT_SECRET)}$`, 'm'), 'the agent has its own');
    assert.match(answer, /^setup-absent$/m, 'the agent never has a setup-only secret');

    const ref = (await t.server.ctx.store.getSession(body.sessionId))!.sandbox;
    assert.ok(ref?.provider === 'devcontainer');
    // Every file but the kernel's, devices and FIFOs, and Berth's read-only host mounts (/opt/berth).
    for (const needle of [GIT_TOKEN, SETUP_SECRET]) {
      const files = await runDocker(['exec', ref.containerId, 'sh', '-c', 'grep -rlsF -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=berth -- "$1" / || true', 'sh', needle], { timeoutMs: 120_000 });
      assert.equal(files.trim(), '', `${needle.slice(0, 12)}… in the container's files: ${files}`);
    }
    const environs = await runDocker(['exec', ref.containerId, 'sh', '-c', 'cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"']);
    assert.ok(!environs.includes(GIT_TOKEN) && !environs.includes(SETUP_SECRET), 'no process in the container has the token or the setup-only secret');
    assert.ok(environs.includes(`AGENT_VISIBLE=${AGENT_SECRET}`), 'the agent host has its secret (the check can see environments)');
    await stream.close();
  });
});
