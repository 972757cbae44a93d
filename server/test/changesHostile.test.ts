// The sandbox owns its work tree and `.git`; the host must not obey them. An agent plants every git
// trap it can (hooks, fsmonitor, filters with attributes, diff drivers, includes, links out of the
// tree), then the host records checkpoints, diffs, serves files, bundles, pushes, stops and
// restores: no trap may ever run, and nothing outside the work tree may be read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeRepo, startTestServer, tempDir, turnComplete, type ApiClient, type StreamRecorder, type TestServer } from './helpers';
import { gitTraps, type GitTraps } from './fixtures/plant-git-traps';

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

describe('a hostile work tree and .git: the host obeys nothing of it', () => {
  let t: TestServer;
  let traps: GitTraps;
  let alice: ApiClient;
  let stream: StreamRecorder;
  let id: string;
  let bare: string;

  before(async () => {
    traps = gitTraps();
    const dir = tempDir('berth-agent-');
    writeFileSync(join(dir, 'plant.sh'), traps.script);
    writeFileSync(
      join(dir, 'agent.sh'),
      `prompt=$(cat)
case "$prompt" in
  *plant*) sh ${join(dir, 'plant.sh')} ;;
  *more*) echo more >> README.md; echo "more" ;;
  *) echo "agent: $prompt" ;;
esac
`,
    );
    t = await startTestServer({ agentCommand: `sh ${join(dir, 'agent.sh')}` });
    bare = makeRepo({ 'README.md': '# hostile\n' });
    alice = t.api('alice');
    const started = await alice.start({ repo: { url: bare }, prompt: 'plant the traps', autoInitiate: true });
    id = started.body.sessionId;
    stream = await alice.stream(id);
    await stream.waitFor(turnComplete);
  });
  after(async () => {
    await stream?.close();
    await t?.close();
    traps?.cleanup();
  });

  it('the turn that planted them is checkpointed as plain bytes; links stay links; nothing ran', async () => {
    const changes = stream.events.find((e) => e.type === 'changes');
    assert.ok(changes?.type === 'changes', `a checkpoint was recorded: ${JSON.stringify(stream.events.filter((e) => e.type === 'error'))}`);
    const paths = changes.data.files.map((f) => f.path).sort();
    assert.ok(paths.includes('README.md') && paths.includes('.gitattributes') && paths.includes('escape-file'), paths.join(' '));
    assert.ok(!paths.some((p) => p.startsWith('.git/')), 'the sandbox’s .git is never part of the work');
    // `nested/.git` points at a host directory that is no repository: nothing of it is recorded.
    assert.ok(!paths.some((p) => p.startsWith('nested')), paths.join(' '));
    const ckpt = join(t.dataDir, 'checkpoints', `${id}.git`);
    // No clean filter touched the content; the links are links to their (host) targets, not copies.
    assert.equal(git(ckpt, 'show', `${changes.data.head}:README.md`), '# hostile\nedited under hostile config');
    assert.match(git(ckpt, 'ls-tree', changes.data.head, 'escape-file'), /^120000 blob /);
    assert.match(git(ckpt, 'ls-tree', changes.data.head, 'escape-dir'), /^120000 blob /);
    assert.deepEqual(traps.sprung(), []);
  });

  it('diff, content, bundle, push, another checkpoint, stop and a restore run no trap and read nothing outside', async () => {
    const head = (await alice.get(id)).body.changes!.head;
    const diff = await alice.request('GET', `/v1/sessions/${id}/diff`);
    assert.equal(diff.status, 200);
    assert.match(diff.body, /\+edited under hostile config/, 'the plain diff (no textconv, no external diff)');
    assert.doesNotMatch(diff.body, /root:x:0:0/);
    const link = await alice.request('GET', `/v1/sessions/${id}/content?ref=${head}&path=escape-file`);
    assert.equal(link.status, 200);
    assert.equal(link.body, '/etc/hostname', 'a link is served as its target path, never followed');
    for (const path of ['escape-dir/hostname', 'escape-dir/passwd', 'nested/.git']) {
      const r = await alice.request('GET', `/v1/sessions/${id}/content?ref=${head}&path=${path}`);
      assert.equal(r.status, 404, path);
    }
    assert.equal((await fetch(`${t.url}/v1/sessions/${id}/bundle`, { headers: { authorization: `Bearer ${alice.token}` } })).status, 200);
    const pushed = await alice.request('POST', `/v1/sessions/${id}/push`);
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    const more = await alice.message(id, 'more');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === more.body.turnId);
    assert.ok(stream.events.some((e) => e.type === 'changes' && e.data.turnId === more.body.turnId), 'the next turn was checkpointed too');
    const stopped = await alice.request('POST', `/v1/sessions/${id}/stop`);
    assert.equal(stopped.status, 200);
    // A resume on a fresh clone puts the hostile files back (as files), and the host reads them again.
    execFileSync('rm', ['-rf', join(t.dataDir, 'workspaces', id), join(t.dataDir, 'checkpoints')]);
    const again = await alice.message(id, 'more');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === again.body.turnId, 30_000);
    assert.ok(stream.events.some((e) => e.type === 'changes' && e.data.turnId === again.body.turnId));
    assert.deepEqual(traps.sprung(), []);
  });
});
