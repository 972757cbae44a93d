// Real tests of the Dev Containers CLI wrapper against the real Docker daemon and the locally
// built image berth/base:bookworm (scripts/ensure-docker.sh, scripts/build-images.sh).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import {
  DEFAULT_IMAGE,
  DevcontainerError,
  devcontainerExecArgv,
  devcontainerUp,
  dockerDataRootFreeBytes,
  dockerExecArgv,
  createRedactor,
  listLabelledContainers,
  parseJsonc,
  prepareConfig,
  removeContainer,
  removeSessionContainers,
  runDocker,
  type DevcontainerUpOptions,
  type ExecCommand,
} from '../../src/sandbox/devcontainer/cli.js';
import { UpLogInterpreter } from '../../src/sandbox/devcontainer/progress.js';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker.js';

const notReady = await dockerReadiness();

function dockerOrSkip(t: TestContext): boolean {
  return requireDocker(t, notReady);
}

const root = mkdtempSync(join(tmpdir(), 'berth-dc-test-'));
const sessions = new Set<string>();
function newSession(name: string): string {
  const id = `test-${name}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  sessions.add(id);
  return id;
}

function workspace(name: string, config?: unknown): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'README.md'), `# ${name}\n`);
  if (config !== undefined) {
    mkdirSync(join(dir, '.devcontainer'), { recursive: true });
    // JSONC on purpose: comments and a trailing comma, as real repos have.
    writeFileSync(join(dir, '.devcontainer', 'devcontainer.json'), `// test config\n${JSON.stringify(config, null, 2).replace(/\n}$/, ',\n}')}\n`);
  }
  return dir;
}

interface Recorded {
  progress: string[];
  logs: string[];
}
function recorder(): Recorded & Pick<DevcontainerUpOptions, 'onProgress' | 'onLog'> {
  const progress: string[] = [];
  const logs: string[] = [];
  return {
    progress,
    logs,
    onProgress: (message, detail) => progress.push(detail ? `${message} | ${detail}` : message),
    onLog: (line) => logs.push(line),
  };
}

function run(exec: ExecCommand, input?: string): { stdout: string; stderr: string; status: number | null; ms: number } {
  const started = Date.now();
  const r = spawnSync(exec.command, exec.args, { env: { ...process.env, ...exec.env }, input: input ?? '', encoding: 'utf8', timeout: 60_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status, ms: Date.now() - started };
}

async function containersOf(sessionId: string): Promise<string[]> {
  return (await listLabelledContainers()).filter((c) => c.sessionId === sessionId).map((c) => c.id);
}

/** Processes whose command line mentions the session label: the CLI and the docker clients it spawned. */
function processesOf(sessionId: string): string[] {
  const r = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((line) => line.includes(`berth.session=${sessionId}`))
    .filter((line) => !line.includes(' ps -eo'));
}

after(async () => {
  if (!notReady) for (const id of sessions) await removeSessionContainers(id).catch(() => 0);
  rmSync(root, { recursive: true, force: true });
});

describe('devcontainer CLI wrapper (real Docker)', { concurrency: false }, () => {
  test('a repo with its own devcontainer.json: lifecycle output and progress reach the callbacks', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('repo');
    const secret = `sekret-${Math.random().toString(36).slice(2)}`;
    const dir = workspace('with-config', {
      image: DEFAULT_IMAGE,
      postCreateCommand: 'echo berth-post-create-marker && echo "token=$BERTH_TEST_TOKEN"',
      containerEnv: { BERTH_CONTAINER_ENV: 'container-env-value' },
    });
    const rec = recorder();
    try {
      const result = await devcontainerUp({ sessionId, workspaceFolder: dir, secrets: { BERTH_TEST_TOKEN: secret }, ...rec });
      assert.equal(result.configSource, 'repo');
      assert.equal(result.remoteUser, 'root');
      assert.equal(result.remoteWorkspaceFolder, '/workspaces/with-config');
      assert.match(result.containerId, /^[0-9a-f]{64}$/);
      assert.deepEqual(await containersOf(sessionId), [result.containerId]);

      assert.ok(rec.progress.includes('starting container'), rec.progress.join('\n'));
      assert.ok(
        rec.progress.some((p) => p.startsWith('running postCreateCommand (echo berth-post-create-marker')),
        `progress: ${rec.progress.join('\n')}`,
      );
      assert.ok(rec.logs.includes('berth-post-create-marker'), 'the command output is in the log');
      // The secret reached the command (via --secrets-file; the CLI masks it as ********) but no log line shows it.
      assert.ok(rec.logs.some((l) => /^token=\*{3,}$/.test(l)), rec.logs.filter((l) => l.includes('token')).join('\n'));
      assert.ok(!rec.logs.some((l) => l.includes(secret)), 'secret value leaked into the log');
      assert.ok(!rec.logs.some((l) => l.includes('container-env-value')), 'containerEnv value leaked into the log');

      const inside = run(dockerExecArgv(result.containerId, 'cat', ['README.md'], { user: result.remoteUser, cwd: result.remoteWorkspaceFolder }));
      assert.equal(inside.status, 0, inside.stderr);
      assert.equal(inside.stdout, '# with-config\n');
    } finally {
      await removeSessionContainers(sessionId);
    }
    assert.deepEqual(await containersOf(sessionId), []);
  });

  test('a repo without a config gets the default image; nothing is written into the clone', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('default');
    const dir = workspace('no-config');
    const before = readdirSync(dir).sort();
    const rec = recorder();
    try {
      const result = await devcontainerUp({ sessionId, workspaceFolder: dir, ...rec });
      assert.equal(result.configSource, 'default');
      const image = (await runDocker(['inspect', '--format', '{{.Config.Image}}', result.containerId])).trim();
      assert.equal(image, DEFAULT_IMAGE);
      assert.deepEqual(readdirSync(dir).sort(), before);
      assert.ok(rec.logs.some((l) => l.startsWith(`config: default (image ${DEFAULT_IMAGE})`)), rec.logs.slice(0, 3).join('\n'));
    } finally {
      await removeSessionContainers(sessionId);
    }
  });

  test('a failing postCreateCommand rejects with the description and the command output, and leaves no container', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('fail');
    const dir = workspace('failing', {
      image: DEFAULT_IMAGE,
      // stdout and stderr reach the CLI through separate pipes: the pause keeps their order deterministic.
      postCreateCommand: 'for i in $(seq 1 40); do echo fail-line-$i; done; sleep 0.3; echo fail-reason-on-stderr >&2; exit 7',
    });
    const rec = recorder();
    const error = await devcontainerUp({ sessionId, workspaceFolder: dir, ...rec }).then(
      () => assert.fail('up should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DevcontainerError, String(error));
    assert.equal(error.kind, 'failed');
    assert.equal(error.description, 'postCreateCommand from devcontainer.json failed.');
    assert.match(error.cliMessage ?? '', /^Command failed: .*exit 7/);
    assert.equal(error.lifecycleFailure?.hook, 'postCreateCommand');
    assert.ok(error.outputTail.length > 0 && error.outputTail.length <= 20, `${error.outputTail.length} lines`);
    assert.ok(error.outputTail.includes('fail-reason-on-stderr'), error.outputTail.join('\n'));
    assert.ok(error.outputTail.includes('fail-line-40'), error.outputTail.join('\n'));
    assert.ok(!error.outputTail.includes('fail-line-1'), 'only the last lines are kept');
    assert.match(error.formatForUser(), /postCreateCommand from devcontainer.json failed[\s\S]*fail-reason-on-stderr/);
    assert.match(error.outputTail.at(-1) ?? '', /failed with exit code 7/);
    assert.ok(rec.progress.includes('postCreateCommand failed'), rec.progress.join('\n'));
    assert.match(error.containerId ?? '', /^[0-9a-f]{64}$/, 'the CLI reports the container it created');
    assert.deepEqual(await containersOf(sessionId), [], 'the failed container was removed');
  });

  test('the host Node binary runs inside the minbase container through read-only mounts; exec pipes stdio', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('exec');
    const dir = workspace('exec');
    const shared = join(root, 'shared-exec');
    mkdirSync(shared, { recursive: true });
    const bundle = join(root, 'bundle');
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'host.mjs'), 'process.stdin.setEncoding("utf8"); let s = ""; process.stdin.on("data", (d) => (s += d)); process.stdin.on("end", () => console.log(`${process.version} ${process.env.BERTH_EXEC_VALUE} ${s.trim().toUpperCase()}`));\n');
    const node = realpathSync(process.execPath);
    try {
      const result = await devcontainerUp({
        sessionId,
        workspaceFolder: dir,
        mounts: [
          { source: node, target: '/opt/berth/node/bin/node', readonly: true },
          { source: bundle, target: '/opt/berth/agent', readonly: true },
          { source: shared, target: '/berth/shared' },
        ],
      });
      const opts = { user: result.remoteUser, cwd: result.remoteWorkspaceFolder };

      const version = run(dockerExecArgv(result.containerId, '/opt/berth/node/bin/node', ['-e', 'console.log(process.version)'], opts));
      assert.equal(version.status, 0, version.stderr);
      assert.equal(version.stdout.trim(), process.version);

      // Env values travel via the client's env (-e NAME), not argv; stdin is piped through.
      const secretValue = 'value-not-in-argv';
      const exec = dockerExecArgv(result.containerId, '/opt/berth/node/bin/node', ['/opt/berth/agent/host.mjs'], { ...opts, env: { BERTH_EXEC_VALUE: secretValue } });
      assert.ok(!exec.args.join(' ').includes(secretValue));
      const piped = run(exec, 'hello from stdin\n');
      assert.equal(piped.status, 0, piped.stderr);
      assert.equal(piped.stdout.trim(), `${process.version} ${secretValue} HELLO FROM STDIN`);

      const readOnly = run(dockerExecArgv(result.containerId, 'sh', ['-c', 'echo x > /opt/berth/agent/host.mjs'], opts));
      assert.notEqual(readOnly.status, 0);
      assert.match(readOnly.stderr, /Read-only file system/);
      const nodeMount = (await runDocker(['inspect', '--format', '{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}', result.containerId])).trim();
      assert.match(nodeMount, /\/opt\/berth\/node\/bin\/node=false/);
      assert.match(nodeMount, /\/berth\/shared=true/);

      const write = run(dockerExecArgv(result.containerId, 'sh', ['-c', 'echo from-container > /berth/shared/out.txt'], opts));
      assert.equal(write.status, 0, write.stderr);
      assert.equal(readFileSync(join(shared, 'out.txt'), 'utf8'), 'from-container\n');

      // The exit code passes through.
      assert.equal(run(dockerExecArgv(result.containerId, 'sh', ['-c', 'exit 9'], opts)).status, 9);

      // docker exec vs devcontainer exec: same result, measured.
      const script = ['-e', 'console.log(process.version, process.cwd())'];
      const viaDocker = run(dockerExecArgv(result.containerId, '/opt/berth/node/bin/node', script, opts));
      const viaCli = run(devcontainerExecArgv(result.containerId, '/opt/berth/node/bin/node', script, { cwd: result.remoteWorkspaceFolder }));
      assert.equal(viaCli.status, 0, viaCli.stderr);
      assert.equal(viaCli.stdout, viaDocker.stdout);
      assert.equal(viaDocker.stdout.trim(), `${process.version} ${result.remoteWorkspaceFolder}`);
      t.diagnostic(`exec timing: docker exec ${viaDocker.ms} ms, devcontainer exec ${viaCli.ms} ms`);
    } finally {
      await removeSessionContainers(sessionId);
    }
  });

  test('a timeout kills the CLI and its children and leaves no container', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('timeout');
    const dir = workspace('timeout', { image: DEFAULT_IMAGE, postCreateCommand: 'sleep 600' });
    const started = Date.now();
    const error = await devcontainerUp({ sessionId, workspaceFolder: dir, timeoutMs: 3_000 }).then(
      () => assert.fail('up should have timed out'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DevcontainerError, String(error));
    assert.equal(error.kind, 'timeout');
    assert.match(error.message, /^devcontainer up timed out after 3 s \(last step: running postCreateCommand \(sleep 600\)\)$/);
    assert.ok(Date.now() - started < 15_000, 'the timeout is enforced');
    assert.deepEqual(processesOf(sessionId), [], 'no CLI or docker client process is left');
    assert.deepEqual(await containersOf(sessionId), [], 'no container is left');
  });

  test('a tiny timeout in the middle of container creation still leaves nothing behind', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('tiny');
    const dir = workspace('tiny-timeout');
    const error = await devcontainerUp({ sessionId, workspaceFolder: dir, timeoutMs: 400 }).then(
      () => assert.fail('up should have timed out'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DevcontainerError && error.kind === 'timeout', String(error));
    assert.deepEqual(processesOf(sessionId), []);
    assert.deepEqual(await containersOf(sessionId), []);
  });

  test('an AbortSignal stops up', async (t) => {
    if (!dockerOrSkip(t)) return;
    const sessionId = newSession('abort');
    const dir = workspace('abort', { image: DEFAULT_IMAGE, postCreateCommand: 'sleep 600' });
    const controller = new AbortController();
    const error = await devcontainerUp({
      sessionId,
      workspaceFolder: dir,
      signal: controller.signal,
      onProgress: (message) => {
        if (message.startsWith('running postCreateCommand')) controller.abort();
      },
    }).then(
      () => assert.fail('up should have been aborted'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DevcontainerError && error.kind === 'aborted', String(error));
    assert.deepEqual(processesOf(sessionId), []);
    assert.deepEqual(await containersOf(sessionId), []);
  });

  describe('control-manifest cache on a network that swallows connections', () => {
    // A proxy that accepts connections and never answers: what a firewalled network looks like to the CLI.
    let tarpit: Server;
    const sockets = new Set<Socket>();
    let proxyUrl = '';
    before(async () => {
      tarpit = createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve));
      const address = tarpit.address();
      assert.ok(address && typeof address === 'object');
      proxyUrl = `http://127.0.0.1:${address.port}`;
    });
    after(() => {
      for (const s of sockets) s.destroy();
      tarpit.close();
    });

    function stalledEnv(): NodeJS.ProcessEnv {
      // Own TMPDIR: the CLI's cache lives there, so other runs are not affected.
      const tmp = mkdtempSync(join(root, 'tmp-'));
      return { ...process.env, TMPDIR: tmp, HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl };
    }

    test('without the cache `up` stalls until our timeout; with it, it completes', async (t) => {
      if (!dockerOrSkip(t)) return;
      const dir = workspace('manifest');
      const stalledSession = newSession('nocache');
      const error = await devcontainerUp({ sessionId: stalledSession, workspaceFolder: dir, env: stalledEnv(), skipManifestCache: true, timeoutMs: 5_000 }).then(
        () => assert.fail('up without the cache should stall on the manifest fetch'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof DevcontainerError && error.kind === 'timeout', String(error));
      assert.deepEqual(await containersOf(stalledSession), [], 'it stalled before creating a container');

      const sessionId = newSession('cache');
      const env = stalledEnv();
      try {
        const result = await devcontainerUp({ sessionId, workspaceFolder: dir, env, timeoutMs: 60_000 });
        assert.ok(result.durationMs < 30_000, `took ${result.durationMs} ms`);
        const cacheFile = join(env.TMPDIR!, `devcontainercli-${userInfo().username}`, 'control-manifest.json');
        assert.ok(existsSync(cacheFile), 'the cache is where the CLI reads it');
        t.diagnostic(`up with the manifest cache on the stalled network: ${result.durationMs} ms`);
      } finally {
        await removeSessionContainers(sessionId);
      }
    });
  });

  test('docker helpers: free bytes of the data root, removeContainer of a gone container', async (t) => {
    if (!dockerOrSkip(t)) return;
    const free = await dockerDataRootFreeBytes();
    assert.ok(typeof free === 'number' && free > 0, `free bytes: ${free}`);
    // Removing a container that does not exist is not an error (destroy is idempotent).
    await removeContainer('berth-no-such-container-0000');
  });
});

// These need no Docker: the parsing and redaction the real tests above rely on.
describe('devcontainer CLI output handling (no Docker)', () => {
  test('parseJsonc keeps // inside strings and drops comments and trailing commas', () => {
    const parsed = parseJsonc('{\n  // c\n  "image": "x", /* b */\n  "url": "https://a//b",\n  "list": [1, 2,],\n}\n');
    assert.deepEqual(parsed, { image: 'x', url: 'https://a//b', list: [1, 2] });
  });

  test('the redactor hides secrets, -e values, env maps and env probe dumps', () => {
    const redact = createRedactor(['hunter22']);
    assert.equal(redact('password is hunter22!'), 'password is [redacted]!');
    assert.equal(redact('Run: docker run -e A=1 -e TOKEN=abc --entrypoint /bin/sh'), 'Run: docker run -e A=[redacted] -e TOKEN=[redacted] --entrypoint /bin/sh');
    assert.equal(redact('-l devcontainer.metadata=[{"containerEnv":{"K":"v"},"remoteEnv":{"R":"w"}}]'), '-l devcontainer.metadata=[{"containerEnv":{…},"remoteEnv":{…}}]');
    assert.equal(redact('uuidHOME=/root\u0000TOKEN=abc\u0000uuid'), '[environment redacted]');
    assert.equal(redact('userEnvProbe parsed: {\n "TOKEN": "abc"\n}'), 'userEnvProbe parsed: [environment redacted]');
  });

  test('the log interpreter maps lifecycle events to messages and keeps the failing output', () => {
    const progress: string[] = [];
    const logs: string[] = [];
    const it = new UpLogInterpreter({ onProgress: (m, d) => progress.push(d ? `${m} | ${d}` : m), onLog: (l) => logs.push(l), detailIntervalMs: 0 });
    const events = [
      { type: 'start', level: 2, timestamp: 1, text: 'Starting container' },
      'plain text line from the CLI',
      { type: 'raw', level: 3, timestamp: 2, text: '\u001b[1mRunning the postCreateCommand from devcontainer.json...\u001b[0m\r\n\r\n', channel: 'postCreate' },
      { type: 'progress', name: 'Running postCreateCommand...', status: 'running', stepDetail: 'npm ci', channel: 'postCreate' },
      { type: 'raw', level: 3, timestamp: 3, text: 'added 3 packages\nnpm ERR! boom\n', channel: 'postCreate' },
      { type: 'progress', name: 'Running postCreateCommand...', status: 'failed', channel: 'postCreate' },
    ];
    for (const e of events) it.handleLine(typeof e === 'string' ? e : JSON.stringify(e));
    it.handleLine('{not json');
    assert.deepEqual(progress, ['starting container', 'running postCreateCommand (npm ci)', 'running postCreateCommand (npm ci) | npm ERR! boom', 'postCreateCommand failed']);
    assert.deepEqual(it.lifecycleFailure, { hook: 'postCreateCommand', command: 'npm ci', outputTail: ['added 3 packages', 'npm ERR! boom'] });
    assert.ok(logs.includes('plain text line from the CLI'));
    assert.ok(logs.includes('{not json'));
    assert.ok(logs.includes('> Starting container'));
  });

  test('prepareConfig: no override for a repo config without mounts; mounts are appended, readonly kept', async () => {
    const dir = workspace('prepare', { image: 'custom:1', mounts: ['type=volume,source=v,target=/v'] });
    const configDir = join(root, 'prepare-config');
    assert.deepEqual(await prepareConfig({ workspaceFolder: dir, configDir }), {
      source: 'repo',
      repoConfigPath: join(dir, '.devcontainer', 'devcontainer.json'),
      overrideConfigPath: null,
      effective: { image: 'custom:1', mounts: ['type=volume,source=v,target=/v'] },
    });
    const prepared = await prepareConfig({ workspaceFolder: dir, configDir, mounts: [{ source: '/usr/bin/node', target: '/opt/n', readonly: true }] });
    assert.equal(prepared.overrideConfigPath, join(configDir, 'devcontainer.json'));
    const written = JSON.parse(readFileSync(prepared.overrideConfigPath, 'utf8')) as { image: string; mounts: string[] };
    assert.equal(written.image, 'custom:1');
    assert.deepEqual(written.mounts, ['type=volume,source=v,target=/v', 'type=bind,source=/usr/bin/node,target=/opt/n,readonly']);
    await assert.rejects(prepareConfig({ workspaceFolder: dir, configDir, mounts: [{ source: '/a,b', target: '/x' }] }), /contains ,/);
  });
});
