// The whole session path on real dev containers: the real server, real Docker, the local base image.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_IMAGE, listLabelledContainers, runDocker } from '../../src/sandbox/devcontainer/cli';
import { answerOf, isFailed, isReady, makeRepo, startTestServer, turnComplete, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();

function dockerOrSkip(t: TestContext): boolean {
  return requireDocker(t, notReady);
}

const containersOf = async (sessionId: string) => (await listLabelledContainers()).filter((c) => c.sessionId === sessionId);

// Proves where the agent runs: the container's hostname is its id, and /.dockerenv exists only there.
const WHERE_AGENT = 'echo "host=$(hostname) docker=$(test -f /.dockerenv && echo yes || echo no) prompt=$(cat)"';

describe('devcontainer provider (real Docker)', { concurrency: false }, () => {
  let t: TestServer;
  before(async () => {
    if (notReady) return;
    t = await startTestServer({ provider: 'devcontainer', agentCommand: WHERE_AGENT, idleTimeoutMs: 1500 });
  });
  after(async () => {
    await t?.close();
  });

  it('a repo with its own devcontainer.json: postCreateCommand progress, setup and agent inside the container', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const repo = makeRepo({
      'README.md': '# with config\n',
      '.devcontainer/devcontainer.json': JSON.stringify({
        image: DEFAULT_IMAGE,
        // a comment-free config; postCreateCommand output must show in progress
        postCreateCommand: 'echo postcreate-was-here > /tmp/postcreate.txt && echo hello-from-postcreate',
      }),
    });
    const alice = t.api('alice');
    const { body } = await alice.start({
      repo: { url: repo },
      prompt: 'where are you?',
      autoInitiate: true,
      setup: ['test -f /.dockerenv && cat /tmp/postcreate.txt > setup-proof.txt'],
    });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(isReady, 60_000, 'ready');
    await stream.waitFor(turnComplete, 30_000);
    const messages = stream.events.flatMap((e) => (e.type === 'preparing' && e.data.step === 'sandbox' ? [e.data.message] : []));
    assert.ok(messages.some((m) => /running postCreateCommand \(echo postcreate-was-here/.test(m)), `sandbox progress: ${messages.join(' | ')}`);
    const order = stream.events.flatMap((e) => (e.type === 'preparing' && e.data.state === 'done' ? [e.data.step] : []));
    assert.ok(order.indexOf('sandbox') < order.indexOf('setup'), `setup runs inside, after the sandbox: ${order}`);

    const [container] = await containersOf(body.sessionId);
    assert.ok(container, 'one labelled container runs the session');
    const answer = answerOf(stream.events);
    assert.match(answer, /docker=yes/);
    assert.ok(container.id.startsWith(/host=(\S+)/.exec(answer)![1]!), `agent ran in ${container.id}: ${answer}`);
    assert.match(answer, /prompt=where are you\?/);
    const log = await alice.request('GET', `/v1/sessions/${body.sessionId}/log`);
    assert.match(log.body, /hello-from-postcreate/, 'the full container log is kept');
    await stream.close();
  });

  it('a repo without a config gets the default image', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(turnComplete, 60_000);
    const [container] = await containersOf(body.sessionId);
    assert.ok(container);
    const image = (await runDocker(['inspect', '--format', '{{.Config.Image}}', container.id])).trim();
    assert.equal(image, DEFAULT_IMAGE);
    await stream.close();
  });

  it('a failing postCreateCommand: clean failed step with the reason, no container left, session rolled back', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const repo = makeRepo({
      '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, postCreateCommand: 'echo "npm ERR! missing script: build" >&2; exit 3' }),
    });
    const alice = t.api('alice');
    // Only this server's containers: other suites may be creating theirs at the same time.
    const mine = () => listLabelledContainers({}, `berth.instance=${t.server.ctx.config.instanceTag}`);
    const containersBefore = (await mine()).map((c) => c.id);
    const r = await alice.start({ repo: { url: repo }, prompt: 'x' });
    assert.equal(r.status, 422);
    assert.equal(r.body.error.details.step, 'sandbox');
    assert.match(r.body.error.message, /postCreateCommand/);
    assert.match(r.body.error.message, /missing script: build/);
    const left = (await mine()).filter((c) => !containersBefore.includes(c.id));
    assert.deepEqual(left, [], 'the failed container was removed');
    const sessions = (await alice.request('GET', '/v1/sessions')).body.sessions as { status: string }[];
    assert.equal(sessions.some((s) => s.status === 'failed'), false, 'the empty session was deleted');

    // The async path shows the same failure on the stream, and leaves no container either.
    const a = await alice.start({ repo: { url: repo }, prompt: 'x', autoInitiate: true });
    const stream = await alice.stream(a.body.sessionId);
    const failed = await stream.waitFor(isFailed, 60_000);
    assert.ok(failed.type === 'preparing' && /sandbox: .*postCreateCommand/.test(failed.data.message));
    assert.deepEqual(await containersOf(a.body.sessionId), []);
    await stream.close();
  });

  it('reaps an idle container, then a message re-creates it and continues', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'first', autoInitiate: true });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(turnComplete, 60_000);
    const [before] = await containersOf(body.sessionId);
    assert.ok(before);
    await alice.waitFor(body.sessionId, (s) => s.status === 'sleeping', 20_000);
    assert.deepEqual(await containersOf(body.sessionId), [], 'the idle container was removed');
    const sent = await alice.message(body.sessionId, 'second');
    assert.equal(sent.status, 202);
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === sent.body.turnId, 60_000);
    const [after] = await containersOf(body.sessionId);
    assert.ok(after && after.id !== before.id, 'a new container');
    assert.match(answerOf(stream.events, sent.body.turnId), /docker=yes.*prompt=second/);
    await stream.close();
  });
});
