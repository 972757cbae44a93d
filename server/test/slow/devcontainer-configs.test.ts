// Dev containers as users write them (real Docker): configs shaped like the Dev Containers CLI's
// own test configurations (src/test/configs of devcontainers/cli: image, dockerfile-without-
// features, dockerfile-with-parallel-commands, image-with-mounts, dockerfile-with-target), made to
// run offline on the local base image; plus the failures a new user meets, as the user sees them.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { SessionView } from '@berth/protocol';
import { DEFAULT_IMAGE, IMAGE_REPOSITORY, pruneImages, runDocker } from '../../src/sandbox/devcontainer/cli';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess } from '../../src/util/process';
import { answerOf, isFailed, isReady, makeRepo, startTestServer, turnComplete, type ApiClient, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();

/** The agent: the prompt is a shell command run in the workspace (inside the container). */
const AGENT = 'sh -c "$(cat)"';

describe('dev containers as users write them (real Docker)', { concurrency: false }, () => {
  let t: TestServer;
  let alice: ApiClient;
  before(async () => {
    if (notReady) return;
    t = await startTestServer({ provider: 'devcontainer', agentCommand: AGENT });
    alice = t.api('alice');
  });
  after(async () => t?.close());

  /** Starts a session whose first prompt is a shell command; resolves with its answer (or the failure). */
  async function run(repo: string, command: string, extra: Record<string, unknown> = {}): Promise<{ id: string; answer: string; view: SessionView; events: string[] }> {
    const { body, status } = await alice.start({ repo: { url: repo }, prompt: command, autoInitiate: true, ...extra });
    assert.equal(status, 202, JSON.stringify(body));
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    const end = await stream.waitFor((e) => isReady(e) || isFailed(e), 120_000, 'the end of preparation');
    if (isReady(end)) await stream.waitFor(turnComplete, 60_000);
    const view = (await alice.get(id)).body;
    const events = stream.events.flatMap((e) => (e.type === 'preparing' ? [`${e.data.step}:${e.data.state}:${e.data.message}`] : []));
    await stream.close();
    return { id, answer: answerOf(stream.events), view, events };
  }

  const ok = (ctx: TestContext) => requireDocker(ctx, notReady);

  it('"image": remoteEnv (escaping kept, ${containerEnv:…} resolved) and containerEnv reach the agent, setup and lifecycle commands', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({
      '.devcontainer.json': JSON.stringify({
        image: DEFAULT_IMAGE,
        postCreateCommand: 'echo "Val: $TEST" > /tmp/postCreateCommand.txt',
        containerEnv: { TEST_CE: 'TEST_VALUE3' },
        remoteEnv: {
          TEST: 'ENV',
          TEST_ESCAPING: '{\n  "fo$o": "ba\'r"\n}',
          CONTAINER_PATH: '${containerEnv:PATH}',
          TEST_RE: '${containerEnv:TEST_CE}',
          WITH_DEFAULT: '${containerEnv:NOT_SET:fallback}',
        },
      }),
    });
    const { answer, view } = await run(
      repo,
      'cat /tmp/postCreateCommand.txt; echo "TEST=$TEST"; echo "TEST_CE=$TEST_CE"; echo "TEST_RE=$TEST_RE"; echo "DEFAULT=$WITH_DEFAULT"; printf "%s" "$TEST_ESCAPING" | od -c | head -1; echo "CPATH=$CONTAINER_PATH"; cat setup-saw.txt',
      { setup: ['echo "setup TEST=$TEST" > setup-saw.txt'] },
    );
    assert.equal(view.status, 'ready', JSON.stringify(view.lastError));
    assert.match(answer, /^Val: ENV$/m, 'postCreateCommand saw remoteEnv');
    assert.match(answer, /^TEST=ENV$/m, 'the agent sees remoteEnv');
    assert.match(answer, /^TEST_CE=TEST_VALUE3$/m, 'the agent sees containerEnv');
    assert.match(answer, /^TEST_RE=TEST_VALUE3$/m, '${containerEnv:…} resolved');
    assert.match(answer, /^DEFAULT=fallback$/m);
    assert.match(answer, /\{\s+\\n/, 'multi-line values intact');
    assert.match(answer, /^CPATH=\/.*bin/m, 'the container PATH, not the literal reference');
    assert.match(answer, /^setup TEST=ENV$/m, 'setup commands see remoteEnv');
  });

  it('"dockerfile-without-features": a root config and one in a subfolder: unnamed, the start fails with the list; named, it builds from the subfolder', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({
      '.devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile', args: { VARIANT: 'root' } } }),
      Dockerfile: `FROM ${DEFAULT_IMAGE}\nARG VARIANT\nRUN echo "$VARIANT" > /variant\n`,
      '.devcontainer/subfolder/devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile', args: { VARIANT: 'subfolder' } }, remoteEnv: { TEST: 'ENV' } }),
      '.devcontainer/subfolder/Dockerfile': `FROM ${DEFAULT_IMAGE}\nARG VARIANT\nRUN echo "from-subfolder-$VARIANT" > /variant\n`,
    });
    const unnamed = await run(repo, 'cat /variant');
    assert.equal(unnamed.view.status, 'failed');
    assert.equal(unnamed.view.lastError?.code, 'config_invalid');
    assert.equal(
      unnamed.view.lastError?.message,
      'the repository has several dev container configs: .devcontainer.json, .devcontainer/subfolder/devcontainer.json; name the one to use when you start the session',
    );
    const named = await run(repo, 'cat /variant; echo "TEST=$TEST"', { devcontainer: '.devcontainer/subfolder/devcontainer.json' });
    assert.equal(named.view.status, 'ready', JSON.stringify(named.view.lastError));
    assert.equal(named.view.devcontainer, '.devcontainer/subfolder/devcontainer.json');
    assert.match(named.answer, /^from-subfolder-subfolder$/m);
    assert.match(named.answer, /^TEST=ENV$/m);
    const missing = await alice.start({ repo: { url: repo }, prompt: 'x', autoInitiate: true, devcontainer: '../outside/devcontainer.json' });
    assert.equal(missing.status, 400, 'a path out of the repository is refused at the start');
    const absent = await run(repo, 'true', { devcontainer: '.devcontainer/nope/devcontainer.json' });
    assert.equal(absent.view.lastError?.code, 'config_invalid');
    assert.match(absent.view.lastError?.message ?? '', /^the dev container config \.devcontainer\/nope\/devcontainer\.json is not in the repository \(it has \.devcontainer\.json, \.devcontainer\/subfolder\/devcontainer\.json\)$/);
  });

  it('"dockerfile-with-parallel-commands": object-form lifecycle commands all run, before the agent', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({
      '.devcontainer.json': JSON.stringify({
        build: { dockerfile: 'Dockerfile' },
        postCreateCommand: { one: 'touch /tmp/postCreateCommand1.testmarker; echo one >> /tmp/runs.log', two: 'touch /tmp/postCreateCommand2.testmarker; echo two >> /tmp/runs.log' },
        postStartCommand: { one: 'touch /tmp/postStartCommand1.testmarker', two: 'touch /tmp/postStartCommand2.testmarker' },
        postAttachCommand: { one: 'touch /tmp/postAttachCommand1.testmarker' },
      }),
      Dockerfile: `FROM ${DEFAULT_IMAGE}\n`,
    });
    const { answer: runs } = await run(repo, 'sort /tmp/runs.log; pwd');
    assert.deepEqual(runs.trim().split('\n'), ['one', 'two', runs.trim().split('\n')[2]], 'each command ran once');
    assert.match(runs, /\/workspaces\/ses_/, 'in the workspace');
    const { answer, view } = await run(repo, 'ls /tmp/*.testmarker | xargs -n1 basename');
    assert.equal(view.status, 'ready', JSON.stringify(view.lastError));
    assert.deepEqual(answer.trim().split('\n').sort(), [
      'postAttachCommand1.testmarker',
      'postCreateCommand1.testmarker',
      'postCreateCommand2.testmarker',
      'postStartCommand1.testmarker',
      'postStartCommand2.testmarker',
    ]);
  });

  it('"image-with-mounts": an anonymous volume is allowed', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, mounts: [{ target: '/home/test_devcontainer_config', type: 'volume' }] }) });
    const { answer, view } = await run(repo, 'touch /home/test_devcontainer_config/x && echo volume-ok');
    assert.equal(view.status, 'ready', JSON.stringify(view.lastError));
    assert.match(answer, /volume-ok/);
  });

  it('a non-root remoteUser: the agent runs as that user and can change the work tree; the checkpoint has its work', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({
      '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile' }, remoteUser: 'dev' }),
      '.devcontainer/Dockerfile': `FROM ${DEFAULT_IMAGE}\nRUN useradd -m -u 1234 dev\n`,
      'README.md': '# owned\n',
    });
    const { answer, view } = await run(repo, 'id -un; echo changed >> README.md && echo wrote', { setup: ['id -un > setup-user.txt'] });
    assert.equal(view.status, 'ready', JSON.stringify(view.lastError));
    assert.match(answer, /^dev$/m);
    assert.match(answer, /^wrote$/m);
    const changes = (await alice.get(view.id)).body.changes;
    assert.deepEqual(changes?.files.map((f) => f.path).sort(), ['README.md', 'setup-user.txt']);
  });

  it('"dockerfile-with-target": build target and args kept; build options dropped, and the chat is told', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({
      '.devcontainer.json': JSON.stringify({
        build: { dockerfile: 'Dockerfile', target: 'desired-image', args: { VARIANT: 'v1' }, options: ['--label', 'test_build_options=success'] },
        postCreateCommand: 'touch /tmp/postCreateCommand.testmarker',
      }),
      Dockerfile: `FROM ${DEFAULT_IMAGE} AS other\nRUN echo other > /stage\nFROM ${DEFAULT_IMAGE} AS desired-image\nARG VARIANT\nRUN echo "desired-$VARIANT" > /stage\n`,
    });
    const { answer, view, events } = await run(repo, 'cat /stage; ls /tmp/postCreateCommand.testmarker');
    assert.equal(view.status, 'ready', JSON.stringify(view.lastError));
    assert.match(answer, /^desired-v1$/m);
    const sandboxDone = events.find((e) => e.startsWith('sandbox:done:'));
    assert.match(sandboxDone ?? '', /ignored in the repo's config \(they would reach the host\): build\.options/, 'the dropped setting is shown with the step');
    assert.ok(events.some((e) => /^sandbox:started:ignoring build\.options from the repo's config/.test(e)), 'and in the live progress');
  });

  it('built images are named per repository and config, reused by the next session, and pruned when unused', async (ctx) => {
    if (!ok(ctx)) return;
    const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile' } }), '.devcontainer/Dockerfile': `FROM ${DEFAULT_IMAGE}\nRUN echo built > /built\n` });
    const first = await run(repo, 'cat /built');
    const second = await run(repo, 'cat /built');
    assert.match(first.answer, /built/);
    assert.match(second.answer, /built/);
    const images = (await runDocker(['images', '--format', '{{.Repository}}:{{.Tag}}'])).split('\n');
    assert.deepEqual(images.filter((i) => i.includes(first.id.toLowerCase()) || i.includes(second.id.toLowerCase())), [], 'no per-session image is left');
    const log = String((await alice.request('GET', `/v1/sessions/${second.id}/log`)).body);
    assert.match(log, /Using cache|CACHED/, 'the second build reused the first one\'s layers');
    const containerImage = async (id: string) => {
      const ref = (await t.server.ctx.store.getSession(id))?.sandbox;
      assert.ok(ref?.provider === 'devcontainer', 'the session has its container');
      return (JSON.parse(await runDocker(['inspect', ref.containerId])) as { Image: string }[])[0]!.Image;
    };
    const [image1, image2] = [await containerImage(first.id), await containerImage(second.id)];
    const named = (await runDocker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).split('\n').filter((l) => l.startsWith(`${IMAGE_REPOSITORY}/`) && (l.endsWith(image1) || l.endsWith(image2)));
    assert.equal(named.length, 1, `one image per repository and config: ${named.join(', ')}`);
    // Both sessions gone, the image unused: the prune removes it.
    for (const id of [first.id, second.id]) assert.equal((await alice.request('DELETE', `/v1/sessions/${id}`)).status, 204);
    const removed = await t.server.ctx.provider.pruneBuilt!(0);
    assert.ok(removed.length >= 1, `pruned: ${removed.join(', ')}`);
    const left = (await runDocker(['images', '--format', '{{.ID}}', '--no-trunc'])).split('\n');
    assert.ok(!left.includes(image1) && !left.includes(image2), 'both builds are gone');
  });

  it('a build in progress (still untagged) is never taken for a left-over by the prune', async (ctx) => {
    if (!ok(ctx)) return;
    const tag = `berth-test-dangling:${process.pid}`;
    const build = (n: number) =>
      runProcess('docker', ['build', '-q', '-t', tag, '--label', 'devcontainer.metadata=[]', '--label', `n=${n}-${Date.now()}`, '-'], {
        timeoutMs: 60_000,
        input: `FROM ${DEFAULT_IMAGE}\n`,
        collectStdout: 4096,
      });
    const first = (await build(1)).stdout.toString().trim();
    await build(2); // takes the tag: the first is dangling now, as a build is before its tag
    const images = () => runDocker(['images', '-q', '--no-trunc']).then((out) => out.split('\n'));
    assert.ok((await images()).includes(first), 'the first build is there, untagged');
    const stamps = mkdtempSync(join(tmpdir(), 'berth-stamps-'));
    await pruneImages(stamps, 14 * 86_400_000);
    assert.ok((await images()).includes(first), 'a fresh untagged image is left alone');
    await new Promise((r) => setTimeout(r, 1100)); // Docker's `until` counts whole seconds
    await pruneImages(stamps, 0);
    assert.ok(!(await images()).includes(first), 'an old enough one is removed');
    await runDocker(['rmi', tag]).catch(() => {});
  });

  it('failures a new user meets: a short first line with a code, no server paths, no stack frames', async (ctx) => {
    if (!ok(ctx)) return;
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { 'ghcr.io/devcontainers/features/node:1': {} } }) }, 'feature_unavailable', /^feature ghcr\.io\/devcontainers\/features\/node:1 could not be downloaded: ghcr\.io is unreachable from the server$/],
      [{ '.devcontainer/devcontainer.json': JSON.stringify({ image: 'mcr.microsoft.com/devcontainers/base:ubuntu' }) }, 'image_unavailable', /^image mcr\.microsoft\.com\/devcontainers\/base:ubuntu is not available on the server and cannot be pulled/],
      [{ '.devcontainer/devcontainer.json': '{ "image": oops }' }, 'config_invalid', /^the dev container config is not valid: \.devcontainer\/devcontainer\.json is not valid JSON/],
      [{ '.devcontainer/devcontainer.json': JSON.stringify({ dockerComposeFile: 'compose.yml', service: 'app' }) }, 'config_unsupported', /^Docker Compose dev containers are not supported/],
      [{ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, postCreateCommand: 'echo about to fail; exit 3' }) }, 'lifecycle_failed', /^postCreateCommand failed with exit code 3: echo about to fail; exit 3\n {2}about to fail$/],
      [{ '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: 'Dockerfile' } }), '.devcontainer/Dockerfile': `FROM ${DEFAULT_IMAGE}\nRUN echo building && false\n` }, 'sandbox_failed', /^the dev container image could not be built: RUN echo building && false exited with code 1\n {2}building$/],
      [{ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { './nope': {} } }) }, 'config_invalid', /^local feature \.\/nope has no devcontainer-feature\.json in the repository$/],
    ];
    for (const [files, code, message] of cases) {
      const { view, id } = await run(makeRepo(files), 'true');
      assert.equal(view.status, 'failed', JSON.stringify(view));
      assert.equal(view.lastError?.step, 'sandbox');
      assert.equal(view.lastError?.code, code, JSON.stringify(view.lastError));
      assert.match(view.lastError?.message ?? '', message);
      const text = view.lastError?.message ?? '';
      assert.ok(!text.includes(t.dataDir) && !/\/tmp\//.test(text), `no server path: ${text}`);
      assert.ok(!/^\s+at /m.test(text), `no stack frame: ${text}`);
      const log = String((await alice.request('GET', `/v1/sessions/${id}/log`)).body);
      assert.ok(log.length > text.length, 'the whole CLI output stays in the session log');
    }
  });
});
