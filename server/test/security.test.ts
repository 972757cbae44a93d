// Invariant 10 and the API's boundaries: auth, tickets, ownership, validation.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_PROTOCOL_VERSION } from '@berth/protocol';
import { git, transportConfig } from '../src/git/git';
import { ApiClient, makeRepo, removeDir, startTestServer, tempDir, TOKENS, wsStatus, type TestServer } from './helpers';

/** Every file name under a folder, recursively (symbolic links not followed). */
function allNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: false }).map(String);
}

describe('auth, tickets and ownership', () => {
  let t: TestServer;
  let aliceSession: string;
  let repo: string;
  before(async () => {
    let now = Date.now();
    t = await startTestServer({ agentCommand: 'cat' }, { clock: () => now });
    repo = makeRepo();
    const r = await t.api('alice').start({ repo: { url: repo }, prompt: 'mine', autoInitiate: true });
    aliceSession = r.body.sessionId;
    // Tests below move the clock to expire tickets.
    (t as unknown as { advance: (ms: number) => void }).advance = (ms) => (now += ms);
    await t.api('alice').waitFor(aliceSession, (s) => s.status === 'ready');
  });
  after(() => t.close());

  it('needs a bearer token on every route but /healthz', async () => {
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    for (const [method, path] of [
      ['GET', '/v1/sessions'],
      ['POST', '/v1/sessions'],
      ['GET', `/v1/sessions/${aliceSession}`],
      ['POST', `/v1/sessions/${aliceSession}/messages`],
      ['POST', `/v1/sessions/${aliceSession}/stream-ticket`],
      ['DELETE', `/v1/sessions/${aliceSession}`],
    ] as const) {
      const none = await fetch(t.url + path, { method });
      assert.equal(none.status, 401, `${method} ${path} without a token`);
      assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'unauthorized');
      const wrong = await new ApiClient(t.url, TOKENS.alice + 'x').request(method, path);
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
    }
  });

  it("answers 404 for another user's session on every route and for tickets", async () => {
    const bob = t.api('bob');
    for (const [method, path, body] of [
      ['GET', `/v1/sessions/${aliceSession}`, undefined],
      ['POST', `/v1/sessions/${aliceSession}/messages`, { text: 'hi' }],
      ['POST', `/v1/sessions/${aliceSession}/retry`, undefined],
      ['POST', `/v1/sessions/${aliceSession}/interrupt`, undefined],
      ['POST', `/v1/sessions/${aliceSession}/stream-ticket`, undefined],
      ['GET', `/v1/sessions/${aliceSession}/log`, undefined],
      ['DELETE', `/v1/sessions/${aliceSession}`, undefined],
    ] as const) {
      const r = await bob.request(method, path, body);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.body.error.code, 'not_found');
    }
    assert.deepEqual((await bob.request('GET', '/v1/sessions')).body.sessions, []);
    assert.equal((await t.api('alice').get(aliceSession)).status, 200, 'still there for alice');
  });

  it('refuses tampered, expired, replayed and cross-session tickets', async () => {
    const alice = t.api('alice');
    const streamUrl = (id: string, ticket: string) => `${t.url.replace('http', 'ws')}/v1/sessions/${id}/stream?ticket=${encodeURIComponent(ticket)}`;
    const good = await alice.ticket(aliceSession);
    assert.equal(await wsStatus(streamUrl(aliceSession, good)), 101);
    assert.equal(await wsStatus(streamUrl(aliceSession, good)), 401, 'a ticket is single-use');

    const [payload, sig] = (await alice.ticket(aliceSession)).split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), u: 'bob' })).toString('base64url');
    assert.equal(await wsStatus(streamUrl(aliceSession, `${forged}.${sig}`)), 401, 'tampered payload');
    assert.equal(await wsStatus(streamUrl(aliceSession, `${payload}.${sig!.slice(0, -2)}xx`)), 401, 'tampered signature');

    const other = await alice.start({ repo: { url: repo }, prompt: 'two', autoInitiate: true });
    const ticketForOther = await alice.ticket(other.body.sessionId);
    assert.equal(await wsStatus(streamUrl(aliceSession, ticketForOther)), 401, 'ticket bound to another session');

    const expiring = await alice.ticket(aliceSession);
    (t as unknown as { advance: (ms: number) => void }).advance(61_000);
    assert.equal(await wsStatus(streamUrl(aliceSession, expiring)), 401, 'expired after 60 s');

    assert.equal(await wsStatus(streamUrl(aliceSession, 'garbage')), 401);
    assert.equal(await wsStatus(`${t.url.replace('http', 'ws')}/v1/sessions/${aliceSession}/stream`), 400, 'no ticket');
    assert.equal(await wsStatus(`${t.url.replace('http', 'ws')}/v1/sessions/nope/stream?ticket=x`), 404);
  });

  it('validates every body with a clear 400 and never answers 5xx to bad input', async () => {
    const alice = t.api('alice');
    const cases: [unknown, RegExp][] = [
      [{}, /repo/],
      [{ repo: { url: '' } }, /repo\.url/],
      [{ repo: { url: repo }, autoInitiate: true }, /prompt is required/],
      [{ repo: { url: repo }, autoInitiate: 'yes' }, /autoInitiate/],
      [{ repo: { url: repo }, setup: 'npm ci' }, /setup/],
      [{ repo: { url: repo }, extra: 1 }, /extra|Unrecognized/i],
      [{ repo: { url: '--upload-pack=touch /tmp/pwned' } }, /cannot start with "-"/],
      [{ repo: { url: 'ext::sh -c touch% /tmp/pwned' } }, /spaces|transports/],
      [{ repo: { url: 'fd::17' } }, /remote helper/],
      [{ repo: { url: 'ftp://example.com/x.git' } }, /"ftp" transport is not allowed/],
      [{ repo: { url: repo, branch: '--force' } }, /cannot start with "-"/],
      [{ repo: { url: repo, branch: 'a..b' } }, /not a valid branch name/],
      [{ repo: { url: 'x'.repeat(5000) } }, /repo\.url/],
      [[1, 2, 3], /./],
      ['not json at all', /JSON|body/i],
    ];
    for (const [body, pattern] of cases) {
      const r = await alice.request('POST', '/v1/sessions', body);
      assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(typeof r.body.error.message, 'string');
      assert.match(r.body.error.message, pattern, JSON.stringify(r.body));
    }
    const proto = await alice.request('POST', '/v1/sessions', '{"repo":{"url":"/x"},"__proto__":{"admin":true}}');
    assert.equal(proto.status, 400);
    const big = await alice.request('POST', '/v1/sessions', { repo: { url: repo }, prompt: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'payload_too_large');
    const wrongType = await alice.request('POST', '/v1/sessions', 'a=b', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(wrongType.status, 415);
    assert.equal((await alice.request('POST', `/v1/sessions/${aliceSession}/messages`, { text: '   ' })).status, 400);
    assert.equal((await alice.request('GET', '/v1/nothing')).status, 404);
    assert.equal((await alice.request('GET', '/v1/sessions/ses_doesnotexist0000000000000')).status, 404);
  });

  it('refuses local repositories unless the server allows them', async () => {
    const strict = await startTestServer({ allowLocalRepos: false });
    try {
      for (const url of [repo, `file://${repo}`]) {
        const r = await strict.api('alice').start({ repo: { url }, prompt: 'x', autoInitiate: true });
        assert.equal(r.status, 400);
        assert.match(r.body.error.message, /local repositories are disabled/);
      }
    } finally {
      await strict.close();
    }
  });

  it('never shows credentials of a repository URL', async () => {
    const alice = t.api('alice');
    const r = await alice.start({ repo: { url: 'https://user:s3cretTOKEN@127.0.0.1:1/x.git' }, prompt: 'x', autoInitiate: true });
    assert.equal(r.status, 202);
    const s = await alice.waitFor(r.body.sessionId, (v) => v.status === 'failed');
    const everything = JSON.stringify(s) + (await alice.request('GET', `/v1/sessions/${r.body.sessionId}/log`)).body;
    assert.ok(!everything.includes('s3cretTOKEN'), everything);
    // Taken out of the URL: used for this session only, never stored in it.
    assert.equal(s.repo.url, 'https://127.0.0.1:1/x.git');
  });

  it('limits session starts per user: 429 with Retry-After and the standard body, configurable, others unaffected', async () => {
    let now = Date.now();
    const limited = await startTestServer({ agentCommand: 'cat', startRate: { perMinute: 60, burst: 3 } }, { clock: () => now });
    try {
      const alice = limited.api('alice');
      const start = (api: ApiClient) => api.start({ repo: { url: repo }, prompt: 'x', autoInitiate: true });
      for (let i = 0; i < 3; i++) assert.equal((await start(alice)).status, 202, `start ${i} within the burst`);
      // A malformed start creates nothing, so it costs nothing.
      assert.equal((await alice.start({ repo: { url: '' } })).status, 400);
      const refused = await start(alice);
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(refused.body.error.code, 'rate_limited');
      assert.match(refused.body.error.message, /too many session starts; retry in 1 s/);
      assert.equal((await start(limited.api('bob'))).status, 202, 'the bucket is per user');
      assert.equal((await alice.request('GET', '/v1/sessions')).body.sessions.length, 3, 'the refused start created nothing');
      now += 1000;
      assert.equal((await start(alice)).status, 202, 'one token back after a second at 60/min');
      assert.equal((await start(alice)).status, 429);
    } finally {
      await limited.close();
    }
  });

  it('refuses tickets minted by another server (another secret) and tickets of a deleted session', async () => {
    const alice = t.api('alice');
    const other = await startTestServer({ agentCommand: 'cat' });
    try {
      const foreign = await other.api('alice').ticket((await other.api('alice').start({ repo: { url: repo }, prompt: 'x', autoInitiate: true })).body.sessionId);
      const streamUrl = (ticket: string) => `${t.url.replace('http', 'ws')}/v1/sessions/${aliceSession}/stream?ticket=${encodeURIComponent(ticket)}`;
      assert.equal(await wsStatus(streamUrl(foreign)), 401, 'signed with another secret');
    } finally {
      await other.close();
    }
    const doomed = await alice.start({ repo: { url: repo }, prompt: 'bye', autoInitiate: true });
    const ticket = await alice.ticket(doomed.body.sessionId);
    assert.equal((await alice.request('DELETE', `/v1/sessions/${doomed.body.sessionId}`)).status, 204);
    assert.equal(
      await wsStatus(`${t.url.replace('http', 'ws')}/v1/sessions/${doomed.body.sessionId}/stream?ticket=${encodeURIComponent(ticket)}`),
      404,
      'the session is gone',
    );
  });
});

describe('a hostile agent host', () => {
  it('(it runs in the sandbox) cannot exhaust the server with a line that never ends: it is stopped, the session fails cleanly', async () => {
    const dir = tempDir('berth-flood-');
    const script = join(dir, 'flood-host.mjs');
    // Says hello like a real host, then answers the session import with 40 MB and no newline.
    writeFileSync(
      script,
      `process.stdout.write(JSON.stringify({ type: 'hello', version: ${JSON.stringify(AGENT_PROTOCOL_VERSION)}, driver: 'flood', pid: process.pid }) + '\\n');
process.stdin.on('data', () => { const chunk = 'a'.repeat(1 << 20); for (let i = 0; i < 40; i++) process.stdout.write(chunk); });
setInterval(() => {}, 1000);\n`,
    );
    const server = await startTestServer({ agentHostScript: script });
    try {
      const alice = server.api('alice');
      const r = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true });
      const failed = await alice.waitFor(r.body.sessionId, (s) => s.status === 'failed', 30_000);
      assert.equal(failed.lastError?.step, 'session_import', JSON.stringify(failed.lastError));
      assert.match(failed.lastError.message, /a line of more than 16 Mi characters without an end; it was stopped/);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    } finally {
      await server.close();
      removeDir(dir);
    }
  });
});

describe('tickets across a restart', () => {
  // Spent nonces are durable (in the store), so the restart forgets none: a ticket spent before it
  // stays spent, and one minted but unspent before it works once, like on any other instance.
  it('a ticket spent before a restart cannot be replayed after it; an unspent one works once', async () => {
    const dataDir = tempDir('berth-restart-');
    let server = await startTestServer({ dataDir, agentCommand: 'cat' });
    try {
      const alice = server.api('alice');
      const id = (await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true })).body.sessionId as string;
      const spent = await alice.ticket(id);
      const unspent = await alice.ticket(id);
      const url = (base: string, ticket: string) => `${base.replace('http', 'ws')}/v1/sessions/${id}/stream?ticket=${encodeURIComponent(ticket)}`;
      assert.equal(await wsStatus(url(server.url, spent)), 101);
      await server.close();
      server = await startTestServer({ dataDir, agentCommand: 'cat' });
      assert.equal(await wsStatus(url(server.url, spent)), 401, 'replayed after the restart');
      assert.equal(await wsStatus(url(server.url, unspent)), 101, 'minted before the restart, spent after it');
      assert.equal(await wsStatus(url(server.url, unspent)), 401, 'and only once');
      assert.equal(await wsStatus(url(server.url, await server.api('alice').ticket(id))), 101, 'a fresh ticket works');
    } finally {
      await server.close();
      removeDir(dataDir);
    }
  });
});

describe('git argument injection and transport abuse', () => {
  it('option-looking hosts, refs and remote helpers never run a command', async () => {
    const strict = await startTestServer({ allowLocalRepos: false, agentCommand: 'cat' });
    const pwned = `berth-pwned-${randomBytes(4).toString('hex')}`;
    try {
      const alice = strict.api('alice');
      // Refused at the door: option injection, remote helpers, local paths with local repos off.
      for (const [repo, why] of [
        [{ url: `--upload-pack=touch ${pwned}` }, /cannot start with "-"/],
        [{ url: 'https://127.0.0.1:9/r.git', branch: `--upload-pack=touch${'${IFS}'}${pwned}` }, /cannot start with "-"/],
        [{ url: 'https://127.0.0.1:9/r.git', branch: '@{-1}' }, /not a valid branch name/],
        [{ url: `ext::sh -c touch% ${pwned}` }, /spaces|remote helper/],
        [{ url: `ext::sh${'${IFS}'}-c${'${IFS}'}touch${'${IFS}'}${pwned}` }, /remote helper/],
        [{ url: 'fd::0' }, /remote helper/],
        [{ url: 'FILE:///etc' }, /local repositories are disabled/],
        [{ url: '/etc' }, /local repositories are disabled/],
      ] as const) {
        const r = await alice.start({ repo, prompt: 'x', autoInitiate: true });
        assert.equal(r.status, 400, JSON.stringify(repo));
        assert.match(r.body.error.message, why, JSON.stringify(repo));
      }
      // Accepted by the URL check, stopped by git itself (a host that reads as an ssh option, the
      // CVE-2017-1000117 pattern): the clone fails cleanly and no command ran.
      for (const url of [`ssh://-oProxyCommand=touch${'${IFS}'}${pwned}/x`, `git://-oProxyCommand=touch${'${IFS}'}${pwned}/x`]) {
        const r = await alice.start({ repo: { url }, prompt: 'x', autoInitiate: true });
        assert.equal(r.status, 202, url);
        const failed = await alice.waitFor(r.body.sessionId, (s) => s.status === 'failed');
        assert.equal(failed.lastError?.step, 'clone', JSON.stringify(failed.lastError));
        assert.match(failed.lastError.message, /strange hostname .* blocked|unable to look up/, url);
      }
      // A relative path lands in git's working directory: the server's, or somewhere in its data dir.
      assert.equal(existsSync(join(process.cwd(), pwned)), false, `a command ran: ${pwned} in ${process.cwd()}`);
      assert.ok(!allNames(strict.dataDir).some((n) => n.includes(pwned)), `a command ran: ${pwned} in the data dir`);
    } finally {
      await strict.close();
    }
  });

  it('git itself refuses every transport but the one the URL check allowed (protocol.allow)', async () => {
    const dir = tempDir('berth-transport-');
    const marker = join(dir, 'pwned');
    try {
      const source = makeRepo();
      const attempts: [string, string][] = [
        ['https', `ext::sh -c touch% ${marker}`],
        ['https', `file://${source}`],
        ['https', source],
        ['ssh', 'fd::0'],
      ];
      for (const [allowed, url] of attempts) {
        const r = await git([...transportConfig(allowed as 'https' | 'ssh'), 'clone', '--', url, join(dir, `clone-${randomBytes(3).toString('hex')}`)], { timeoutMs: 10_000, cwd: dir });
        assert.notEqual(r.exitCode, 0, `${url} with only ${allowed} allowed`);
        assert.match(r.output.lastLines(5).join('\n'), /transport '\w+' not allowed|not allowed/, url);
      }
      assert.equal(existsSync(marker), false);
      // The control: the same clone with its own transport allowed works.
      const ok = await git([...transportConfig('file'), 'clone', '--', source, join(dir, 'control')], { timeoutMs: 10_000, cwd: dir });
      assert.equal(ok.exitCode, 0, ok.output.lastLines(5).join('\n'));
    } finally {
      removeDir(dir);
    }
  });
});
