// When is a failure "this remote wants a credential"? Asked of what real git says to a real http
// remote that demands Basic auth, and of what the real server reports when a session's clone meets
// it. The credential the extension then stores (for the host it derives) must be the one the
// server's git presents to that remote: the 401 server sees it arrive.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialNeeded } from '../src/credentials/cloneAuth';
import { startRealServer, waitFor, type RealServer } from './helpers/realServer';

/** An http remote that refuses everyone, and remembers the Authorization headers it was shown. */
function refusingRemote(): Promise<{ server: Server; port: number; authorizations: string[] }> {
  const authorizations: string[] = [];
  const server = createServer((req, res) => {
    if (req.headers.authorization) authorizations.push(req.headers.authorization);
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="private"', 'Content-Type': 'text/plain' });
    res.end('authentication required\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, authorizations })));
}

/** `git clone` as the server runs it: no prompt, no helper, no user config (async: the remote is served by this process). */
function gitClone(url: string, dir: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'git',
      ['-c', 'credential.helper=', 'clone', '--', url, join(dir, `clone-${Date.now()}`)],
      { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: dir, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' } },
      (err, _stdout, stderr) => {
        assert.ok(err, 'the clone failed');
        resolve(stderr);
      },
    );
  });
}

describe('a failure that needs a git credential', () => {
  let remote: Awaited<ReturnType<typeof refusingRemote>>;
  let scratch: string;
  let real: RealServer;

  before(async () => {
    remote = await refusingRemote();
    scratch = mkdtempSync(join(tmpdir(), 'berth-cred-needed-'));
    real = await startRealServer({ extraArgs: ['--allow-http'] });
  });
  after(async () => {
    remote?.server.close();
    await real?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("git's own words: no credential, a refused one; and what is not about credentials", async () => {
    const url = `http://127.0.0.1:${remote.port}/acme/private.git`;
    const anonymous = await gitClone(url, scratch);
    assert.deepEqual(credentialNeeded(url, { message: anonymous }), { host: `127.0.0.1:${remote.port}` }, anonymous);
    const refused = await gitClone(`http://someone:wrong-password@127.0.0.1:${remote.port}/acme/private.git`, scratch);
    assert.deepEqual(credentialNeeded(url, { message: refused }), { host: `127.0.0.1:${remote.port}` }, refused);
    // A remote that is not there is no credential problem.
    const closed = await gitClone('http://127.0.0.1:9/acme/private.git', scratch);
    assert.equal(credentialNeeded('http://127.0.0.1:9/acme/private.git', { message: closed }), null, closed);
    // Nor is a failed setup command that happens to print such words, nor an ssh remote.
    assert.equal(credentialNeeded(url, { message: anonymous, step: 'setup' }), null);
    assert.equal(credentialNeeded('git@github.com:acme/private.git', { message: anonymous, step: 'clone' }), null);
    assert.deepEqual(credentialNeeded('https://github.com/acme/private.git', { message: "remote: Repository not found.\nfatal: repository 'https://github.com/acme/private.git/' not found" }), { host: 'github.com' });
  });

  it('a session whose clone is refused: its error says so; the credential stored for that host reaches the remote on Retry', async () => {
    const url = `http://127.0.0.1:${remote.port}/acme/private.git`;
    remote.authorizations.length = 0; // the test above showed it a wrong password itself
    const { sessionId } = await real.api.startSession({ repo: { url }, prompt: 'hello', autoInitiate: true });
    const failed = await waitFor('the failed clone', async () => {
      const view = await real.api.getSession(sessionId);
      return view.status === 'failed' ? view : undefined;
    }, 60_000);
    const needed = credentialNeeded(failed.repo.url, failed.lastError);
    assert.deepEqual(needed, { host: `127.0.0.1:${remote.port}` }, JSON.stringify(failed.lastError));
    assert.equal(remote.authorizations.length, 0, 'no credential was offered before one was stored');

    const token = 'stored-token-for-the-refusing-remote';
    await real.api.putCredential(needed.host, { token });
    await real.api.retry(sessionId);
    const shown = await waitFor('the remote to be shown a credential', () => remote.authorizations[0], 60_000);
    assert.equal(Buffer.from(shown.replace(/^Basic /, ''), 'base64').toString('utf8'), `x-access-token:${token}`);
    const again = await waitFor('the retry to fail too (this remote refuses everyone)', async () => {
      const view = await real.api.getSession(sessionId);
      return view.status === 'failed' ? view : undefined;
    }, 60_000);
    assert.ok(!JSON.stringify(again).includes(token), 'the token is in no answer');
    assert.deepEqual(credentialNeeded(again.repo.url, again.lastError), needed, `a refused credential is still one to replace: ${again.lastError?.message}`);
  });
});
