// The API client's changes methods against the real server (local provider, a scripted agent that
// edits the real workspace): changes, diff, content, bundle (fetched into a real clone with the
// extension's own LocalRepo), push into a real bare remote (and a refused one), stop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionView } from '@berth/protocol';
import { LocalRepo, sessionRef } from '../src/changes/localRepo';
import { applyPlan, planApply } from '../src/changes/worktreeApply';
import { ApiError } from '../src/session/apiClient';
import { SessionController } from '../src/session/sessionController';
import { git } from './helpers/gitFixture';
import { startRealServer, waitFor, type RealServer } from './helpers/realServer';

function scriptedAgent(dir: string): string {
  const file = join(dir, 'agent.sh');
  writeFileSync(
    file,
    `prompt=$(cat)
case "$prompt" in
  *edit-files*) printf 'a line from the agent\\n' >> README.md; mkdir -p src; printf 'new file\\n' > src/added.txt; printf '\\000\\001\\002\\377' > data.bin; echo "edited" ;;
  *) echo "agent: $prompt" ;;
esac
`,
  );
  return `sh ${file}`;
}

describe('ApiClient: the session\'s work (real server)', () => {
  let real: RealServer;
  let scratch: string;
  let id: string;
  let view: SessionView;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-changes-api-'));
    real = await startRealServer({ agentCommand: scriptedAgent(scratch) });
    const started = await real.api.startSession({ repo: { url: real.repoUrl }, prompt: 'please edit-files', autoInitiate: true });
    id = started.sessionId;
    view = await waitFor(
      'the first turn\'s checkpoint',
      async () => {
        const v = await real.api.getSession(id);
        return v.status === 'ready' && v.changes && v.changes.head !== v.changes.base ? v : undefined;
      },
      60_000,
    );
  });
  after(async () => {
    await real?.close();
  });

  it('the snapshot carries the cumulative summary; GET /changes the files and checkpoints', async () => {
    const changes = view.changes!;
    assert.match(changes.branch, /^berth\//);
    assert.deepEqual(changes.files.map((f) => `${f.status} ${f.path}`).sort(), ['added data.bin', 'added src/added.txt', 'modified README.md']);
    const res = await real.api.getChanges(id);
    assert.equal(res.base, changes.base);
    assert.equal(res.head, changes.head);
    assert.equal(res.from, changes.base);
    assert.equal(res.to, changes.head);
    assert.equal(res.checkpoints.length, 1);
    assert.equal(res.checkpoints[0]!.sha, changes.head);
    assert.equal(res.files.find((f) => f.path === 'data.bin')?.binary, true);
    const ranged = await real.api.getChanges(id, { from: changes.base, to: changes.head });
    assert.deepEqual(ranged.files, res.files);
    const unknown = await real.api.getChanges(id, { from: 'f'.repeat(40) }).catch((e: unknown) => e);
    assert.ok(unknown instanceof ApiError && unknown.status === 404, 'a commit that is not the session\'s');
  });

  it('the diff applies to a checkout of the base with git apply (binary included)', async () => {
    const diff = await real.api.getDiff(id);
    assert.match(diff, /^diff --git a\/README\.md b\/README\.md$/m);
    assert.match(diff, /GIT binary patch/);
    const clone = join(scratch, 'apply-diff');
    git(scratch, 'clone', '-q', real.repoUrl, clone);
    git(clone, 'checkout', '-q', view.changes!.base);
    execFileSync('git', ['apply', '--index', '-'], { cwd: clone, input: diff });
    assert.equal(readFileSync(join(clone, 'src/added.txt'), 'utf8'), 'new file\n');
    assert.deepEqual([...readFileSync(join(clone, 'data.bin'))], [0, 1, 2, 255]);
    const one = await real.api.getDiff(id, { path: 'README.md' });
    assert.match(one, /a line from the agent/);
    assert.doesNotMatch(one, /added\.txt/);
  });

  it('content: the bytes of a file at a commit; 404 where it does not exist', async () => {
    const { base, head } = view.changes!;
    assert.equal(Buffer.from(await real.api.getContent(id, head, 'src/added.txt')).toString('utf8'), 'new file\n');
    assert.deepEqual([...(await real.api.getContent(id, head, 'data.bin'))], [0, 1, 2, 255]);
    assert.equal(Buffer.from(await real.api.getContent(id, base, 'README.md')).toString('utf8'), '# fixture\n');
    const absent = await real.api.getContent(id, base, 'src/added.txt').catch((e: unknown) => e);
    assert.ok(absent instanceof ApiError);
    assert.equal(absent.status, 404);
    assert.equal(absent.code, 'not_found');
  });

  it('the bundle fetches into a real clone and applies onto its working tree', async () => {
    const { base, head, branch } = view.changes!;
    const file = join(scratch, 'session.bundle');
    const size = await real.api.downloadBundle(id, file);
    assert.ok(size > 0 && existsSync(file));
    const clone = join(scratch, 'workspace');
    git(scratch, 'clone', '-q', real.repoUrl, clone);
    const repo = (await LocalRepo.open(clone))!;
    assert.equal(await repo.fetchBundle(file, { sessionId: id, branch, base, head }), head);
    assert.equal(git(clone, 'rev-parse', sessionRef(id)), head);
    const result = await applyPlan(repo, await planApply(repo, base, head), { conflicts: 'markers', backupDir: join(scratch, 'backups') });
    assert.deepEqual(result.written.sort(), ['README.md', 'data.bin', 'src/added.txt']);
    assert.match(readFileSync(join(clone, 'README.md'), 'utf8'), /a line from the agent/);
  });

  it('push reaches the bare remote; a non-fast-forward is push_rejected with git\'s reason', async () => {
    const { head, branch } = view.changes!;
    const res = await real.api.push(id);
    assert.equal(res.branch, branch);
    assert.equal(res.head, head);
    assert.equal(res.compareUrl, undefined, 'a local remote has no pull request page');
    assert.equal(git(real.repoUrl, 'rev-parse', `refs/heads/${branch}`), head);
    const after = await real.api.getSession(id);
    assert.equal(after.changes?.pushed?.head, head);
    // A branch that moved elsewhere on the remote refuses the push.
    const other = join(scratch, 'other');
    git(scratch, 'clone', '-q', real.repoUrl, other);
    writeFileSync(join(other, 'elsewhere.txt'), 'x\n');
    git(other, 'add', '.');
    git(other, 'commit', '-q', '-m', 'elsewhere');
    git(other, 'push', '-q', 'origin', 'HEAD:refs/heads/taken');
    const refused = await real.api.push(id, 'taken').catch((e: unknown) => e);
    assert.ok(refused instanceof ApiError);
    assert.equal(refused.code, 'push_rejected');
    assert.match(refused.message, /taken/);
  });

  it('the controller shows a card per checkpoint and follows with the server\'s cumulative summary', async () => {
    const controller = new SessionController(real.api);
    try {
      await controller.open(id);
      await waitFor('the replayed card', () => (controller.state.connection === 'open' && controller.state.session?.items.some((i) => i.kind === 'changes') ? true : undefined));
      const first = view.changes!.head;
      assert.equal(controller.state.session!.changes?.head, first, 'the snapshot\'s summary');
      assert.equal(await controller.send('more edit-files'), true);
      const session = await waitFor(
        'the second card and the new summary',
        () => {
          const s = controller.state.session!;
          return s.changes && s.changes.head !== first && s.items.filter((i) => i.kind === 'changes').length === 2 ? s : undefined;
        },
        30_000,
      );
      const second = session.items.filter((i) => i.kind === 'changes')[1]!;
      assert.ok(second.kind === 'changes');
      assert.equal(second.from, first, 'a card spans the previous checkpoint to this one');
      assert.equal(second.to, session.changes!.head);
      assert.deepEqual(second.files.map((f) => `${f.status} ${f.path}`), ['modified README.md']);
      assert.deepEqual(session.changes, (await real.api.getSession(id)).changes, 'the summary is the server\'s');
      await controller.stopSession();
      await waitFor('sleeping', () => (controller.state.session?.status === 'sleeping' ? true : undefined));
    } finally {
      controller.dispose();
    }
  });

  it('stop keeps the session, sleeping; its changes stay readable', async () => {
    const res = await real.api.stopSession(id);
    assert.equal(res.sessionId, id);
    assert.equal(res.status, 'sleeping');
    const now = await real.api.getSession(id);
    assert.equal(now.status, 'sleeping');
    assert.equal((await real.api.getChanges(id)).head, now.changes!.head);
    assert.equal(Buffer.from(await real.api.getContent(id, now.changes!.head, 'src/added.txt')).toString('utf8'), 'new file\n');
  });

  it('a session without changes has no bundle to download (409), and leaves no file', async () => {
    const started = await real.api.startSession({ repo: { url: real.repoUrl }, prompt: 'say hi', autoInitiate: true });
    await waitFor('ready', async () => ((await real.api.getSession(started.sessionId)).status === 'ready' ? true : undefined), 60_000);
    const file = join(scratch, 'empty.bundle');
    const err = await real.api.downloadBundle(started.sessionId, file).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 409);
    assert.equal(err.code, 'conflict');
    assert.equal(existsSync(file), false);
    const push = await real.api.push(started.sessionId).catch((e: unknown) => e);
    assert.ok(push instanceof ApiError && push.code === 'conflict');
  });
});
