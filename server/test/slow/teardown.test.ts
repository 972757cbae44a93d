// A container Docker will not remove at first is not forgotten: the failure is logged and
// recorded, and the reaper removes it once Docker lets it (real Docker; the refusal is injected
// by a `docker` on the PATH that fails `rm` while a flag file exists, and runs the real one otherwise).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { DEFAULT_IMAGE, runDocker } from '../../src/sandbox/devcontainer/cli';
import { makeRepo, queryTestDb, sleep, startTestServer, tempDir, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const realDocker = notReady ? 'docker' : execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim();

describe('a container that resists removal', { concurrency: false }, () => {
  let t: TestServer;
  const shimDir = tempDir('berth-docker-shim-');
  const flag = join(shimDir, 'refuse-rm');
  const originalPath = process.env.PATH;
  before(async () => {
    if (notReady) return;
    writeFileSync(
      join(shimDir, 'docker'),
      `#!/bin/sh\nif [ "$1" = rm ] && [ -e ${flag} ]; then echo "Error response from daemon: removal refused (injected)" >&2; exit 1; fi\nexec ${realDocker} "$@"\n`,
    );
    chmodSync(join(shimDir, 'docker'), 0o755);
    process.env.PATH = `${shimDir}:${originalPath}`;
    t = await startTestServer({ provider: 'devcontainer', agentCommand: 'cat', reaperIntervalMs: 300 });
  });
  after(async () => {
    rmSync(flag, { force: true });
    await t?.close();
    process.env.PATH = originalPath;
  });

  it('is logged and recorded when a delete cannot remove it, and removed by the reaper once Docker lets it', async (ctx: TestContext) => {
    if (!requireDocker(ctx, notReady)) return;
    const alice = t.api('alice');
    const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE }) });
    const { body } = await alice.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true });
    const id = body.sessionId as string;
    await alice.waitFor(id, (s) => s.status === 'ready', 90_000);
    const ref = (await t.server.ctx.store.getSession(id))!.sandbox;
    assert.ok(ref?.provider === 'devcontainer');
    const exists = async () => (await runDocker(['ps', '-aq', '--no-trunc', '--filter', `id=${ref.containerId}`])).trim() !== '';

    writeFileSync(flag, '');
    assert.equal((await alice.request('DELETE', `/v1/sessions/${id}`)).status, 204, 'the session goes; its container could not');
    assert.equal(await exists(), true, 'Docker refused the removal');
    const doomed = await queryTestDb<{ ref: string; last_error: string }>(t.dataDir, 'SELECT ref, last_error FROM doomed_sandboxes WHERE session_id = ?', [id]);
    assert.equal(doomed.length, 1, 'recorded to be destroyed');
    assert.match(doomed[0]!.last_error, /removal refused/);
    await sleep(1000);
    assert.equal(await exists(), true, 'still refused: the reaper keeps it on its list');

    rmSync(flag);
    for (let i = 0; i < 50 && (await exists()); i++) await sleep(200);
    assert.equal(await exists(), false, 'the reaper removed it');
    for (let i = 0; i < 20; i++) {
      if ((await queryTestDb(t.dataDir, 'SELECT 1 FROM doomed_sandboxes WHERE session_id = ?', [id])).length === 0) break;
      await sleep(200);
    }
    assert.equal((await queryTestDb(t.dataDir, 'SELECT 1 FROM doomed_sandboxes WHERE session_id = ?', [id])).length, 0, 'and forgot it');
    assert.ok(!existsSync(flag));
  });
});
