// The e2e fixture around the browser: a test repository, berth-server, code-server with a fresh
// profile, and a cleanup list that always runs (process groups, the server's containers, temp dirs).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, createWriteStream, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../scripts/free-port.mjs';
export { freePort };

const cleanups = [];

/** Registers `fn` to run at cleanup (last registered runs first). */
export function onCleanup(label, fn) {
  cleanups.push({ label, fn });
}

export async function cleanup() {
  while (cleanups.length) {
    const { label, fn } = cleanups.pop();
    try {
      await fn();
    } catch (err) {
      console.error(`e2e: cleanup of ${label} failed: ${err instanceof Error ? err.message : err}`);
    }
  }
}

export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}


function git(cwd, ...args) {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GIT_AUTHOR_NAME: 'e2e', GIT_AUTHOR_EMAIL: 'e2e@berth.invalid', GIT_COMMITTER_NAME: 'e2e', GIT_COMMITTER_EMAIL: 'e2e@berth.invalid' },
  }).trim();
}

/**
 * A bare repository holding the e2e agent script, and a clone of it (the VS Code workspace, whose
 * `origin` the Start Session command offers). `commitFile` pushes a new file to the bare repo.
 */
export function createTestRepo(root, agentScript) {
  const bare = join(root, 'repo.git');
  const seed = join(root, 'seed');
  const workspace = join(root, 'workspace');
  git(root, 'init', '-q', '--bare', '-b', 'main', bare);
  git(root, 'clone', '-q', bare, seed);
  mkdirSync(join(seed, '.berth'), { recursive: true });
  copyFileSync(agentScript, join(seed, '.berth', 'agent.sh'));
  writeFileSync(join(seed, 'README.md'), '# e2e test repository\n');
  // For the agent's "edit files" turn to delete (e2e/fixtures/agent.sh).
  writeFileSync(join(seed, 'obsolete.txt'), 'this file is deleted by the agent\n');
  git(seed, 'checkout', '-q', '-b', 'main');
  git(seed, 'add', '.');
  git(seed, 'commit', '-q', '-m', 'e2e fixture');
  git(seed, 'push', '-q', 'origin', 'main');
  git(root, 'clone', '-q', bare, workspace);
  return {
    bare,
    workspace,
    commitFile(name, text) {
      mkdirSync(dirname(join(seed, name)), { recursive: true });
      writeFileSync(join(seed, name), text);
      git(seed, 'add', name);
      git(seed, 'commit', '-q', '-m', `add ${name}`);
      git(seed, 'push', '-q', 'origin', 'main');
    },
    removeFiles(path) {
      git(seed, 'rm', '-q', '-r', path);
      git(seed, 'commit', '-q', '-m', `remove ${path}`);
      git(seed, 'push', '-q', 'origin', 'main');
    },

  };
}

/** Spawns `cmd` as the leader of its own process group, logging to `logFile`; killed at cleanup. */
export function spawnGroup(label, cmd, args, { env, logFile, cwd } = {}) {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let stopped = false;
  const stop = async (graceMs = 5000) => {
    if (stopped) return exited;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    killGroup(child.pid, 'SIGKILL'); // whatever the leader left behind in its group
    return exited;
  };
  onCleanup(label, () => stop());
  return { child, exited, stop };
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** Resolves with the first match of `pattern` in the child's stdout+stderr, or rejects on exit/timeout. */
export function waitForOutput(child, pattern, timeoutMs, what) {
  return new Promise((resolveMatch, reject) => {
    let text = '';
    const timer = setTimeout(() => done(new Error(`${what}: no ${pattern} within ${timeoutMs} ms: ${text.slice(-800)}`)), timeoutMs);
    const onData = (chunk) => {
      text += chunk.toString();
      const m = pattern.exec(text);
      if (m) done(null, m);
    };
    const onExit = (code, signal) => done(new Error(`${what} exited (${signal ?? code}): ${text.slice(-800)}`));
    const done = (err, m) => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolveMatch(m);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', onExit);
  });
}

export function dockerAnswers() {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && r.stdout.trim().length > 0;
}

/**
 * berth-server on loopback with a fixed port (so a restart keeps the URL) and its own data dir.
 * The agent is the test repository's script, run in the session's sandbox.
 */
/** The agent of the main e2e server: the repository's own script, run in the sandbox. */
const SCRIPT_AGENT = ['--agent-command', 'sh .berth/agent.sh'];

export function createBerthServer({ cli, dataDir, port, provider, artifacts, agentArgs = SCRIPT_AGENT, name = 'berth-server' }) {
  const token = randomBytes(24).toString('base64url');
  const instance = instanceTag(dataDir);
  const url = `http://127.0.0.1:${port}`;
  let current = null;
  let starts = 0;
  const start = async () => {
    starts++;
    const proc = spawnGroup(
      `berth-server #${starts}`,
      process.execPath,
      [
        cli,
        'serve',
        '--host', '127.0.0.1',
        '--port', String(port),
        '--data-dir', dataDir,
        '--provider', provider,
        '--allow-local-repos',
        // For the refusing http remote of scenario 16 (served by the e2e runner on loopback).
        '--allow-http',
        ...agentArgs,
      ],
      { env: { ...process.env, BERTH_TOKENS: `e2e:${token}` }, logFile: join(artifacts, `${name}.log`) },
    );
    await waitForOutput(proc.child, /listening on (http\S+)/, 30_000, 'berth-server');
    current = proc;
  };
  onCleanup(`containers of berth instance ${instance}`, () => removeContainers(instance));
  return {
    url,
    token,
    instance,
    dataDir,
    cli,
    provider,
    start,
    async stop() {
      await current?.stop(10_000);
      current = null;
    },
    async api(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
  };
}

/** The tag a server puts on its containers (see server/src/config.ts); cleanup removes exactly those. */
export function instanceTag(dataDir) {
  return createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12);
}

export function removeContainers(instance) {
  if (!dockerAnswers()) return;
  const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=berth.instance=${instance}`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
}

/** The settings of the fresh profile: no tips, no AI features, no update checks, the test server. */
function profileSettings(serverUrl) {
  return {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.disableAIFeatures': true,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'telemetry.telemetryLevel': 'off',
    'security.workspace.trust.enabled': false,
    'git.openRepositoryInParentFolders': 'always',
    'berth.serverUrl': serverUrl,
  };
}

/** Writes the profile's settings; VS Code picks a change up while it runs. */
export function writeProfileSettings(data, serverUrl) {
  // `berth.serverUrl` is machine-scoped: the remote (Machine) settings are where VS Code reads it.
  for (const scope of ['User', 'Machine']) {
    mkdirSync(join(data, scope), { recursive: true });
    writeFileSync(join(data, scope, 'settings.json'), JSON.stringify(profileSettings(serverUrl), null, 1));
  }
}

/** A fresh code-server profile (settings, the vsix installed); returns where the extension landed. */
export function createProfile({ node24, codeServer, vsix, runDir, serverUrl }) {
  const config = join(runDir, 'config.yaml');
  const ext = join(runDir, 'ext');
  const data = join(runDir, 'data');
  mkdirSync(ext, { recursive: true });
  writeProfileSettings(data, serverUrl);
  writeFileSync(config, 'auth: none\n'); // always --config: otherwise it writes ~/.config/code-server
  const base = ['--config', config, '--extensions-dir', ext, '--user-data-dir', data];
  const install = spawnSync(node24, [codeServer, ...base, '--install-extension', vsix], { encoding: 'utf8', timeout: 120_000 });
  if (install.status !== 0) throw new Error(`installing the vsix failed: ${install.stdout}${install.stderr}`);
  const { version } = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8'));
  return { base, data, extensionDir: join(ext, `berth.berth-${version}`) };
}

/** code-server (a real VS Code workbench) on the profile, with the workspace open. */
export async function startCodeServer({ node24, codeServer, profile, workspace, port, artifacts }) {
  const { base, data } = profile;
  const proc = spawnGroup(
    'code-server',
    node24,
    [
      codeServer,
      ...base,
      '--auth', 'none',
      '--bind-addr', `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      workspace,
    ],
    { env: { ...process.env }, logFile: join(artifacts, 'code-server.log') },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error('code-server exited; see code-server.log');
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error('code-server did not answer /healthz within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, data, proc };
}

export function readText(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
