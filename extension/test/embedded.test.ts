// The embedded local server: started and stopped by the extension's own EmbeddedServer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirInUseError, EmbeddedServer, findRunningServer } from '../src/server/embedded';
import { ApiClient } from '../src/session/apiClient';
import { CLI, ensureBuilt } from './helpers/realServer';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('EmbeddedServer', () => {
  it('starts berth-server on loopback, reads its token, answers, and stops on request', async () => {
    ensureBuilt();
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-embedded-'));
    try {
      const server = await EmbeddedServer.start({
        nodePath: process.execPath,
        cliPath: CLI,
        dataDir,
        provider: 'local',
        env: { ...process.env, BERTH_TOKENS: 'someone:else-token-value' },
      });
      assert.match(server.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(server.token.length >= 16);
      assert.equal(statSync(join(dataDir, 'token')).mode & 0o077, 0, 'the token file is private');
      const sessions = await new ApiClient({ baseUrl: server.baseUrl, token: server.token }).listSessions();
      assert.deepEqual(sessions, []);
      const pid = server.pid!;
      assert.ok(alive(pid));
      // A second window finds it through server.json instead of starting another one.
      assert.deepEqual(await findRunningServer(dataDir), { baseUrl: server.baseUrl, token: server.token, pid });
      // One that starts anyway (a race between windows) is told, typed, who holds the data dir.
      const second = EmbeddedServer.start({ nodePath: process.execPath, cliPath: CLI, dataDir, provider: 'local' });
      await assert.rejects(second, (err: unknown) => err instanceof DataDirInUseError && err.pid === pid);
      await server.stop();
      assert.equal(server.running, false);
      assert.equal(alive(pid), false);
      assert.equal(await findRunningServer(dataDir), null, 'a stopped server is not offered');
      writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ pid, url: server.baseUrl }));
      assert.equal(await findRunningServer(dataDir), null, 'nor one whose process is gone');
      writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ pid: process.pid, url: 'http://example.com:80' }));
      assert.equal(await findRunningServer(dataDir), null, 'only loopback URLs are trusted');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('reports a server that cannot start, with its reason', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-embedded-'));
    try {
      await assert.rejects(
        EmbeddedServer.start({ nodePath: process.execPath, cliPath: join(dataDir, 'missing-cli.js'), dataDir, provider: 'local', startTimeoutMs: 10_000 }),
        /exited|Cannot find module/,
      );
      await assert.rejects(
        EmbeddedServer.start({ nodePath: join(dataDir, 'no-node'), cliPath: CLI, dataDir, provider: 'local' }),
        /cannot run/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('EmbeddedServer lifetime', () => {
  it('the server exits by itself when the process that started it dies (no orphan holds the data lock)', async () => {
    ensureBuilt();
    const dataDir = mkdtempSync(join(tmpdir(), 'berth-embedded-'));
    const { spawn } = await import('node:child_process');
    try {
      // A stand-in extension host: starts the server through EmbeddedServer, prints its pid, then is killed -9.
      const script = `
        import { EmbeddedServer } from ${JSON.stringify(join(import.meta.dirname, '../src/server/embedded.ts'))};
        const s = await EmbeddedServer.start({ nodePath: process.execPath, cliPath: ${JSON.stringify(CLI)}, dataDir: ${JSON.stringify(dataDir)}, provider: 'local' });
        console.log('PID ' + s.pid);
        setInterval(() => {}, 1000);`;
      const host = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      host.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const serverPid = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no server pid: ${out}`)), 30_000);
        host.stdout.on('data', () => {
          const m = /PID (\d+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      assert.ok(alive(serverPid));
      host.kill('SIGKILL');
      const deadline = Date.now() + 15_000;
      while (alive(serverPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(alive(serverPid), false, 'the server followed its parent');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
