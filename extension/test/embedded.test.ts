// The embedded local server: started and stopped by the extension's own EmbeddedServer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedServer } from '../src/server/embedded';
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
      await server.stop();
      assert.equal(server.running, false);
      assert.equal(alive(pid), false);
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
