// Invariant 9: a preparation interrupted by a server crash never stays stuck in `preparing`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient, makeRepo, sandboxPids, sleep, spawnCli, tempDir } from './helpers';

const TOKEN = 'tok_crash_test_0123456789';

async function startCli(dataDir: string): Promise<{ child: ChildProcess; api: ApiClient }> {
  const { child, url } = await spawnCli(dataDir, ['--allow-local-repos', '--agent-command', 'cat'], `alice:${TOKEN}`);
  return { child, api: new ApiClient(url, TOKEN) };
}

describe('invariant 9: kill -9 during preparation, then restart', () => {
  it('resumes the interrupted preparation to a terminal state within 30 s, leaving no orphans', async () => {
    const dataDir = tempDir();
    const repo = makeRepo();
    const first = await startCli(dataDir);
    const r = await first.api.start({ repo: { url: repo }, prompt: 'survive', autoInitiate: true, setup: ['sleep 4'] });
    assert.equal(r.status, 202);
    const id = r.body.sessionId as string;
    await first.api.waitFor(id, (s) => s.step === 'setup');
    await sleep(300);
    const orphans = sandboxPids(id);
    assert.ok(orphans.length > 0, 'the slow setup command is running');
    first.child.kill('SIGKILL');
    await new Promise((res) => first.child.once('exit', res));

    const restartedAt = Date.now();
    const second = await startCli(dataDir);
    try {
      const done = await second.api.waitFor(id, (s) => ['ready', 'running', 'failed'].includes(s.status), 30_000);
      const elapsed = Date.now() - restartedAt;
      assert.ok(elapsed < 30_000, `terminal after ${elapsed} ms`);
      assert.notEqual(done.status, 'preparing');
      const alive = orphans.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      });
      assert.deepEqual(alive, [], 'the killed server\'s setup processes were removed on restart');
      const settled = await second.api.waitFor(id, (s) => s.status === 'ready' || s.status === 'failed', 30_000);
      assert.equal(settled.status, 'ready', JSON.stringify(settled.lastError));
      assert.ok(settled.initiatedAt);
      const stream = await second.api.stream(id);
      await stream.waitFor((e) => e.type === 'turn_complete');
      const persisted = stream.persisted();
      assert.deepEqual(persisted.map((e) => e.id), persisted.map((_, i) => i + 1), 'events intact and in order');
      assert.equal(persisted.filter((e) => e.type === 'user_message').length, 1, 'the prompt was not duplicated');
      await stream.close();
      assert.deepEqual(
        readdirSync(join(dataDir, 'shared', id)).filter((f) => f.startsWith('import-')),
        [],
        'no leftover import files',
      );
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((res) => second.child.once('exit', res));
    }
  });

  it('a session whose turn was running when the server died is recoverable by the next message', async () => {
    const dataDir = tempDir();
    const first = await startCli(dataDir);
    const r = await first.api.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true });
    const id = r.body.sessionId as string;
    await first.api.waitFor(id, (s) => s.status === 'ready');
    first.child.kill('SIGKILL');
    await new Promise((res) => first.child.once('exit', res));
    const second = await startCli(dataDir);
    try {
      const s = await second.api.waitFor(id, (v) => v.status === 'sleeping', 10_000);
      assert.equal(s.status, 'sleeping');
      assert.equal((await second.api.message(id, 'still there?')).status, 202);
      await second.api.waitFor(id, (v) => v.status === 'ready', 20_000);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((res) => second.child.once('exit', res));
    }
  });
});

describe('invariant 11: the work survives kill -9', () => {
  it("a finished turn's checkpoint and a killed turn's edits are both kept and served after a restart; a resume restores them", async () => {
    const dataDir = tempDir();
    const agent = join(tempDir('berth-agent-'), 'agent.sh');
    writeFileSync(
      agent,
      `prompt=$(cat)
case "$prompt" in
  *edit*) echo finished > finished.txt; echo edited ;;
  *hang*) echo half-done > half-done.txt; echo working; sleep 600 ;;
  *check*) test -f finished.txt && test -f half-done.txt && echo "both kept" ;;
esac
`,
    );
    const start = async () => {
      const { child, url } = await spawnCli(dataDir, ['--allow-local-repos', '--agent-command', `sh ${agent}`], `alice:${TOKEN}`);
      return { child, api: new ApiClient(url, TOKEN) };
    };
    const first = await start();
    const r = await first.api.start({ repo: { url: makeRepo() }, prompt: 'edit', autoInitiate: true });
    const id = r.body.sessionId as string;
    const stream = await first.api.stream(id);
    await stream.waitFor((e) => e.type === 'turn_complete');
    const finished = stream.events.find((e) => e.type === 'changes');
    assert.ok(finished?.type === 'changes', 'the finished turn has its checkpoint');
    const hang = await first.api.message(id, 'hang');
    await stream.waitFor((e) => e.type === 'assistant_output' && e.data.turnId === hang.body.turnId);
    await stream.close();
    first.child.kill('SIGKILL');
    await new Promise((res) => first.child.once('exit', res));

    const second = await start();
    try {
      const asleep = await second.api.waitFor(id, (s) => s.status === 'sleeping', 15_000);
      assert.deepEqual(asleep.changes?.files.map((f) => f.path).sort(), ['finished.txt', 'half-done.txt']);
      const changes = await second.api.request('GET', `/v1/sessions/${id}/changes`);
      assert.equal(changes.status, 200);
      assert.deepEqual(changes.body.checkpoints.map((c: { turnId: string | null }) => c.turnId), [finished.data.turnId, null]);
      const check = await second.api.message(id, 'check');
      const again = await second.api.stream(id);
      await again.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === check.body.turnId, 30_000);
      assert.match(
        again.events.filter((e) => e.type === 'assistant_output' && e.data.turnId === check.body.turnId).map((e) => (e.type === 'assistant_output' ? e.data.text : '')).join(''),
        /both kept/,
      );
      await again.close();
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((res) => second.child.once('exit', res));
    }
  });
});
