// Issue 7: a data dir on a nearly full disk (a small tmpfs). `disk_check` fails before anything is
// cloned, a full disk makes requests fail cleanly, and the SQLite store stays intact.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { makeRepo, startTestServer, tempDir, TEST_PG_URL, type TestServer } from '../helpers';

const MiB = 1024 * 1024;
const free = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Fills the file system of `dir` until only about `leave` bytes are free. */
function fillUntil(dir: string, leave: number): string {
  const file = join(dir, 'filler');
  const size = Math.max(0, free(dir) - leave);
  writeFileSync(file, Buffer.alloc(size));
  return file;
}

function mountTmpfs(sizeMiB: number): string | null {
  if (process.getuid?.() !== 0) return null;
  const dir = tempDir('berth-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir]);
    return dir;
  } catch {
    return null;
  }
}

describe('faults: the disk is nearly full', { concurrency: false }, () => {
  let mount: string | null = null;
  let t: TestServer | undefined;
  before(async () => {
    mount = mountTmpfs(8);
    if (mount) t = await startTestServer({ dataDir: join(mount, 'data'), minFreeBytes: 2 * MiB, agentCommand: 'cat' });
  });
  after(async () => {
    await t?.close();
    if (mount) execFileSync('umount', ['-l', mount]);
  });

  const mounted = (ctx: TestContext): boolean => {
    if (mount) return true;
    if (process.env.CI) assert.fail('the disk fault test needs root to mount a tmpfs in CI');
    ctx.skip('needs root to mount a small tmpfs');
    return false;
  };

  it('disk_check fails before cloning, with a readable message; nothing is cloned', async (ctx) => {
    if (!mounted(ctx) || !t) return;
    const filler = fillUntil(mount!, 1 * MiB);
    try {
      const alice = t.api('alice');
      const repo = makeRepo();
      const r = await alice.start({ repo: { url: repo }, prompt: 'hi', autoInitiate: true });
      assert.equal(r.status, 202);
      const id = r.body.sessionId as string;
      const failed = await alice.waitFor(id, (s) => s.status === 'failed', 15_000);
      assert.equal(failed.lastError?.step, 'disk_check');
      assert.equal(failed.lastError?.code, 'disk_full');
      assert.match(failed.lastError.message, /only \d+ (KiB|MiB) free in the data directory; at least 2 MiB are needed/);
      assert.equal(existsSync(t.server.ctx.paths.workspace(id)), false, 'no clone was started');
      assert.equal(existsSync(join(t.dataDir, 'mirrors')), false, 'no mirror was fetched');
      const log = readFileSync(t.server.ctx.paths.sessionLog(id), 'utf8');
      assert.doesNotMatch(log, /step clone started/);
    } finally {
      rmSync(filler, { force: true });
    }
  });

  it('a completely full disk: requests fail cleanly (no crash), the store stays intact, work resumes once space is back', async (ctx) => {
    if (!mounted(ctx) || !t) return;
    // On PostgreSQL the store is not on the data dir's disk: there is no store file to fill up.
    if (TEST_PG_URL) return ctx.skip('the store is PostgreSQL, not a file on the full disk');
    const alice = t.api('alice');
    const filler = fillUntil(mount!, 0);
    let statuses: number[] = [];
    try {
      // Enough writes to need new database pages on a disk with none left.
      const replies = [];
      for (let i = 0; i < 40; i++) replies.push(await alice.start({ repo: { url: makeRepo() }, prompt: 'x'.repeat(20_000), autoInitiate: true }));
      statuses = replies.map((r) => r.status);
      for (const r of replies) assert.ok(r.status === 202 || r.status >= 500, `status ${r.status}`);
      assert.equal((await fetch(`${t.url}/healthz`)).status, 200, 'the server is still up');
    } finally {
      rmSync(filler, { force: true });
    }
    const db = new Database(join(t.dataDir, 'berth.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
    const r = await alice.start({ repo: { url: makeRepo() }, prompt: 'after' });
    assert.equal(r.status, 201, `a start works again once space is back (earlier: ${statuses.join(',')}): ${JSON.stringify(r.body)}`);
  });
});
