// The session's work on real dev containers (real Docker): the agent edits files as the container's
// root in the bind-mounted work tree and plants every git trap it can in there; the host records
// checkpoints, serves diff, content and bundle, pushes, stops and restores — obeying none of it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IMAGE, listLabelledContainers } from '../../src/sandbox/devcontainer/cli';
import { answerOf, isReady, makeRepo, startTestServer, turnComplete, type TestServer } from '../helpers';
import { gitTraps, type GitTraps } from '../fixtures/plant-git-traps';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

/** The agent, from the repository (it runs in the container, in the work tree). */
const AGENT = `prompt=$(cat)
case "$prompt" in
  *plant*) sh .berth-test/plant.sh ;;
  *edit*) echo "edited in the container" >> README.md; printf 'new\\n' > made-in-container.txt; rm -f obsolete.txt; echo edited ;;
  *where*) test -f /.dockerenv && echo "in a container"; test -f made-in-container.txt && echo "restored: yes" || echo "restored: no" ;;
  *) echo "agent: $prompt" ;;
esac
`;

describe('checkpoints on real dev containers', { concurrency: false }, () => {
  let t: TestServer;
  let traps: GitTraps;
  before(async () => {
    if (notReady) return;
    traps = gitTraps();
    t = await startTestServer({ provider: 'devcontainer', agentCommand: 'sh .berth-test/agent.sh' });
  });
  after(async () => {
    await t?.close();
    traps?.cleanup();
  });

  it('a turn in the container is checkpointed; stop keeps it; a resume on a fresh clone restores it; no git trap runs on the host', async (ctx) => {
    if (!requireDocker(ctx, notReady)) return;
    const bare = makeRepo({
      'README.md': '# container work\n',
      'obsolete.txt': 'old\n',
      '.berth-test/agent.sh': AGENT,
      '.berth-test/plant.sh': traps.script,
      '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE }),
    });
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: bare }, prompt: 'edit files', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    await stream.waitFor(isReady, 90_000, 'ready');
    await stream.waitFor(turnComplete, 30_000);
    const first = stream.events.find((e) => e.type === 'changes');
    assert.ok(first?.type === 'changes', 'the turn made a checkpoint');
    assert.deepEqual(first.data.files.map((f) => [f.path, f.status]), [
      ['README.md', 'modified'],
      ['made-in-container.txt', 'added'],
      ['obsolete.txt', 'deleted'],
    ]);

    const plant = await alice.message(id, 'plant the traps');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === plant.body.turnId, 30_000);
    assert.match(answerOf(stream.events, plant.body.turnId), /planted/);
    assert.ok(stream.events.some((e) => e.type === 'changes' && e.data.turnId === plant.body.turnId), 'the planted tree was checkpointed');
    const head = (await alice.get(id)).body.changes!.head;
    assert.equal((await alice.request('GET', `/v1/sessions/${id}/diff`)).status, 200);
    assert.equal((await alice.request('GET', `/v1/sessions/${id}/content?ref=${head}&path=escape-file`)).body, '/etc/hostname');
    assert.equal((await alice.request('GET', `/v1/sessions/${id}/content?ref=${head}&path=escape-dir/hostname`)).status, 404);
    const pushed = await alice.request('POST', `/v1/sessions/${id}/push`);
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    assert.equal(git(bare, 'rev-parse', `refs/heads/${pushed.body.branch}`), head);

    const stopped = await alice.request('POST', `/v1/sessions/${id}/stop`);
    assert.equal(stopped.body.status, 'sleeping');
    assert.deepEqual((await listLabelledContainers()).filter((c) => c.sessionId === id), [], 'the container is gone');
    // Another instance (or a lost disk): no workspace, no local checkpoints.
    execFileSync('rm', ['-rf', join(t.dataDir, 'workspaces', id), join(t.dataDir, 'checkpoints')]);
    const where = await alice.message(id, 'where are you');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === where.body.turnId, 90_000);
    const answer = answerOf(stream.events, where.body.turnId);
    assert.match(answer, /in a container/);
    assert.match(answer, /restored: yes/);
    assert.equal(readFileSync(join(t.dataDir, 'workspaces', id, 'README.md'), 'utf8'), '# container work\nedited in the container\nedited under hostile config\n');
    assert.deepEqual(traps.sprung(), [], 'no trap ran on the host');
    await stream.close();
  });
});
