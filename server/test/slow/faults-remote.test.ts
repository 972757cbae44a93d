// Issue 7: a git remote that hangs (accepts the connection, never answers) fails the clone step
// with a clear message once its timeout passes, and leaves no git process or partial clone behind.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { makeRepo, startTestServer } from '../helpers';
import { processesMentioning } from './faults';

async function hangingServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let total = 0;
  const server: Server = createServer((s) => {
    total++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => total,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('faults: a git remote that never answers', () => {
  for (const scheme of ['git', 'https'] as const) {
    it(`${scheme}://: the clone step times out with a clear message; no git process, no partial clone`, async () => {
      const hang = await hangingServer();
      const t = await startTestServer({ agentCommand: 'cat', timeouts: { cloneMs: 2000 } as never });
      try {
        const alice = t.api('alice');
        const url = `${scheme}://127.0.0.1:${hang.port}/team/never.git`;
        const r = await alice.start({ repo: { url }, prompt: 'hi', autoInitiate: true });
        assert.equal(r.status, 202);
        const id = r.body.sessionId as string;
        const failed = await alice.waitFor(id, (s) => s.status === 'failed', 20_000);
        assert.ok(hang.connections() > 0, 'git really connected to the hanging remote');
        assert.equal(failed.lastError?.step, 'clone');
        assert.equal(failed.lastError?.code, 'clone_timeout');
        assert.match(failed.lastError.message, /the clone did not finish within 2 s \(is the remote reachable\?\)/);
        assert.deepEqual(processesMentioning(t.dataDir), [], 'the timed-out git was killed');
        assert.equal(existsSync(t.server.ctx.paths.workspace(id)), false, 'the partial clone was removed');
        // The same server still clones a healthy remote.
        const ok = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi' });
        assert.equal(ok.status, 201, JSON.stringify(ok.body));
      } finally {
        await t.close();
        await hang.close();
      }
    });
  }
});
