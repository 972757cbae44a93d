// The server's checkpoint repository on real git repos: snapshots of a work tree, diffs, bundles,
// restore into a fresh clone.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointRepo } from '../src/changes/checkpointRepo';
import { makeRepo, tempDir } from './helpers';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

function cloneOf(bare: string): string {
  const dir = join(tempDir('berth-ws-'), 'ws');
  execFileSync('git', ['clone', '-q', bare, dir]);
  git(dir, 'switch', '-q', '-c', 'berth/work');
  return dir;
}

describe('checkpoint repository', () => {
  let bare: string;
  let ws: string;
  let repo: CheckpointRepo;
  let base: string;
  const cleanup: string[] = [];

  before(async () => {
    bare = makeRepo({
      'README.md': '# test\n',
      'src/a.ts': 'export const a = 1;\n',
      'src/b.ts': 'line 1\nline 2\nline 3\n',
      'docs/old-name.md': 'a document that will be renamed, long enough to be found again\n'.repeat(5),
      '.gitignore': 'node_modules/\n*.log\n',
      'logo.bin': Buffer.from([0, 1, 2, 3, 255]).toString('latin1'),
    });
    ws = cloneOf(bare);
    repo = new CheckpointRepo(join(tempDir('berth-ckpt-'), 'ckpt.git'));
    base = await repo.captureBase(ws, 'berth/work');
    cleanup.push(ws, repo.gitDir);
  });
  after(() => cleanup.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('captures the base commit of the clone', async () => {
    assert.equal(base, git(ws, 'rev-parse', 'HEAD'));
    assert.equal(await repo.base(), base);
  });

  it('an unchanged work tree makes no checkpoint', async () => {
    const result = await repo.snapshot({ workTree: ws, parent: base, branch: 'berth/work', message: 'nothing', maxFileBytes: 1e6 });
    assert.equal(result.sha, null);
  });

  let first: string;
  it('records added, modified, deleted, renamed and binary files; ignores what .gitignore says', async () => {
    writeFileSync(join(ws, 'src/a.ts'), 'export const a = 2;\nexport const b = 3;\n');
    unlinkSync(join(ws, 'src/b.ts'));
    writeFileSync(join(ws, 'src/new.ts'), 'new file\n');
    renameSync(join(ws, 'docs/old-name.md'), join(ws, 'docs/new-name.md'));
    writeFileSync(join(ws, 'logo.bin'), Buffer.from([0, 9, 9, 9, 255]));
    mkdirSync(join(ws, 'node_modules/x'), { recursive: true });
    writeFileSync(join(ws, 'node_modules/x/index.js'), 'ignored\n');
    writeFileSync(join(ws, 'debug.log'), 'ignored\n');
    const result = await repo.snapshot({ workTree: ws, parent: base, branch: 'berth/work', message: 'turn 1\n\nBerth-Turn: t1\n', maxFileBytes: 1e6 });
    assert.ok(result.sha);
    first = result.sha;
    const files = await repo.changedFiles(base, first);
    const byPath = Object.fromEntries(files.map((f) => [f.path, f]));
    assert.deepEqual(Object.keys(byPath).sort(), ['docs/new-name.md', 'logo.bin', 'src/a.ts', 'src/b.ts', 'src/new.ts']);
    assert.equal(byPath['src/a.ts']!.status, 'modified');
    assert.equal(byPath['src/a.ts']!.additions, 2);
    assert.equal(byPath['src/a.ts']!.deletions, 1);
    assert.equal(byPath['src/b.ts']!.status, 'deleted');
    assert.equal(byPath['src/b.ts']!.deletions, 3);
    assert.equal(byPath['src/new.ts']!.status, 'added');
    assert.equal(byPath['docs/new-name.md']!.status, 'renamed');
    assert.equal(byPath['docs/new-name.md']!.oldPath, 'docs/old-name.md');
    assert.equal(byPath['logo.bin']!.binary, true);
    // The branch moved; the commit's parent is the base.
    assert.equal(git(repo.gitDir, 'rev-parse', 'refs/heads/berth/work'), first);
    assert.equal(git(repo.gitDir, 'rev-parse', `${first}^`), base);
  });

  it('leaves out files over the size limit and nested repositories, and names them', async () => {
    writeFileSync(join(ws, 'big.dat'), Buffer.alloc(2048, 1));
    mkdirSync(join(ws, 'nested'));
    execFileSync('git', ['init', '-q', join(ws, 'nested')]);
    writeFileSync(join(ws, 'nested/file'), 'x');
    writeFileSync(join(ws, 'small.txt'), 'small\n');
    const result = await repo.snapshot({ workTree: ws, parent: first, branch: 'berth/work', message: 'turn 2', maxFileBytes: 1024 });
    assert.ok(result.sha);
    assert.deepEqual(
      result.skipped.sort((a, b) => a.path.localeCompare(b.path)),
      [
        { path: 'big.dat', reason: 'too_large', size: 2048 },
        { path: 'nested', reason: 'nested_repository' },
      ],
    );
    const files = await repo.changedFiles(first, result.sha);
    assert.deepEqual(files.map((f) => f.path), ['small.txt']);
    rmSync(join(ws, 'nested'), { recursive: true });
    rmSync(join(ws, 'big.dat'));
    first = result.sha;
  });

  it('stores symbolic links as links, never following them out of the work tree', async () => {
    symlinkSync('/etc/hostname', join(ws, 'host-link'));
    const result = await repo.snapshot({ workTree: ws, parent: first, branch: 'berth/work', message: 'link', maxFileBytes: 1e6 });
    assert.ok(result.sha);
    const blob = await repo.blobAt(result.sha, 'host-link');
    assert.ok(blob);
    assert.equal(git(repo.gitDir, 'cat-file', 'blob', blob), '/etc/hostname');
    assert.match(git(repo.gitDir, 'ls-tree', result.sha, 'host-link'), /^120000 /);
    unlinkSync(join(ws, 'host-link'));
    first = (await repo.snapshot({ workTree: ws, parent: result.sha, branch: 'berth/work', message: 'unlink', maxFileBytes: 1e6 })).sha!;
  });

  it('a bundle of base..head fetched into a fresh clone gives exactly head', async () => {
    const bundle = await repo.bundle('berth/work', base);
    const file = join(tempDir(), 'b.bundle');
    writeFileSync(file, bundle);
    const other = cloneOf(bare);
    cleanup.push(other);
    git(other, 'fetch', '-q', file, 'refs/heads/berth/work:refs/remotes/berth/work');
    assert.equal(git(other, 'rev-parse', 'refs/remotes/berth/work'), first);
    assert.equal(git(other, 'rev-parse', `${first}^{tree}`), git(repo.gitDir, 'rev-parse', `${first}^{tree}`));
  });

  it('restores a checkpoint into a fresh clone: base commit, changes uncommitted', async () => {
    const other = cloneOf(bare);
    cleanup.push(other);
    await repo.restoreInto(other, 'berth/work', base, first);
    assert.equal(git(other, 'rev-parse', 'HEAD'), base);
    assert.equal(readFileSync(join(other, 'src/a.ts'), 'utf8'), 'export const a = 2;\nexport const b = 3;\n');
    assert.equal(existsSync(join(other, 'src/b.ts')), false);
    assert.equal(existsSync(join(other, 'src/new.ts')), true);
    assert.match(git(other, 'status', '--porcelain'), /src\/new\.ts/);
    // The restored tree is the checkpoint's tree: a snapshot of it changes nothing.
    const again = await repo.snapshot({ workTree: other, parent: first, branch: 'berth/work', message: 'x', maxFileBytes: 1e6 });
    assert.equal(again.sha, null);
  });

  it('rebuilds from the remote and the bundles alone (a new instance)', async () => {
    const bundle = await repo.bundle('berth/work', base);
    const fresh = new CheckpointRepo(join(tempDir('berth-ckpt-'), 'ckpt.git'));
    cleanup.push(fresh.gitDir);
    await fresh.init('berth/work');
    await fresh.fetchBase(bare, base, [], {}, 30_000);
    await fresh.unbundle(bundle);
    await fresh.setHead('berth/work', first);
    assert.deepEqual(await fresh.changedFiles(base, first), await repo.changedFiles(base, first));
  });
});
