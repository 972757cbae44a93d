// Private repositories and secrets, on a real private git remote (git http-backend behind basic
// auth on loopback): per-user credentials for clone, mirror and push, a credential in a URL, the
// mirror never lending a private repository to a user the remote refuses, setup-only and agent
// secrets, and no token or secret value anywhere it must not be.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { answerOf, isFailed, isReady, startTestServer, tempDir, turnComplete, type ApiClient, type TestServer } from './helpers';
import { createRepo, startGitHttpServer, type GitHttpServer } from './fixtures/git-http-server';

const ALICE_TOKEN = 'alice-git-token-0123456789';
const CAROL_TOKEN = 'carol-git-token-0123456789';
const SETUP_SECRET = 'setup-only-secret-value-42';
const AGENT_SECRET = 'agent-visible-secret-value-7';

/** Every file under `dir` that holds `needle` (binary-safe). */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    let info;
    try {
      info = statSync(path, { throwIfNoEntry: false });
    } catch {
      return;
    }
    if (!info) return;
    if (info.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    else if (info.isFile() && readFileSync(path).includes(needle)) found.push(path);
  };
  walk(dir);
  return found;
}

const AGENT = `prompt=$(cat)
case "$prompt" in
  *report*)
    echo "git-vars=$(env | grep -c '^BERTH_GIT')"
    echo "agent-secret-sha=$(printf %s "$AGENT_VISIBLE" | sha256sum | cut -c1-16)"
    printenv SETUP_ONLY >/dev/null && echo setup-present || echo setup-absent
    echo "printed=$AGENT_VISIBLE"
    cat setup-saw.txt
    git config --get remote.origin.url ;;
  *edit*) echo edited >> README.md; echo done ;;
  *) echo "agent: $prompt" ;;
esac
`;

describe('private repositories: per-user credentials (a real git remote with basic auth)', () => {
  let t: TestServer;
  let git: GitHttpServer;
  let alice: ApiClient;
  let bob: ApiClient;
  let privateUrl: string;

  before(async () => {
    const root = tempDir('berth-git-root-');
    createRepo(root, 'private.git', { 'README.md': '# private\n' });
    createRepo(root, 'other.git', { 'README.md': '# other\n' });
    git = await startGitHttpServer(root, {
      alice: { password: ALICE_TOKEN, repos: ['private.git', 'other.git'] },
      carol: { password: CAROL_TOKEN, repos: ['other.git'] },
    });
    privateUrl = `${git.url}/private.git`;
    const agentFile = join(tempDir('berth-agent-'), 'agent.sh');
    execFileSync('sh', ['-c', 'cat > "$1"', 'sh', agentFile], { input: AGENT });
    t = await startTestServer({ allowHttp: true, agentCommand: `sh ${agentFile}` });
    alice = t.api('alice');
    bob = t.api('bob');
  });
  after(async () => {
    await t?.close();
    await git?.close();
  });

  async function startAndWait(api: ApiClient, url: string, extra: Record<string, unknown> = {}) {
    const { status, body } = await api.start({ repo: { url }, prompt: 'report', autoInitiate: true, ...extra });
    assert.equal(status, 202, JSON.stringify(body));
    const stream = await api.stream(body.sessionId);
    const end = await stream.waitFor((e) => isReady(e) || isFailed(e), 30_000, 'the end of preparation');
    if (isReady(end)) await stream.waitFor(turnComplete, 20_000);
    await stream.close();
    return { id: body.sessionId as string, ready: isReady(end), events: stream.events, view: (await api.get(body.sessionId)).body };
  }

  it('the credentials API: stored per user, listed without tokens, validated, removed', async () => {
    const put = await alice.request('PUT', `/v1/credentials/${encodeURIComponent(git.host)}`, { username: 'alice', token: ALICE_TOKEN });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.host, git.host);
    assert.equal(put.body.username, 'alice');
    assert.ok(!JSON.stringify(put.body).includes(ALICE_TOKEN));
    const list = await alice.request('GET', '/v1/credentials');
    assert.deepEqual(list.body.credentials.map((c: { host: string; username: string }) => [c.host, c.username]), [[git.host, 'alice']]);
    assert.ok(!JSON.stringify(list.body).includes(ALICE_TOKEN), 'never the token');
    assert.deepEqual((await bob.request('GET', '/v1/credentials')).body.credentials, [], "another user's are not listed");
    for (const [path, body, why] of [
      [`/v1/credentials/${encodeURIComponent(git.host)}`, { token: 'short' }, /at least 8/],
      ['/v1/credentials/Not_A_Host', { token: ALICE_TOKEN }, /not a host/],
      [`/v1/credentials/${encodeURIComponent(git.host)}`, { token: 'has space inside' }, /without spaces/],
      [`/v1/credentials/${encodeURIComponent(git.host)}`, { token: ALICE_TOKEN, extra: 1 }, /unrecognized|extra/i],
    ] as const) {
      const r = await alice.request('PUT', path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.match(r.body.error.message, why);
      assert.ok(!JSON.stringify(r.body).includes(ALICE_TOKEN));
    }
    assert.equal((await bob.request('DELETE', `/v1/credentials/${encodeURIComponent(git.host)}`)).status, 404, 'bob cannot remove alice’s');
    assert.equal((await alice.request('DELETE', '/v1/credentials/nowhere.example')).status, 404);
  });

  it('plain http:// is refused by a server without --allow-http', async () => {
    const strict = await startTestServer({ agentCommand: 'cat' });
    try {
      const r = await strict.api('alice').start({ repo: { url: privateUrl }, prompt: 'x', autoInitiate: true });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /--allow-http/);
    } finally {
      await strict.close();
    }
  });

  it("a private clone with the owner's credential; the agent's clone and environment hold no token", async () => {
    const s = await startAndWait(alice, privateUrl);
    assert.ok(s.ready, JSON.stringify(s.view.lastError));
    const answer = answerOf(s.events);
    assert.match(answer, /^git-vars=0$/m, 'no credential variable reaches the agent');
    assert.match(answer, new RegExp(`^${privateUrl.replace(/[.]/g, '\\.')}$`, 'm'), 'the clone’s origin has no credential in it');
    assert.ok(git.requests.some((r) => r.user === 'alice' && r.allowed), 'the remote saw alice’s credential');
    const ws = join(t.dataDir, 'workspaces', s.id);
    assert.ok(!readFileSync(join(ws, '.git', 'config'), 'utf8').includes(ALICE_TOKEN));
  });

  it('push uses the credential too, and reaches the private remote', async () => {
    const { body } = await alice.start({ repo: { url: privateUrl }, prompt: 'edit', autoInitiate: true });
    const id = body.sessionId as string;
    await alice.waitFor(id, (v) => (v.changes?.files.length ?? 0) > 0 && v.status === 'ready', 30_000);
    const pushed = await alice.request('POST', `/v1/sessions/${id}/push`);
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    assert.equal(pushed.body.remote, privateUrl);
    const head = execFileSync('git', ['--git-dir', join(git.root, 'private.git'), 'rev-parse', `refs/heads/${pushed.body.branch}`], { encoding: 'utf8' }).trim();
    assert.equal(head, pushed.body.head);
  });

  it('no credential, or a wrong one: clone_failed with a clear message, even though a mirror of the repository exists', async () => {
    const mirrors = readdirSync(join(t.dataDir, 'mirrors'));
    assert.equal(mirrors.length, 1, 'alice’s sessions filled a mirror');
    const before = git.requests.length;
    const none = await startAndWait(bob, privateUrl);
    assert.equal(none.ready, false);
    assert.equal(none.view.lastError?.code, 'clone_failed');
    assert.match(none.view.lastError?.message ?? '', /Authentication failed|could not read Username|401/i);
    assert.ok(git.requests.slice(before).every((r) => r.user !== 'alice'), 'bob never used alice’s credential');
    // Bob stores a credential the remote accepts (carol's login), but not for this repository.
    assert.equal((await bob.request('PUT', `/v1/credentials/${encodeURIComponent(git.host)}`, { username: 'carol', token: CAROL_TOKEN })).status, 200);
    const wrong = await startAndWait(bob, privateUrl);
    assert.equal(wrong.view.lastError?.code, 'clone_failed');
    assert.equal(filesHolding(join(t.dataDir, 'workspaces', wrong.id), '# private').length, 0, 'nothing of the private repository reached bob');
    // The same credential works where the remote lets her in.
    const allowed = await startAndWait(bob, `${git.url}/other.git`);
    assert.ok(allowed.ready, JSON.stringify(allowed.view.lastError));
  });

  it('a credential in the URL is used for that session and never stored in the URL or the clone', async () => {
    const url = `http://alice:${ALICE_TOKEN}@${git.host}/private.git`;
    const s = await startAndWait(t.api('bob'), url);
    assert.ok(s.ready, JSON.stringify(s.view.lastError));
    assert.equal(s.view.repo.url, privateUrl);
    assert.ok(!readFileSync(join(t.dataDir, 'workspaces', s.id, '.git', 'config'), 'utf8').includes(ALICE_TOKEN));
  });

  it('secrets: setup-only ones reach setup commands only; agent ones the agent too, redacted in its output', async () => {
    assert.equal((await alice.request('PUT', '/v1/secrets/SETUP_ONLY', { value: SETUP_SECRET, exposeTo: 'setup' })).status, 200);
    assert.equal((await alice.request('PUT', '/v1/secrets/AGENT_VISIBLE', { value: AGENT_SECRET, exposeTo: 'agent', repo: `${privateUrl}/` })).status, 200);
    assert.equal((await alice.request('PUT', '/v1/secrets/bad-name', { value: SETUP_SECRET, exposeTo: 'setup' })).status, 400);
    assert.equal((await alice.request('PUT', '/v1/secrets/SHORT', { value: 'short', exposeTo: 'setup' })).status, 400);
    const list = (await alice.request('GET', '/v1/secrets')).body.secrets as { name: string; repo: string | null; exposeTo: string }[];
    assert.deepEqual(list.map((s) => [s.name, s.repo, s.exposeTo]), [
      ['AGENT_VISIBLE', `${git.url}/private`, 'agent'], // the repository as scoped: no .git, no trailing /
      ['SETUP_ONLY', null, 'setup'],
    ]);
    assert.ok(!JSON.stringify(list).includes(SETUP_SECRET) && !JSON.stringify(list).includes(AGENT_SECRET));
    const setup = ['echo "setup-saw-setup=$(printf %s "$SETUP_ONLY" | sha256sum | cut -c1-16) agent=$(printf %s "$AGENT_VISIBLE" | sha256sum | cut -c1-16)" > setup-saw.txt'];
    const s = await startAndWait(alice, privateUrl, { setup });
    assert.ok(s.ready, JSON.stringify(s.view.lastError));
    const answer = answerOf(s.events);
    const sha = (v: string) => execFileSync('sh', ['-c', 'printf %s "$1" | sha256sum | cut -c1-16', 'sh', v], { encoding: 'utf8' }).trim();
    assert.match(answer, new RegExp(`^agent-secret-sha=${sha(AGENT_SECRET)}$`, 'm'), 'the agent has its secret');
    assert.match(answer, /^setup-absent$/m, 'a setup-only secret never reaches the agent');
    assert.match(answer, /^printed=\[redacted\]$/m, 'what the agent prints of a secret is redacted');
    assert.match(answer, new RegExp(`setup-saw-setup=${sha(SETUP_SECRET)} agent=${sha(AGENT_SECRET)}`), 'setup commands get all of them');
    // Scoped to the repository: another repository's session does not get AGENT_VISIBLE.
    const other = await startAndWait(alice, `${git.url}/other.git`, { setup });
    assert.match(answerOf(other.events), /^agent-secret-sha=e3b0c44298fc1c14$/m, 'empty: not this repository’s secret');
    assert.equal((await alice.request('DELETE', '/v1/secrets/AGENT_VISIBLE')).status, 404, 'scoped: named with its repository');
    assert.equal((await alice.request('DELETE', `/v1/secrets/AGENT_VISIBLE?repo=${encodeURIComponent(privateUrl)}`)).status, 204);
  });

  it('no token or secret value anywhere: data dir (database, clones, mirrors, checkpoints, logs), events, views', async () => {
    for (const needle of [ALICE_TOKEN, CAROL_TOKEN, SETUP_SECRET, AGENT_SECRET]) {
      assert.deepEqual(filesHolding(t.dataDir, needle), [], `${needle.slice(0, 10)}… is in no file of the data dir`);
    }
    for (const api of [alice, bob]) {
      const sessions = (await api.request('GET', '/v1/sessions')).body.sessions as { id: string }[];
      for (const s of sessions) {
        const stream = await api.stream(s.id);
        await stream.waitFor((e) => e.type === 'connected');
        const everything = JSON.stringify(stream.events) + JSON.stringify(s) + String((await api.request('GET', `/v1/sessions/${s.id}/log`)).body);
        await stream.close();
        for (const needle of [ALICE_TOKEN, CAROL_TOKEN, SETUP_SECRET, AGENT_SECRET]) assert.ok(!everything.includes(needle), `${needle.slice(0, 10)}… in session ${s.id}`);
      }
    }
  });
});
