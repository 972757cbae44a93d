// Bringing a session's work home, on real git repositories: the bundle is made with real git the
// way the server makes it, fetched into the user's checkout, then applied as a branch or onto the
// working tree (three-way merge, dry run first, the user's edits never lost).
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BranchExistsError, LocalRepo, MissingBaseError, sessionRef } from '../src/changes/localRepo';
import { normalizeRepoUrl, sameRepository } from '../src/changes/repoUrl';
import { applyPlan, describePlan, planApply, planCounts, unsafePath, WorktreeChangedError, type ApplyPlan } from '../src/changes/worktreeApply';
import { createFixture, git, lines, read, SESSION_ID, writeFiles, type Fixture } from './helpers/gitFixture';

/** The session's usual work: edits line 10 of app.txt, adds a file, deletes one. */
const SESSION_EDITS = {
  'src/app.txt': lines({ 10: 'line 10, improved by the agent' }),
  'src/new/added.txt': 'a new file from the agent\n',
  'src/remove-me.txt': null,
};

async function fetched(fx: Fixture, head: string): Promise<LocalRepo> {
  const repo = (await LocalRepo.open(fx.workspace))!;
  await repo.fetchBundle(fx.bundle(), { sessionId: SESSION_ID, branch: fx.branch, base: fx.base, head });
  return repo;
}

const status = (dir: string) => git(dir, 'status', '--porcelain=v1', '--untracked-files=all');
const byPath = (plan: ApplyPlan) => Object.fromEntries(plan.files.map((f) => [f.path, f]));
const backupOf = (fx: Fixture) => join(fx.tmp, 'backups');

describe('repository URLs', () => {
  it('the same repository in its https, scp-like and ssh spellings', () => {
    const forms = ['https://github.com/Acme/App.git', 'git@github.com:acme/app.git', 'ssh://git@github.com/acme/app', 'https://user@github.com/acme/app/', 'github.com:acme/app'];
    for (const form of forms) assert.equal(normalizeRepoUrl(form), 'github.com/acme/app', form);
    assert.ok(!sameRepository('https://github.com/acme/app', 'https://github.com/acme/other'));
    assert.ok(!sameRepository('https://github.com/acme/app', 'https://gitlab.com/acme/app'));
    assert.ok(sameRepository('/tmp/x/repo.git', 'file:///tmp/x/repo.git'));
    assert.ok(sameRepository('/tmp/x/repo.git/', '/tmp/x/repo'));
  });
});

describe('local repository: fetch the bundle, branch from it', () => {
  let fx: Fixture;
  beforeEach(() => (fx = createFixture()));
  afterEach(() => fx.close());

  it('finds the remote that points at the session repository, and the base commit', async () => {
    const repo = (await LocalRepo.open(join(fx.workspace, 'src')))!;
    assert.equal(repo.root, fx.workspace);
    assert.equal((await repo.remoteFor(fx.origin))?.name, 'origin');
    assert.equal(await repo.remoteFor('https://github.com/someone/else.git'), null);
    assert.equal(await repo.hasCommit(fx.base), true);
    assert.equal(await repo.hasCommit('f'.repeat(40)), false);
    assert.equal(await repo.hasCommit('--help'), false);
    assert.equal(await LocalRepo.open(fx.tmp), null, 'a folder outside any repository');
  });

  it('fetches the bundle into refs/berth/sessions/<id> and checks the head', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    assert.equal(git(fx.workspace, 'rev-parse', sessionRef(SESSION_ID)), head);
    assert.equal(status(fx.workspace), '', 'the working tree is untouched by the fetch');
    // A later checkpoint replaces the ref.
    const head2 = fx.checkpoint({ 'more.txt': 'more\n' });
    await repo.fetchBundle(fx.bundle(), { sessionId: SESSION_ID, branch: fx.branch, base: fx.base, head: head2 });
    assert.equal(git(fx.workspace, 'rev-parse', sessionRef(SESSION_ID)), head2);
    // A head the bundle does not end at is refused.
    await assert.rejects(repo.fetchBundle(fx.bundle(), { sessionId: SESSION_ID, branch: fx.branch, base: fx.base, head }), /not at/);
    assert.throws(() => sessionRef('../../HEAD'), /not a session id/);
    await assert.rejects(repo.fetchBundle(fx.bundle(), { sessionId: SESSION_ID, branch: '--upload-pack=x', base: fx.base, head }), /not a valid branch name/);
  });

  it('checks out a new branch at head; uncommitted work that does not clash comes along', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    writeFiles(fx.workspace, { 'notes.txt': lines({ 3: 'my own note' }), 'scratch.txt': 'untracked\n' });
    const result = await repo.createBranch({ name: 'agent-work', head, checkout: true });
    assert.deepEqual(result.carried.sort(), ['notes.txt', 'scratch.txt']);
    assert.equal(git(fx.workspace, 'symbolic-ref', '--short', 'HEAD'), 'agent-work');
    assert.equal(git(fx.workspace, 'rev-parse', 'HEAD'), head);
    assert.equal(read(fx.workspace, 'src/new/added.txt'), 'a new file from the agent\n');
    assert.equal(existsSync(join(fx.workspace, 'src/remove-me.txt')), false);
    assert.match(read(fx.workspace, 'notes.txt'), /my own note/, 'the local edit is still there');
    assert.equal(read(fx.workspace, 'scratch.txt'), 'untracked\n');
  });

  it('refuses to switch when uncommitted work clashes, and changes nothing', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const mine = lines({ 10: 'my line 10' });
    writeFiles(fx.workspace, { 'src/app.txt': mine });
    await assert.rejects(repo.createBranch({ name: 'agent-work', head, checkout: true }), (err: Error) => {
      assert.match(err.message, /src\/app\.txt would be overwritten/);
      assert.match(err.message, /Nothing was changed/);
      return true;
    });
    assert.equal(read(fx.workspace, 'src/app.txt'), mine, 'the local edit is untouched');
    assert.equal(git(fx.workspace, 'symbolic-ref', '--short', 'HEAD'), 'main');
    assert.equal(await repo.resolveRef('refs/heads/agent-work'), null, 'no branch left behind');
    // Without switching, the branch is made and nothing else moves.
    const made = await repo.createBranch({ name: 'agent-work', head, checkout: false });
    assert.equal(made.checkedOut, false);
    assert.equal(git(fx.workspace, 'rev-parse', 'refs/heads/agent-work'), head);
    assert.equal(read(fx.workspace, 'src/app.txt'), mine);
    await assert.rejects(repo.createBranch({ name: 'agent-work', head, checkout: false }), BranchExistsError);
    await assert.rejects(repo.createBranch({ name: 'bad..name', head, checkout: false }), /not a valid branch name/);
  });

  it('waits out an index lock held for a moment (as VS Code\'s own git refreshes do)', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const lock = join(fx.workspace, '.git', 'index.lock');
    writeFileSync(lock, '');
    setTimeout(() => rmSync(lock, { force: true }), 300);
    const result = await repo.createBranch({ name: 'after-lock', head, checkout: true });
    assert.equal(result.checkedOut, true);
    assert.equal(git(fx.workspace, 'rev-parse', 'HEAD'), head);
  });

  it('a workspace without the base commit gets a clear error; fetching the remote fixes it', async () => {
    fx.close();
    fx = createFixture({ workspaceBeforeBase: true });
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = (await LocalRepo.open(fx.workspace))!;
    assert.equal(await repo.hasCommit(fx.base), false);
    const err = await repo.fetchBundle(fx.bundle(), { sessionId: SESSION_ID, branch: fx.branch, base: fx.base, head }).catch((e: unknown) => e);
    assert.ok(err instanceof MissingBaseError);
    assert.match(err.message, new RegExp(`does not have commit ${fx.base.slice(0, 7)}`));
    assert.match(err.message, /[Ff]etch/);
    await repo.fetchRemote('origin');
    assert.equal(await repo.hasCommit(fx.base), true);
    await repo.fetchBundle(fx.bundle(), { sessionId: SESSION_ID, branch: fx.branch, base: fx.base, head });
    assert.equal(git(fx.workspace, 'rev-parse', sessionRef(SESSION_ID)), head);
  });
});

describe('apply onto the working tree (three-way merge)', () => {
  let fx: Fixture;
  beforeEach(() => (fx = createFixture()));
  afterEach(() => fx.close());
  after(() => {});

  it('a clean tree takes every change; the index is not touched', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const plan = await planApply(repo, fx.base, head);
    assert.deepEqual(
      plan.files.map((f) => [f.path, f.change, f.action]),
      [
        ['src/app.txt', 'modified', 'write'],
        ['src/new/added.txt', 'added', 'write'],
        ['src/remove-me.txt', 'deleted', 'delete'],
      ],
    );
    assert.equal(status(fx.workspace), '', 'the dry run writes nothing');
    const result = await applyPlan(repo, plan, { conflicts: 'markers', backupDir: backupOf(fx) });
    assert.deepEqual(result.written, ['src/app.txt', 'src/new/added.txt']);
    assert.deepEqual(result.deleted, ['src/remove-me.txt']);
    assert.equal(result.backupDir, null, 'no local edit needed a backup');
    assert.equal(read(fx.workspace, 'src/app.txt'), SESSION_EDITS['src/app.txt']);
    assert.equal(read(fx.workspace, 'src/new/added.txt'), 'a new file from the agent\n');
    assert.equal(existsSync(join(fx.workspace, 'src/remove-me.txt')), false);
    assert.equal(git(fx.workspace, 'diff', '--cached', '--name-only'), '', 'nothing staged');
    assert.equal(git(fx.workspace, 'rev-parse', 'HEAD'), fx.base, 'HEAD did not move');
    // Applying again finds everything already there.
    const again = await planApply(repo, fx.base, head);
    assert.deepEqual(planCounts(again), { write: 0, delete: 0, unchanged: 3, merge: 0, conflict: 0, skip: 0 });
  });

  it('a local edit elsewhere in the file is merged: both edits kept, a backup of yours made', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const mine = lines({ 2: 'line 2, my local edit' });
    writeFiles(fx.workspace, { 'src/app.txt': mine });
    const plan = await planApply(repo, fx.base, head);
    assert.equal(byPath(plan)['src/app.txt']!.action, 'merge');
    assert.equal(byPath(plan)['src/app.txt']!.localEdit, true);
    assert.equal(read(fx.workspace, 'src/app.txt'), mine, 'the dry run writes nothing');
    const result = await applyPlan(repo, plan, { conflicts: 'markers', backupDir: backupOf(fx) });
    assert.deepEqual(result.merged, ['src/app.txt']);
    assert.equal(read(fx.workspace, 'src/app.txt'), lines({ 2: 'line 2, my local edit', 10: 'line 10, improved by the agent' }));
    assert.equal(readFileSync(join(result.backupDir!, 'src/app.txt'), 'utf8'), mine, 'your version is in the backup');
  });

  it('an overlapping local edit: the dry run reports the conflict; markers keep your edit; nothing is lost', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const mine = lines({ 10: 'line 10, my conflicting edit' });
    writeFiles(fx.workspace, { 'src/app.txt': mine });
    const before = status(fx.workspace);
    const plan = await planApply(repo, fx.base, head);
    const conflict = byPath(plan)['src/app.txt']!;
    assert.equal(conflict.action, 'conflict');
    assert.equal(conflict.conflicts, 1);
    assert.match(conflict.reason!, /same lines/);
    assert.deepEqual(planCounts(plan), { write: 1, delete: 1, unchanged: 0, merge: 0, conflict: 1, skip: 0 });
    assert.equal(status(fx.workspace), before, 'the dry run changed nothing');
    assert.equal(read(fx.workspace, 'src/app.txt'), mine);
    const words = describePlan(plan).join('\n');
    assert.match(words, /Conflicts with your uncommitted edits \(1\): src\/app\.txt\./);
    assert.match(words, /Taken from the session \(2, not edited locally\): src\/new\/added\.txt, src\/remove-me\.txt\./);

    // Leaving conflicting files alone: yours stays byte for byte, the rest is applied.
    const skipped = await applyPlan(repo, plan, { conflicts: 'skip', backupDir: backupOf(fx) });
    assert.deepEqual(skipped.skipped.map((s) => s.path), ['src/app.txt']);
    assert.equal(read(fx.workspace, 'src/app.txt'), mine);
    assert.equal(read(fx.workspace, 'src/new/added.txt'), 'a new file from the agent\n');
  });

  it('with conflict markers: both sides inside the markers, your version also in the backup', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const mine = lines({ 10: 'line 10, my conflicting edit' });
    writeFiles(fx.workspace, { 'src/app.txt': mine });
    const plan = await planApply(repo, fx.base, head);
    const result = await applyPlan(repo, plan, { conflicts: 'markers', backupDir: backupOf(fx) });
    assert.deepEqual(result.conflicted, ['src/app.txt']);
    const text = read(fx.workspace, 'src/app.txt');
    assert.match(text, /^<<<<<<< yours \(working tree\)\nline 10, my conflicting edit\n=======\nline 10, improved by the agent\n>>>>>>> Berth session [0-9a-f]{7}\n/m);
    assert.match(text, /^line 9\n/m, 'the rest of the file is intact');
    assert.equal(readFileSync(join(result.backupDir!, 'src/app.txt'), 'utf8'), mine);
  });

  it('deleted by the session but edited locally, binary on both sides, a symlinked folder: left alone', async () => {
    writeFiles(fx.sandbox, {});
    const head = fx.checkpoint({
      ...SESSION_EDITS,
      'docs/guide.md': 'new docs\n',
      'notes.txt': Buffer.from([0, 1, 2, 3, 4]),
    });
    const repo = await fetched(fx, head);
    const outside = join(fx.tmp, 'outside');
    mkdirSync(outside);
    symlinkSync(outside, join(fx.workspace, 'docs'));
    writeFiles(fx.workspace, { 'src/remove-me.txt': 'I still need this\n', 'notes.txt': Buffer.from([0, 9, 9, 9]) });
    const plan = await planApply(repo, fx.base, head);
    const files = byPath(plan);
    assert.equal(files['src/remove-me.txt']!.action, 'skip');
    assert.match(files['src/remove-me.txt']!.reason!, /deleted it, and you edited it/);
    assert.equal(files['notes.txt']!.action, 'skip');
    assert.match(files['notes.txt']!.reason!, /binary/);
    assert.equal(files['docs/guide.md']!.action, 'skip');
    assert.match(files['docs/guide.md']!.reason!, /symbolic link/);
    const result = await applyPlan(repo, plan, { conflicts: 'markers', backupDir: backupOf(fx) });
    assert.deepEqual(result.skipped.map((s) => s.path).sort(), ['docs/guide.md', 'notes.txt', 'src/remove-me.txt']);
    assert.equal(read(fx.workspace, 'src/remove-me.txt'), 'I still need this\n');
    assert.deepEqual([...readFileSync(join(fx.workspace, 'notes.txt'))], [0, 9, 9, 9]);
    assert.equal(existsSync(join(outside, 'guide.md')), false, 'nothing was written through the link');
    assert.equal(read(fx.workspace, 'src/new/added.txt'), 'a new file from the agent\n');
  });

  it('a working tree that changed after the dry run: nothing is written', async () => {
    const head = fx.checkpoint(SESSION_EDITS);
    const repo = await fetched(fx, head);
    const plan = await planApply(repo, fx.base, head);
    writeFiles(fx.workspace, { 'src/app.txt': lines({ 10: 'typed after the dry run' }) });
    await assert.rejects(applyPlan(repo, plan, { conflicts: 'markers', backupDir: backupOf(fx) }), WorktreeChangedError);
    assert.equal(read(fx.workspace, 'src/app.txt'), lines({ 10: 'typed after the dry run' }));
    assert.equal(existsSync(join(fx.workspace, 'src/new/added.txt')), false);
    assert.equal(existsSync(join(fx.workspace, 'src/remove-me.txt')), true);
  });

  it('both sides created the same new file: identical is unchanged, different is a conflict', async () => {
    const head = fx.checkpoint({ 'same.txt': 'same\n', 'both.txt': 'from the agent\n' });
    const repo = await fetched(fx, head);
    writeFileSync(join(fx.workspace, 'same.txt'), 'same\n');
    writeFileSync(join(fx.workspace, 'both.txt'), 'mine\n');
    const files = byPath(await planApply(repo, fx.base, head));
    assert.equal(files['same.txt']!.action, 'unchanged');
    assert.equal(files['both.txt']!.action, 'conflict');
    assert.match(files['both.txt']!.reason!, /both created/);
  });

  it('refuses paths that lead out of the repository or into .git', () => {
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', '.git/config', 'sub/.GIT/hooks/pre-commit', 'a//b', './a', '']) {
      assert.ok(unsafePath(bad), bad);
    }
    for (const ok of ['a/b.txt', '.github/workflows/ci.yml', 'x.git/y', '.gitignore']) assert.equal(unsafePath(ok), null, ok);
  });
});
