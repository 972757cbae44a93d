// The API client's credential and secret methods against the real server: put, list, replace and
// delete; 400 for short values, bad names and bad hosts; 404 for what is not there; and no list
// answer (read raw, before the schema could drop a field) holding a token or a value. Connect
// GitHub runs with a stand-in for VS Code's GitHub sign-in and the real server behind it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectGitHub } from '../src/credentials/githubConnect';
import { ApiError } from '../src/session/apiClient';
import { startRealServer, type RealServer } from './helpers/realServer';

const GITHUB_TOKEN = 'ghp_test_credential_0123456789abcdef';
const GITLAB_TOKEN = 'glpat-test-credential-abcdefghij';
const SECRET_VALUE = 'npm_secret_value_for_all_sessions';
const SCOPED_VALUE = 'scoped-secret-value-for-one-repo';

describe('ApiClient: git credentials and secrets (real server)', () => {
  let real: RealServer;
  /** The body of a GET exactly as the server sent it. */
  const raw = async (path: string) => {
    const res = await fetch(`${real.server.baseUrl}${path}`, { headers: { authorization: `Bearer ${real.server.token}` } });
    assert.equal(res.status, 200);
    return res.text();
  };
  const refusal = async (promise: Promise<unknown>) => {
    const err = await promise.then(
      () => assert.fail('the server accepted it'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApiError, String(err));
    return err;
  };

  before(async () => {
    real = await startRealServer();
  });
  after(async () => {
    await real?.close();
  });

  it('credentials: put (default user name), put with a port and a user name, list without tokens', async () => {
    const github = await real.api.putCredential('github.com', { token: GITHUB_TOKEN });
    assert.equal(github.host, 'github.com');
    assert.equal(github.username, 'x-access-token');
    assert.ok(!JSON.stringify(github).includes(GITHUB_TOKEN), 'the answer to a PUT holds no token');
    const gitlab = await real.api.putCredential('gitlab.example.com:8443', { username: 'oauth2', token: GITLAB_TOKEN });
    assert.equal(gitlab.host, 'gitlab.example.com:8443', 'host:port goes through the path URL-encoded');
    assert.equal(gitlab.username, 'oauth2');
    const list = await real.api.listCredentials();
    assert.deepEqual(list.map((c) => `${c.host} ${c.username}`).sort(), ['github.com x-access-token', 'gitlab.example.com:8443 oauth2']);
    const body = await raw('/v1/credentials');
    assert.ok(!body.includes(GITHUB_TOKEN) && !body.includes(GITLAB_TOKEN), 'the raw list holds no token');
    assert.deepEqual(Object.keys(JSON.parse(body).credentials[0]).sort(), ['createdAt', 'host', 'updatedAt', 'username']);
  });

  it('credentials: a second put replaces the token and user name of that host', async () => {
    const before = (await real.api.listCredentials()).find((c) => c.host === 'github.com')!;
    await new Promise((r) => setTimeout(r, 5));
    const replaced = await real.api.putCredential('github.com', { username: 'octocat', token: `${GITHUB_TOKEN}-2` });
    assert.equal(replaced.username, 'octocat');
    assert.equal(replaced.createdAt, before.createdAt, 'still the same credential');
    assert.ok(replaced.updatedAt > before.updatedAt, `updated (${before.updatedAt} → ${replaced.updatedAt})`);
    assert.equal((await real.api.listCredentials()).length, 2);
  });

  it('credentials: 400 for a short token, a token with blanks, a bad host or user name; nothing stored, no token in the message', async () => {
    const short = await refusal(real.api.putCredential('example.com', { token: 'abc1234' }));
    assert.equal(short.status, 400);
    assert.equal(short.code, 'bad_request');
    assert.match(short.message, /at least 8 characters/);
    assert.ok(!short.message.includes('abc1234'));
    assert.equal((await refusal(real.api.putCredential('example.com', { token: 'abcd efgh ijkl' }))).status, 400);
    for (const host of ['GitHub.com', 'github.com/acme', 'exa mple.com', 'github.com:123456', '-bad.com']) {
      const err = await refusal(real.api.putCredential(host, { token: GITHUB_TOKEN }));
      assert.equal(err.status, 400, `${host}: ${err.status} ${err.message}`);
    }
    assert.equal((await refusal(real.api.putCredential('example.com', { username: 'a b', token: GITHUB_TOKEN }))).status, 400);
    assert.deepEqual((await real.api.listCredentials()).map((c) => c.host).sort(), ['github.com', 'gitlab.example.com:8443']);
  });

  it('credentials: delete answers 204, then 404 for what is not there', async () => {
    await real.api.deleteCredential('gitlab.example.com:8443');
    assert.deepEqual((await real.api.listCredentials()).map((c) => c.host), ['github.com']);
    const again = await refusal(real.api.deleteCredential('gitlab.example.com:8443'));
    assert.equal(again.status, 404);
    assert.equal(again.code, 'not_found');
    assert.equal((await refusal(real.api.deleteCredential('never.example.com'))).status, 404);
    await real.api.deleteCredential('github.com');
    assert.deepEqual(await real.api.listCredentials(), []);
  });

  it('secrets: for all sessions and for one repository (its URL normalised), listed without values', async () => {
    const all = await real.api.putSecret('NPM_TOKEN', { value: SECRET_VALUE, exposeTo: 'setup' });
    assert.deepEqual({ name: all.name, repo: all.repo, exposeTo: all.exposeTo }, { name: 'NPM_TOKEN', repo: null, exposeTo: 'setup' });
    const scoped = await real.api.putSecret('NPM_TOKEN', { value: SCOPED_VALUE, repo: 'https://GitHub.com/acme/app.git', exposeTo: 'agent' });
    assert.equal(scoped.repo, 'https://github.com/acme/app', 'the server keeps the scope without .git and with the host in lower case');
    assert.equal(scoped.exposeTo, 'agent');
    const list = await real.api.listSecrets();
    assert.deepEqual(list.map((s) => `${s.name} ${s.repo} ${s.exposeTo}`).sort(), ['NPM_TOKEN https://github.com/acme/app agent', 'NPM_TOKEN null setup']);
    const body = await raw('/v1/secrets');
    assert.ok(!body.includes(SECRET_VALUE) && !body.includes(SCOPED_VALUE), 'the raw list holds no value');
    assert.deepEqual(Object.keys(JSON.parse(body).secrets[0]).sort(), ['createdAt', 'exposeTo', 'name', 'repo', 'updatedAt']);
  });

  it('secrets: the same name and scope replaces (value and exposure)', async () => {
    const replaced = await real.api.putSecret('NPM_TOKEN', { value: `${SECRET_VALUE}-2`, exposeTo: 'agent' });
    assert.equal(replaced.exposeTo, 'agent');
    const list = await real.api.listSecrets();
    assert.equal(list.length, 2, 'replaced, not added');
    assert.equal(list.find((s) => s.repo === null)?.exposeTo, 'agent');
  });

  it('secrets: 400 for a short value or a name that is not an environment variable name', async () => {
    const short = await refusal(real.api.putSecret('SHORT', { value: '1234567', exposeTo: 'setup' }));
    assert.equal(short.status, 400);
    assert.match(short.message, /at least 8 characters/);
    for (const name of ['1BAD', 'MY-TOKEN', 'has space']) {
      const err = await refusal(real.api.putSecret(name, { value: SECRET_VALUE, exposeTo: 'setup' }));
      assert.equal(err.status, 400, `${name}: ${err.status} ${err.message}`);
    }
    const exposure = await refusal(real.api.putSecret('OK_NAME', { value: SECRET_VALUE, exposeTo: 'everyone' as 'agent' }));
    assert.equal(exposure.status, 400);
    assert.equal((await real.api.listSecrets()).length, 2, 'nothing stored');
  });

  it('secrets: delete by name and scope answers 204, then 404', async () => {
    // The scope as the user had it (with .git): the server normalises it the same way.
    await real.api.deleteSecret('NPM_TOKEN', 'https://github.com/acme/app.git');
    assert.deepEqual((await real.api.listSecrets()).map((s) => s.repo), [null], 'only the scoped one went');
    assert.equal((await refusal(real.api.deleteSecret('NPM_TOKEN', 'https://github.com/acme/app'))).status, 404);
    assert.equal((await refusal(real.api.deleteSecret('NPM_TOKEN', 'https://github.com/acme/other'))).status, 404);
    await real.api.deleteSecret('NPM_TOKEN');
    const gone = await refusal(real.api.deleteSecret('NPM_TOKEN'));
    assert.equal(gone.status, 404);
    assert.equal(gone.code, 'not_found');
    assert.deepEqual(await real.api.listSecrets(), []);
  });

  it('Connect GitHub: the sign-in\'s token stored for github.com as x-access-token; connecting again replaces it', async () => {
    const session = { accessToken: 'gho_connected_token_abcdefghijklmnop', account: { label: 'octocat' } };
    const protectedSecrets: string[] = [];
    const first = await connectGitHub({ getSession: async () => session, api: real.api, protect: (s) => protectedSecrets.push(s) });
    assert.equal(first.kind, 'connected');
    assert.ok(first.kind === 'connected' && first.account === 'octocat' && first.replaced === null);
    assert.deepEqual(protectedSecrets, [session.accessToken]);
    assert.deepEqual((await real.api.listCredentials()).map((c) => `${c.host} ${c.username}`), ['github.com x-access-token']);
    const second = await connectGitHub({ getSession: async () => session, api: real.api, protect: () => {} });
    assert.ok(second.kind === 'connected' && second.replaced?.host === 'github.com', 'says it replaced the earlier one');
    assert.ok(!(await raw('/v1/credentials')).includes(session.accessToken));
  });
});
