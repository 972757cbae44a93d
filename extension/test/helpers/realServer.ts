// Starts the real berth-server (dist/server/cli.js) on loopback with a temp data dir, through the
// extension's own EmbeddedServer, plus a bare git repository with one pushed commit to clone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EmbeddedServer } from '../../src/server/embedded';
import { ApiClient } from '../../src/session/apiClient';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const CLI = join(ROOT, 'dist', 'server', 'cli.js');

/** Builds the bundles if a test file runs on its own (npm test builds them first). */
export function ensureBuilt(): void {
  if (!existsSync(CLI) || !existsSync(join(ROOT, 'dist', 'agent', 'agent-host.mjs'))) {
    execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'inherit' });
  }
}

export interface RealServer {
  server: EmbeddedServer;
  api: ApiClient;
  repoUrl: string;
  tmp: string;
  dataDir: string;
  close(): Promise<void>;
}

export function createBareRepo(dir: string, branch = 'main'): string {
  mkdirSync(dir, { recursive: true });
  const bare = join(dir, 'origin.git');
  const work = join(dir, 'seed');
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.email=test@berth.local', '-c', 'user.name=Berth Test', ...args], { cwd, stdio: 'pipe' });
  git(dir, 'init', '-q', '--bare', '-b', branch, bare);
  git(dir, 'init', '-q', '-b', branch, work);
  writeFileSync(join(work, 'README.md'), '# fixture\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'initial');
  git(work, 'push', '-q', bare, `HEAD:${branch}`);
  return bare;
}

export async function startRealServer(options: { agentCommand?: string; extraArgs?: string[] } = {}): Promise<RealServer> {
  ensureBuilt();
  const tmp = mkdtempSync(join(tmpdir(), 'berth-ext-test-'));
  const dataDir = join(tmp, 'data');
  const repoUrl = createBareRepo(tmp);
  const server = await EmbeddedServer.start({
    nodePath: process.execPath,
    cliPath: CLI,
    dataDir,
    provider: 'local',
    extraArgs: [
      '--allow-local-repos',
      ...(options.agentCommand ? ['--agent-command', options.agentCommand] : []),
      '--log-level',
      'warn',
      ...(options.extraArgs ?? []),
    ],
    startTimeoutMs: 30_000,
  });
  const api = new ApiClient({ baseUrl: server.baseUrl, token: server.token });
  return {
    server,
    api,
    repoUrl,
    tmp,
    dataDir,
    async close() {
      await server.stop();
      // A process the server started may still be finishing a write as it goes: retried, not failed.
      rmSync(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
