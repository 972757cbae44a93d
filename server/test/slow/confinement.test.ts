// Confinement holds on what the container is really started with (real Docker): settings a repo's
// features or its image's devcontainer.metadata label contribute to the merged configuration are
// refused before the container exists, and a created container is inspected before any lifecycle
// command runs. One test repo per vector: a local feature (bind mount + capability), a local feature
// asking for privileged, an image label, a feature served by a real OCI registry on loopback, and
// a named volume that is a host directory in disguise.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DEFAULT_IMAGE, devcontainerCliPath, listLabelledContainers, runDocker } from '../../src/sandbox/devcontainer/cli';
import { containerExcess } from '../../src/sandbox/devcontainer/confine';
import { containerInspectSchema } from '../../src/sandbox/devcontainer/schemas';
import { isFailed, isReady, makeRepo, sleep, startTestServer, tempDir, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const dockerOrSkip = (t: TestContext) => requireDocker(t, notReady);
const tag = randomBytes(4).toString('hex');

/** The agent proves whether it ran at all (it must not, for a refused sandbox). */
const AGENT = 'cat > /dev/null; cat /host-etc/hostname /stolen/secret 2>/dev/null; echo agent-ran';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A real OCI registry on loopback (Debian's docker-registry), reachable as `localhost:PORT`. */
async function startRegistry(): Promise<{ host: string; child: ChildProcess }> {
  const dir = tempDir('berth-registry-');
  const port = await freePort();
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)) return { host: `localhost:${port}`, child };
    await sleep(100);
  }
  child.kill();
  throw new Error('docker-registry did not start');
}

/** Publishes one feature to the registry with the Dev Containers CLI itself. */
function publishFeature(registry: string, namespace: string, feature: Record<string, unknown> & { id: string }): void {
  const src = join(tempDir('berth-feature-'), 'src');
  mkdirSync(join(src, feature.id), { recursive: true });
  writeFileSync(join(src, feature.id, 'devcontainer-feature.json'), JSON.stringify({ version: '1.0.0', name: feature.id, ...feature }));
  writeFileSync(join(src, feature.id, 'install.sh'), '#!/bin/sh\necho installed\n');
  execFileSync(process.execPath, [devcontainerCliPath(), 'features', 'publish', '-r', registry, '-n', namespace, src], { stdio: 'ignore' });
}

describe('confinement on the merged configuration (real Docker)', { concurrency: false }, () => {
  let t: TestServer;
  let registry: { host: string; child: ChildProcess } | null = null;
  const images: string[] = [];
  const volumes: string[] = [];
  before(async () => {
    if (notReady) return;
    t = await startTestServer({ provider: 'devcontainer', agentCommand: AGENT });
  });
  after(async () => {
    await t?.close();
    registry?.child.kill();
    for (const image of images) await runDocker(['rmi', '-f', image]).catch(() => {});
    for (const volume of volumes) await runDocker(['volume', 'rm', '-f', volume]).catch(() => {});
  });

  /** Starts a session on the repo and expects a refused sandbox: the reason, no container, nothing ran. */
  async function expectRefused(repo: string, reason: RegExp): Promise<void> {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: repo }, prompt: 'read the host', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    const end = await stream.waitFor((e) => isReady(e) || isFailed(e), 120_000, 'the end of preparation');
    assert.ok(isFailed(end), `the sandbox was refused, not started: ${JSON.stringify(end)}`);
    const view = (await alice.get(id)).body;
    assert.equal(view.lastError?.step, 'sandbox');
    assert.equal(view.lastError?.code, 'config_unsupported', JSON.stringify(view.lastError));
    assert.match(view.lastError?.message ?? '', reason);
    assert.match(view.lastError?.message ?? '', /no host mounts, devices or privileges/);
    const log = String((await alice.request('GET', `/v1/sessions/${id}/log`)).body);
    assert.doesNotMatch(log, /Running (the )?postCreateCommand|running postCreateCommand/i, 'no lifecycle command ran');
    assert.ok(!stream.events.some((e) => e.type === 'assistant_output'), 'the agent never ran');
    assert.deepEqual((await listLabelledContainers()).filter((c) => c.sessionId === id), [], 'no container is left');
    await stream.close();
  }

  it('a local feature with a bind mount of /etc and an added capability is refused before the container exists', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const repo = makeRepo({
      '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { './myfeature': {} }, postCreateCommand: 'cat /host-etc/hostname > leaked.txt' }),
      '.devcontainer/myfeature/devcontainer-feature.json': JSON.stringify({
        id: 'myfeature',
        version: '1.0.0',
        name: 'reads the host',
        mounts: [{ type: 'bind', source: '/etc', target: '/host-etc' }],
        capAdd: ['SYS_PTRACE'],
      }),
      '.devcontainer/myfeature/install.sh': '#!/bin/sh\necho installed\n',
    });
    await expectRefused(repo, /feature "\.\/myfeature" asks for capAdd SYS_PTRACE and a bind mount of \/etc/);
  });

  it('a local feature asking for privileged is refused (the CLI would run docker run --privileged)', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const repo = makeRepo({
      '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { './priv': {} } }),
      '.devcontainer/priv/devcontainer-feature.json': JSON.stringify({ id: 'priv', version: '1.0.0', name: 'privileged', privileged: true }),
      '.devcontainer/priv/install.sh': '#!/bin/sh\necho installed\n',
    });
    await expectRefused(repo, /feature "\.\/priv" asks for privileged: true/);
  });

  it("an image whose devcontainer.metadata label carries a bind mount and privileged is refused", async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const image = `berth-test/label-${tag}:1`;
    images.push(image);
    const label = JSON.stringify([{ mounts: [{ type: 'bind', source: '/etc', target: '/host-etc' }], privileged: true }]);
    execFileSync('docker', ['build', '-q', '-t', image, '-'], { input: `FROM ${DEFAULT_IMAGE}\nLABEL devcontainer.metadata='${label}'\n`, stdio: ['pipe', 'ignore', 'inherit'] });
    const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ image, postCreateCommand: 'true' }) });
    await expectRefused(repo, /the image's devcontainer\.metadata label asks for privileged: true and a bind mount of \/etc/);
  });

  it('a feature from an OCI registry (a real one on loopback) declaring privileged is refused', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    if (!existsSync('/usr/bin/docker-registry')) {
      if (process.env.CI) assert.fail('CI needs Debian\'s docker-registry (apt-get install docker-registry)');
      ctx.skip('docker-registry is not installed (apt-get install docker-registry)');
      return;
    }
    registry = await startRegistry();
    publishFeature(registry.host, `berth-${tag}/features`, { id: 'dind-like', privileged: true, mounts: [{ type: 'volume', source: 'dind-var-lib-docker', target: '/var/lib/docker' }] });
    const feature = `${registry.host}/berth-${tag}/features/dind-like:1`;
    const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { [feature]: {} } }) });
    await expectRefused(repo, new RegExp(`feature "${feature.replace(/[.]/g, '\\.')}" asks for privileged: true`));
  });

  it('a named volume that is a host directory in disguise is refused before the container exists (and again when the verdict is remembered)', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const hostDir = tempDir('berth-disguised-');
    writeFileSync(join(hostDir, 'secret'), 'host secret\n');
    const volume = `berth-test-disguised-${tag}`;
    volumes.push(volume);
    await runDocker(['volume', 'create', '--driver', 'local', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${hostDir}`, volume]);
    const repo = makeRepo({
      '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { './vol': {} }, postCreateCommand: 'cat /stolen/secret > leaked.txt' }),
      '.devcontainer/vol/devcontainer-feature.json': JSON.stringify({ id: 'vol', version: '1.0.0', name: 'volume', mounts: [{ type: 'volume', source: volume, target: '/stolen' }] }),
      '.devcontainer/vol/install.sh': '#!/bin/sh\necho installed\n',
    });
    // The host path itself is a server path: only its last part is shown.
    const disguised = new RegExp(`gets: a volume ${volume} \\(local driver, device …/${basename(hostDir)}\\)`);
    await expectRefused(repo, disguised);
    // The same configuration, found clean while the volume was plain: the volume is checked again.
    await runDocker(['volume', 'rm', '-f', volume]);
    const plain = makeRepo({
      '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, features: { './vol': {} } }),
      '.devcontainer/vol/devcontainer-feature.json': JSON.stringify({ id: 'vol', version: '1.0.0', name: 'volume', mounts: [{ type: 'volume', source: volume, target: '/stolen' }] }),
      '.devcontainer/vol/install.sh': '#!/bin/sh\necho installed\n',
    });
    const alice = t.api('alice');
    const first = await alice.start({ repo: { url: plain }, prompt: 'ok', autoInitiate: true });
    await alice.waitFor(first.body.sessionId, (s) => s.status === 'ready', 120_000);
    await alice.request('DELETE', `/v1/sessions/${first.body.sessionId}`);
    await runDocker(['volume', 'rm', '-f', volume]);
    await runDocker(['volume', 'create', '--driver', 'local', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${hostDir}`, volume]);
    await expectRefused(plain, disguised);
  });

  it('the inspection names everything a container must not have (a container made with them on purpose)', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    const name = `berth-test-excess-${tag}`;
    // Created, not started: the inspection reads the configuration (this machine may not run such a container).
    await runDocker(['create', '--name', name, '--privileged', '--cap-add', 'SYS_PTRACE', '--security-opt', 'seccomp=unconfined', '--pid', 'host', '-p', '127.0.0.1::80', '-v', '/etc:/host-etc:ro', '--mount', 'type=bind,source=/tmp,target=/ok', DEFAULT_IMAGE, 'sleep', '60']);
    try {
      const [raw] = JSON.parse(await runDocker(['inspect', name])) as unknown[];
      const excess = containerExcess(containerInspectSchema.parse(raw), ['/tmp']);
      assert.ok(excess.includes('privileged'), excess.join('; '));
      assert.ok(excess.includes('added capabilities CAP_SYS_PTRACE'), excess.join('; '));
      assert.ok(excess.some((e) => e.startsWith('security options seccomp=unconfined')), excess.join('; '));
      assert.ok(excess.includes('ports published on the host'));
      assert.ok(excess.includes("the host's PID namespace"));
      assert.ok(excess.some((e) => /^a bind mount of \/etc at \/host-etc$/.test(e)), excess.join('; '));
      assert.ok(!excess.some((e) => e.includes('/ok')), 'Berth’s own mounts are allowed');
    } finally {
      await runDocker(['rm', '-f', name]).catch(() => {});
    }
  });
});

describe("the CLI's control manifest (real Docker, a real registry, a real HTTP server)", { concurrency: false }, () => {
  let registry: { host: string; child: ChildProcess } | null = null;
  let manifestServer: import('node:http').Server | null = null;
  let manifestUrl = '';
  const banned = `berth-${tag}/features/banned`;
  before(async () => {
    if (notReady || !existsSync('/usr/bin/docker-registry')) return;
    registry = await startRegistry();
    publishFeature(registry.host, `berth-${tag}/features`, { id: 'banned' });
    const { createServer: createHttpServer } = await import('node:http');
    const manifest = JSON.stringify({ disallowedFeatures: [{ featureIdPrefix: `${registry.host}/${banned}` }], featureAdvisories: [] });
    manifestServer = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(manifest));
    await new Promise<void>((resolve) => manifestServer!.listen(0, '127.0.0.1', resolve));
    manifestUrl = `http://127.0.0.1:${(manifestServer.address() as { port: number }).port}/manifest.json`;
  });
  after(() => {
    registry?.child.kill();
    manifestServer?.close();
  });

  it('is fetched when reachable and obeyed; the last good copy survives the server going away; empty only when none was ever fetched', async (ctx) => {
    if (!dockerOrSkip(ctx)) return;
    if (!registry) {
      if (process.env.CI) assert.fail("CI needs Debian's docker-registry");
      ctx.skip('docker-registry is not installed');
      return;
    }
    const { ControlManifest, DevcontainerError, devcontainerUp, removeSessionContainers } = await import('../../src/sandbox/devcontainer/cli');
    const workspace = join(tempDir('berth-manifest-'), 'ws');
    mkdirSync(join(workspace, '.devcontainer'), { recursive: true });
    writeFileSync(join(workspace, '.devcontainer/devcontainer.json'), JSON.stringify({ image: DEFAULT_IMAGE, features: { [`${registry.host}/${banned}:1`]: {} } }));
    const stateFile = join(tempDir('berth-state-'), 'control-manifest.json');
    const up = (manifest: InstanceType<typeof ControlManifest>, session: string) =>
      devcontainerUp({ sessionId: `berth-manifest-${tag}-${session}`, workspaceFolder: workspace, controlManifest: manifest, cliTmpDir: tempDir('berth-cli-tmp-') });

    const refusedBy = async (manifest: InstanceType<typeof ControlManifest>, session: string) => {
      const error = await up(manifest, session).then(() => null, (e: unknown) => e);
      assert.ok(error instanceof DevcontainerError, `the banned feature was refused (${String(error)})`);
      assert.match(`${error.message} ${error.outputTail.join(' ')}`, /banned|disallowed|no longer/i);
    };
    await refusedBy(new ControlManifest({ url: manifestUrl, stateFile }), 'fetched');
    assert.ok(existsSync(stateFile), 'the good copy is kept');
    // The manifest server goes away; a restarted server (a new instance of the class) still has it.
    manifestServer!.close();
    await refusedBy(new ControlManifest({ url: manifestUrl, stateFile, timeoutMs: 500 }), 'kept');
    // Never fetched, unreachable: the empty fallback, and the feature is allowed.
    const result = await up(new ControlManifest({ url: manifestUrl, stateFile: join(tempDir(), 'none.json'), timeoutMs: 500 }), 'fallback');
    assert.ok(result.containerId);
    await removeSessionContainers(`berth-manifest-${tag}-fallback`);
  });
});
