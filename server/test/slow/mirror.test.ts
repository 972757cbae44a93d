// The per-repo bare mirror (issue 3): created on first use, fetched before each use, shared by
// concurrent starts under its lock, and a broken one never breaks a start. Real git, real server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorDir, pruneMirrors } from '../../src/git/mirror';
import { makeRepo, startTestServer, tempDir, type TestServer } from '../helpers';

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
const revParse = (gitDir: string, ref: string) => execFileSync('git', ['--git-dir', gitDir, 'rev-parse', ref], { encoding: 'utf8' }).trim();

/** Pushes one more commit to the bare remote; returns its hash. */
function pushCommit(bare: string, file: string): string {
  const work = tempDir('berth-push-');
  execFileSync('git', ['clone', '-q', bare, work]);
  writeFileSync(join(work, file), `${file}\n`);
  execFileSync('git', ['-C', work, 'add', '-A']);
  execFileSync('git', ['-C', work, 'commit', '-qm', file], { env: gitEnv });
  execFileSync('git', ['-C', work, 'push', '-q', 'origin', 'HEAD:main'], { env: gitEnv });
  rmSync(work, { recursive: true, force: true });
  return revParse(bare, 'refs/heads/main');
}

describe('repository mirror', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ agentCommand: 'cat' });
  });
  after(async () => {
    await t?.close();
  });

  async function startReady(url: string): Promise<{ id: string; workspace: string; log: string; cloneDone: string }> {
    const alice = t.api('alice');
    const r = await alice.start({ repo: { url }, prompt: 'hi' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const id = r.body.sessionId as string;
    const log = (await alice.request('GET', `/v1/sessions/${id}/log`)).body as string;
    const cloneDone = /step clone done: (.*)/.exec(log)?.[1] ?? '';
    return { id, workspace: t.server.ctx.paths.workspace(id), log, cloneDone };
  }

  it('is created on first use, and the clone does not depend on it (dissociated)', async () => {
    const repo = makeRepo();
    const s = await startReady(repo);
    const mirror = mirrorDir(t.dataDir, repo);
    assert.ok(existsSync(join(mirror, 'HEAD')), 'the mirror exists');
    assert.equal(revParse(mirror, 'refs/heads/main'), revParse(repo, 'refs/heads/main'));
    assert.match(s.log, /mirror created/);
    assert.match(s.cloneDone, /local mirror/);
    assert.equal(existsSync(join(s.workspace, '.git', 'objects', 'info', 'alternates')), false, 'no alternates into the mirror');
    assert.equal(execFileSync('git', ['-C', s.workspace, 'fsck', '--connectivity-only'], { encoding: 'utf8' }).includes('missing'), false);
  });

  it('records each use, and only mirrors unused for the max age are pruned (then refilled on the next start)', async () => {
    const oldRepo = makeRepo();
    const freshRepo = makeRepo();
    await startReady(oldRepo);
    const before = Date.now();
    await startReady(freshRepo);
    const oldMirror = mirrorDir(t.dataDir, oldRepo);
    const freshMirror = mirrorDir(t.dataDir, freshRepo);
    assert.ok(statSync(freshMirror).mtimeMs >= before - 1000, 'a use stamps the mirror');
    const day = 86_400_000;
    const longAgo = new Date(Date.now() - 20 * day);
    utimesSync(oldMirror, longAgo, longAgo);
    const removed = await pruneMirrors(t.dataDir, 14 * day);
    assert.deepEqual(removed, [oldMirror]);
    assert.equal(existsSync(oldMirror), false, 'the unused mirror is gone');
    assert.ok(existsSync(join(freshMirror, 'HEAD')), 'the recently used mirror stays');
    const again = await startReady(oldRepo);
    assert.match(again.log, /mirror created/);
  });

  it('is reused, and fetched before each use: the second clone has what was pushed in between', async () => {
    const repo = makeRepo();
    await startReady(repo);
    const mirror = mirrorDir(t.dataDir, repo);
    writeFileSync(join(mirror, 'berth-test-marker'), 'same mirror');
    const pushed = pushCommit(repo, 'second.txt');
    const s = await startReady(repo);
    assert.match(s.log, /mirror fetched/);
    assert.ok(existsSync(join(mirror, 'berth-test-marker')), 'the same mirror, not a new one');
    assert.equal(revParse(mirror, 'refs/heads/main'), pushed, 'the mirror fetched the new commit');
    assert.equal(revParse(join(s.workspace, '.git'), 'refs/remotes/origin/main'), pushed, 'the clone has it');
    assert.ok(existsSync(join(s.workspace, 'second.txt')));
  });

  it('concurrent starts of one repo take turns on its mirror (one creates it, the others fetch)', async () => {
    const repo = makeRepo({ 'README.md': '# concurrent\n', 'a.txt': 'a\n' });
    const runs = await Promise.all([1, 2, 3, 4].map(() => startReady(repo)));
    const created = runs.filter((r) => /mirror created/.test(r.log)).length;
    const fetched = runs.filter((r) => /mirror fetched/.test(r.log)).length;
    assert.equal(created, 1, runs.map((r) => r.log).join('\n---\n'));
    assert.equal(fetched, 3);
    for (const r of runs) {
      assert.match(r.cloneDone, /local mirror/);
      assert.ok(existsSync(join(r.workspace, 'a.txt')));
    }
  });

  it('a broken mirror does not break a start: plain clone, the reason logged, the mirror rebuilt next time', async () => {
    const repo = makeRepo();
    await startReady(repo);
    const mirror = mirrorDir(t.dataDir, repo);
    // Refs kept, every object file overwritten with garbage: present, but unreadable.
    for (const file of readdirSync(join(mirror, 'objects'), { recursive: true, withFileTypes: true })) {
      if (file.isFile() && !file.parentPath.endsWith('info')) writeFileSync(join(file.parentPath, file.name), 'garbage'.repeat(40));
    }
    const broken = await startReady(repo);
    assert.match(broken.log, /mirror not used, plain clone instead/);
    assert.doesNotMatch(broken.cloneDone, /local mirror/);
    assert.ok(existsSync(join(broken.workspace, 'README.md')));
    assert.equal(existsSync(mirror), false, 'the broken mirror was removed');

    const next = await startReady(repo);
    assert.match(next.log, /mirror created/);
    assert.match(next.cloneDone, /local mirror/);

    // A mirror that is not a repository at all (garbage config): same outcome.
    writeFileSync(join(mirror, 'config'), '[[[ not a git config');
    const garbage = await startReady(repo);
    assert.match(garbage.log, /mirror not used/);
    assert.ok(existsSync(join(garbage.workspace, 'README.md')));
  });
});
