// The session's work comes home: checkpoints after turns, the changes API, diff, content, bundle,
// push, stop; durable across a reaped sandbox and a lost data dir. Real git repos, real server,
// a real agent command editing files in the real workspace (local provider), SQLite or PostgreSQL.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChangesData, SessionView } from '@berth/protocol';
import { isReady, makeRepo, removeDir, startTestServer, tempDir, turnComplete, type ApiClient, type StreamRecorder, type TestServer } from './helpers';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** The agent: edits the workspace as the prompt says (it runs with the workspace as its directory). */
function scriptedAgent(): string {
  const file = join(tempDir('berth-agent-'), 'agent.sh');
  writeFileSync(
    file,
    `prompt=$(cat)
case "$prompt" in
  *turn-one*) printf 'a second line\\n' >> README.md; printf 'new file\\n' > added.txt; rm -f src/remove-me.txt; echo "edited three files" ;;
  *turn-two*) mv docs/guide.md docs/handbook.md; printf '\\000\\001\\002\\377' > data.bin; echo "renamed and binary" ;;
  *nothing*) echo "I changed nothing" ;;
  *check-restored*) if [ -f added.txt ] && [ ! -f src/remove-me.txt ] && [ -f docs/handbook.md ]; then echo "restored: yes"; else echo "restored: no"; ls -R; fi ;;
  *) echo "agent: $prompt" ;;
esac
`,
  );
  return `sh ${file}`;
}

const GUIDE = 'A guide that is long enough for rename detection to find it again.\n'.repeat(8);

async function turn(api: ApiClient, stream: StreamRecorder, id: string, text: string) {
  const sent = await api.message(id, text);
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  const turnId = sent.body.turnId as string;
  await stream.waitFor((e) => turnComplete(e) && e.type === 'turn_complete' && e.data.turnId === turnId, 20_000, `the end of "${text}"`);
  return turnId;
}

function changesOf(stream: StreamRecorder, turnId: string): ChangesData | undefined {
  const event = stream.events.find((e) => e.type === 'changes' && e.data.turnId === turnId);
  return event?.type === 'changes' ? event.data : undefined;
}

describe('checkpoints and the changes API', () => {
  let t: TestServer;
  let bare: string;
  let id: string;
  let alice: ApiClient;
  let stream: StreamRecorder;
  let base: string;
  let turnOne: string;
  let turnTwo: string;

  before(async () => {
    t = await startTestServer({ agentCommand: scriptedAgent() });
    bare = makeRepo({ 'README.md': '# project\n', 'src/remove-me.txt': 'bye\n', 'docs/guide.md': GUIDE });
    alice = t.api('alice');
    const started = await alice.start({ repo: { url: bare }, prompt: 'say hello', autoInitiate: true });
    id = started.body.sessionId;
    stream = await alice.stream(id);
    await stream.waitFor(turnComplete);
  });
  after(async () => {
    await stream?.close();
    await t?.close();
  });

  it('records the base at clone time; a turn that changed nothing makes no checkpoint', async () => {
    const view = (await alice.get(id)).body;
    assert.ok(view.changes, 'the view has changes once cloned');
    base = view.changes.base;
    assert.equal(base, git(bare, 'rev-parse', 'main'));
    assert.equal(view.changes.head, base);
    assert.deepEqual(view.changes.files, []);
    assert.equal(view.changes.branch, `berth/${id.slice(4, 16)}`);
    const nothing = await turn(alice, stream, id, 'nothing');
    assert.equal(changesOf(stream, nothing), undefined);
    const empty = await alice.request('GET', `/v1/sessions/${id}/changes`);
    assert.equal(empty.status, 200);
    assert.equal(empty.body.head, base);
    assert.deepEqual(empty.body.files, []);
    assert.deepEqual(empty.body.checkpoints, []);
    assert.equal((await alice.request('GET', `/v1/sessions/${id}/bundle`)).status, 409);
  });

  it('a turn that changed files: a changes event after its output, before its end', async () => {
    turnOne = await turn(alice, stream, id, 'turn-one: edit, add and delete');
    const events = stream.persisted().filter((e) => 'turnId' in e.data && e.data.turnId === turnOne);
    assert.deepEqual(
      events.map((e) => e.type),
      ['user_message', 'assistant_output', 'changes', 'turn_complete'],
    );
    const data = changesOf(stream, turnOne)!;
    assert.equal(data.reason, 'turn');
    assert.equal(data.base, base);
    assert.deepEqual(
      data.files.map((f) => [f.path, f.status, f.additions, f.deletions]),
      [
        ['README.md', 'modified', 1, 0],
        ['added.txt', 'added', 1, 0],
        ['src/remove-me.txt', 'deleted', 0, 1],
      ],
    );
    assert.equal(data.additions, 2);
    assert.equal(data.deletions, 1);
    // The commit: parent the base, the prompt as its subject, the trailers.
    const ckpt = join(t.dataDir, 'checkpoints', `${id}.git`);
    assert.equal(git(ckpt, 'rev-parse', `${data.head}^`), base);
    const message = git(ckpt, 'log', '-1', '--format=%B', data.head);
    assert.match(message, /^turn-one: edit, add and delete\n/);
    assert.match(message, new RegExp(`Berth-Session: ${id}`));
    assert.match(message, new RegExp(`Berth-Turn: ${turnOne}`));
  });

  it('a second turn: renamed and binary files; per-turn and cumulative changes', async () => {
    turnTwo = await turn(alice, stream, id, 'turn-two: rename and binary');
    const data = changesOf(stream, turnTwo)!;
    assert.equal(data.base, changesOf(stream, turnOne)!.head, 'per turn: from the previous checkpoint');
    const byPath = Object.fromEntries(data.files.map((f) => [f.path, f]));
    assert.deepEqual(Object.keys(byPath).sort(), ['data.bin', 'docs/handbook.md']);
    assert.equal(byPath['docs/handbook.md']!.status, 'renamed');
    assert.equal(byPath['docs/handbook.md']!.oldPath, 'docs/guide.md');
    assert.equal(byPath['data.bin']!.binary, true);

    const view = (await alice.get(id)).body;
    assert.equal(view.changes?.head, data.head);
    // A client (re)connecting gets the same summary in its `connected` snapshot.
    const late = await alice.stream(id, view.lastEventId);
    const connected = await late.waitFor((e) => e.type === 'connected');
    assert.ok(connected.type === 'connected');
    assert.deepEqual(connected.data.session.changes, view.changes);
    await late.close();
    assert.deepEqual(view.changes?.files.map((f) => f.path).sort(), ['README.md', 'added.txt', 'data.bin', 'docs/handbook.md', 'src/remove-me.txt']);

    const all = await alice.request('GET', `/v1/sessions/${id}/changes`);
    assert.equal(all.status, 200);
    assert.equal(all.body.from, base);
    assert.equal(all.body.to, data.head);
    assert.equal(all.body.files.length, 5);
    assert.deepEqual(all.body.checkpoints.map((c: { turnId: string; files: number }) => [c.turnId, c.files]), [
      [turnOne, 3],
      [turnTwo, 2],
    ]);
    const one = await alice.request('GET', `/v1/sessions/${id}/changes?from=${changesOf(stream, turnOne)!.head}&to=${data.head}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.files.map((f: { path: string }) => f.path).sort(), ['data.bin', 'docs/handbook.md']);
  });

  it('the diff applies with git apply onto the base and gives exactly the head tree (binary included)', async () => {
    const diff = await fetch(`${t.url}/v1/sessions/${id}/diff`, { headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(diff.status, 200);
    assert.match(diff.headers.get('content-type') ?? '', /text\/x-diff/);
    const patch = Buffer.from(await diff.arrayBuffer());
    assert.match(patch.toString('latin1'), /GIT binary patch/);
    const clone = join(tempDir(), 'clone');
    execFileSync('git', ['clone', '-q', bare, clone]);
    const applied = spawnSync('git', ['-C', clone, 'apply', '--index', '-'], { input: patch });
    assert.equal(applied.status, 0, applied.stderr.toString());
    const head = (await alice.get(id)).body.changes!.head;
    assert.equal(git(clone, 'write-tree'), git(join(t.dataDir, 'checkpoints', `${id}.git`), 'rev-parse', `${head}^{tree}`));
    // One path only.
    const one = await alice.request('GET', `/v1/sessions/${id}/diff?path=README.md`);
    assert.match(one.body, /^diff --git a\/README.md b\/README.md/);
    assert.doesNotMatch(one.body, /added\.txt/);
    removeDir(clone);
  });

  it('content: a file at the base and at a checkpoint; absent is 404', async () => {
    const head = (await alice.get(id)).body.changes!.head;
    const atBase = await alice.request('GET', `/v1/sessions/${id}/content?ref=${base}&path=README.md`);
    assert.equal(atBase.status, 200);
    assert.equal(atBase.body, '# project\n');
    const atHead = await fetch(`${t.url}/v1/sessions/${id}/content?ref=${head}&path=data.bin`, { headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(atHead.status, 200);
    assert.deepEqual([...Buffer.from(await atHead.arrayBuffer())], [0, 1, 2, 255]);
    const gone = await alice.request('GET', `/v1/sessions/${id}/content?ref=${head}&path=src/remove-me.txt`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'not_found');
    const dir = await alice.request('GET', `/v1/sessions/${id}/content?ref=${head}&path=docs`);
    assert.equal(dir.status, 404, 'a directory is not a file');
  });

  it('refs and paths from clients are checked: foreign commits, traversal, options', async () => {
    const foreign = 'f'.repeat(40);
    for (const query of [
      `content?ref=${foreign}&path=README.md`,
      `diff?from=${foreign}`,
      `changes?to=${foreign}`,
    ]) {
      const r = await alice.request('GET', `/v1/sessions/${id}/${query}`);
      assert.equal(r.status, 404, query);
    }
    for (const query of [
      `content?ref=HEAD&path=README.md`,
      `content?ref=${base}&path=../../etc/passwd`,
      `content?ref=${base}&path=/etc/passwd`,
      `diff?from=--output=/tmp/x`,
      `diff?path=a/../../b`,
      `changes?from=main`,
      `changes?extra=1`,
    ]) {
      const r = await alice.request('GET', `/v1/sessions/${id}/${query}`);
      assert.equal(r.status, 400, query);
      assert.equal(r.body.error.code, 'bad_request');
    }
    const badBranch = await alice.request('POST', `/v1/sessions/${id}/push`, { branch: '--force' });
    assert.equal(badBranch.status, 400);
  });

  it("another user's session is 404 on every route", async () => {
    const bob = t.api('bob');
    for (const [method, path] of [
      ['GET', 'changes'],
      ['GET', 'diff'],
      ['GET', `content?ref=${base}&path=README.md`],
      ['GET', 'bundle'],
      ['POST', 'push'],
      ['POST', 'stop'],
    ] as const) {
      const r = await bob.request(method, `/v1/sessions/${id}/${path}`, method === 'POST' ? {} : undefined);
      assert.equal(r.status, 404, `${method} ${path}`);
    }
  });

  it('the bundle, fetched into a fresh clone, gives exactly the head', async () => {
    const res = await fetch(`${t.url}/v1/sessions/${id}/bundle`, { headers: { authorization: `Bearer ${alice.token}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-git-bundle');
    const head = res.headers.get('x-berth-head')!;
    const branch = res.headers.get('x-berth-branch')!;
    const file = join(tempDir(), 'work.bundle');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const clone = join(tempDir(), 'clone');
    execFileSync('git', ['clone', '-q', bare, clone]);
    git(clone, 'fetch', '-q', file, `refs/heads/${branch}:refs/heads/from-berth`);
    assert.equal(git(clone, 'rev-parse', 'from-berth'), head);
    git(clone, 'switch', '-q', 'from-berth');
    assert.equal(readFileSync(join(clone, 'README.md'), 'utf8'), '# project\na second line\n');
    assert.equal(existsSync(join(clone, 'src/remove-me.txt')), false);
    assert.equal(readFileSync(join(clone, 'docs/handbook.md'), 'utf8'), GUIDE);
    removeDir(clone);
  });

  it('push: the head reaches the remote branch; a non-fast-forward is refused with 409, never forced', async () => {
    const head = (await alice.get(id)).body.changes!.head;
    const pushed = await alice.request('POST', `/v1/sessions/${id}/push`);
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    const branch = pushed.body.branch as string;
    assert.equal(branch, `berth/${id.slice(4, 16)}`);
    assert.equal(pushed.body.head, head);
    assert.equal(pushed.body.remote, bare);
    assert.equal(pushed.body.compareUrl, undefined, 'no pull-request page for a local remote');
    assert.equal(git(bare, 'rev-parse', `refs/heads/${branch}`), head);
    assert.equal((await alice.get(id)).body.changes?.pushed?.head, head);

    // Someone else moves the remote branch: the next push must not overwrite it.
    const other = join(tempDir(), 'other');
    execFileSync('git', ['clone', '-q', '-b', branch, bare, other]);
    writeFileSync(join(other, 'theirs.txt'), 'theirs\n');
    git(other, 'add', '-A');
    execFileSync('git', ['-C', other, 'commit', '-qm', 'theirs'], { env: gitEnv });
    execFileSync('git', ['-C', other, 'push', '-q', 'origin', branch], { env: gitEnv });
    const theirs = git(other, 'rev-parse', 'HEAD');
    await turn(alice, stream, id, 'turn-one again');
    const rejected = await alice.request('POST', `/v1/sessions/${id}/push`);
    assert.equal(rejected.status, 409, JSON.stringify(rejected.body));
    assert.equal(rejected.body.error.code, 'push_rejected');
    assert.match(rejected.body.error.message, /fetch first|non-fast-forward|rejected/);
    assert.equal(git(bare, 'rev-parse', `refs/heads/${branch}`), theirs, 'their commit is still there');
    // Another branch name works.
    const elsewhere = await alice.request('POST', `/v1/sessions/${id}/push`, { branch: 'feature/from-berth' });
    assert.equal(elsewhere.status, 200, JSON.stringify(elsewhere.body));
    assert.equal(git(bare, 'rev-parse', 'refs/heads/feature/from-berth'), (await alice.get(id)).body.changes!.head);
    removeDir(other);
  });

  it('stop: a checkpoint, the sandbox stops, the session sleeps with its changes served; a message resumes it', async () => {
    // A change made outside any turn (a background process, say) is kept by the stop's checkpoint.
    writeFileSync(join(t.dataDir, 'workspaces', id, 'late.txt'), 'written after the turn\n');
    const stopped = await alice.request('POST', `/v1/sessions/${id}/stop`);
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.status, 'sleeping');
    const stop = await stream.waitFor((e) => e.type === 'changes' && e.data.reason === 'stop');
    assert.ok(stop.type === 'changes');
    assert.deepEqual(stop.data.files.map((f) => f.path), ['late.txt']);
    assert.equal(stop.data.turnId, null);
    const view = (await alice.get(id)).body;
    assert.equal(view.status, 'sleeping');
    assert.equal(view.changes?.head, stop.data.head);
    const changes = await alice.request('GET', `/v1/sessions/${id}/changes`);
    assert.equal(changes.status, 200);
    assert.ok(changes.body.files.some((f: { path: string }) => f.path === 'late.txt'));
    assert.equal((await alice.request('POST', `/v1/sessions/${id}/stop`)).body.status, 'sleeping', 'stopping twice is harmless');
  });

  it('a lost data dir (another instance): changes served from the store and the remote; a resume restores the work tree', async () => {
    const head = (await alice.get(id)).body.changes!.head;
    const before = (await alice.request('GET', `/v1/sessions/${id}/changes`)).body;
    rmSync(join(t.dataDir, 'checkpoints'), { recursive: true, force: true });
    rmSync(join(t.dataDir, 'workspaces', id), { recursive: true, force: true });
    const rebuilt = await alice.request('GET', `/v1/sessions/${id}/changes`);
    assert.equal(rebuilt.status, 200, JSON.stringify(rebuilt.body));
    assert.deepEqual(rebuilt.body, before);
    const diff = await alice.request('GET', `/v1/sessions/${id}/diff?path=README.md`);
    assert.match(diff.body, /\+a second line/);
    // Resume: fresh clone, then the newest checkpoint's tree.
    const checked = await alice.message(id, 'check-restored');
    assert.equal(checked.status, 202);
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === checked.body.turnId, 30_000);
    const answer = stream.events.filter((e) => e.type === 'assistant_output' && e.data.turnId === checked.body.turnId).map((e) => (e.type === 'assistant_output' ? e.data.text : '')).join('');
    assert.match(answer, /restored: yes/);
    const ws = join(t.dataDir, 'workspaces', id);
    assert.equal(readFileSync(join(ws, 'late.txt'), 'utf8'), 'written after the turn\n');
    assert.equal(git(ws, 'rev-parse', 'HEAD'), base, 'the clone is at the base, the changes uncommitted');
    assert.equal((await alice.get(id)).body.changes?.head, head, 'the restore made no checkpoint of its own');
  });
});

describe('checkpoints survive a reaped sandbox', () => {
  let t: TestServer;
  after(async () => t?.close());

  it('the idle reaper checkpoints, the session sleeps, the next message sees the same work tree', async () => {
    t = await startTestServer({ agentCommand: scriptedAgent(), idleTimeoutMs: 400 });
    const alice = t.api('alice');
    const bare = makeRepo({ 'README.md': '# r\n', 'src/remove-me.txt': 'x\n', 'docs/guide.md': GUIDE });
    const { body } = await alice.start({ repo: { url: bare }, prompt: 'turn-one', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    await stream.waitFor(isReady);
    await stream.waitFor(turnComplete);
    const asleep = await alice.waitFor(id, (s: SessionView) => s.status === 'sleeping', 10_000);
    assert.equal(asleep.changes?.files.length, 3);
    const check = await alice.message(id, 'turn-two');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === check.body.turnId, 30_000);
    const data = changesOf(stream, check.body.turnId)!;
    assert.ok(data, 'the resumed turn made a checkpoint');
    assert.equal(data.base, asleep.changes?.head, 'on top of the checkpoint from before the reap');
    await stream.close();
  });
});
