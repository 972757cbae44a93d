// The secret key and what it seals: AES-256-GCM that refuses tampering and misplaced values,
// credentials that survive a restart and still open a private repository, and a server that
// refuses to start with a key that cannot open its store (naming the key, never showing it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SecretCipher, parseKey } from '../src/vault/cipher';
import { normalizeRepoUrl, splitUrlCredential } from '../src/vault/vault';
import { ApiClient, CLI, isReady, spawnCli, tempDir, testStoreFor, TEST_PG_URL, TEST_SECRET_KEY } from './helpers';
import { createRepo, startGitHttpServer, type GitHttpServer } from './fixtures/git-http-server';

const TOKEN = 'tok_vault_test_0123456789';
const GIT_TOKEN = 'vault-test-git-token-98765';

/** Starts the real server and expects it to refuse: its exit code and what it said. */
function refusedStart(dataDir: string, args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...args], {
      env: { ...process.env, BERTH_TOKENS: `alice:${TOKEN}`, BERTH_SECRET_KEY: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('the secret cipher', () => {
  const cipher = new SecretCipher(randomBytes(32));
  it('round-trips, with a fresh nonce each time', () => {
    const a = cipher.encrypt('s3cret-value', 'ctx');
    assert.notEqual(a, cipher.encrypt('s3cret-value', 'ctx'));
    assert.equal(cipher.decrypt(a, 'ctx'), 's3cret-value');
    assert.ok(!a.includes('s3cret'));
  });
  it('refuses a tampered value, another context (a value moved to another row), another key', () => {
    const sealed = cipher.encrypt('s3cret-value', 'credential\0alice\0github.com');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
    assert.throws(() => cipher.decrypt(`v1:${raw.toString('base64')}`, 'credential\0alice\0github.com'));
    assert.throws(() => cipher.decrypt(sealed, 'credential\0bob\0github.com'));
    assert.throws(() => new SecretCipher(randomBytes(32)).decrypt(sealed, 'credential\0alice\0github.com'));
  });
  it('keys as 64 hex digits or base64 of 32 bytes, nothing else', () => {
    assert.equal(parseKey('ab'.repeat(32))?.length, 32);
    assert.equal(parseKey(randomBytes(32).toString('base64'))?.length, 32);
    assert.equal(parseKey('ab'.repeat(31)), null);
    assert.equal(parseKey('not a key'), null);
    assert.equal(parseKey(randomBytes(16).toString('base64')), null);
  });
  it('takes credentials out of URLs; scopes repositories without them', () => {
    assert.deepEqual(splitUrlCredential('https://bob:hunter2-token@git.example/x.git'), { url: 'https://git.example/x.git', credential: { username: 'bob', token: 'hunter2-token' } });
    assert.deepEqual(splitUrlCredential('https://ghp_abcdefghijklmnopqrstuvwxyz@github.com/o/r'), {
      url: 'https://github.com/o/r',
      credential: { username: 'x-access-token', token: 'ghp_abcdefghijklmnopqrstuvwxyz' },
    });
    assert.deepEqual(splitUrlCredential('https://bob@git.example/x.git'), { url: 'https://bob@git.example/x.git', credential: null }, 'a user name alone is no credential');
    assert.deepEqual(splitUrlCredential('git@github.com:o/r.git'), { url: 'git@github.com:o/r.git', credential: null });
    assert.equal(normalizeRepoUrl('HTTPS://GitHub.com/o/r.git/'), 'https://github.com/o/r');
    assert.equal(normalizeRepoUrl('https://u:p@github.com/o/r'), 'https://github.com/o/r');
  });
});

describe('credentials across restarts, and the wrong key', () => {
  let git: GitHttpServer;
  before(async () => {
    const root = tempDir('berth-git-root-');
    createRepo(root, 'private.git', { 'README.md': '# private\n' });
    git = await startGitHttpServer(root, { alice: { password: GIT_TOKEN, repos: ['private.git'] } });
  });
  after(async () => git?.close());

  it('a stored credential survives a restart and still opens the private repository', async () => {
    const dataDir = tempDir();
    const first = await spawnCli(dataDir, ['--allow-http', '--agent-command', 'cat'], `alice:${TOKEN}`);
    const api = new ApiClient(first.url, TOKEN);
    assert.equal((await api.request('PUT', `/v1/credentials/${encodeURIComponent(git.host)}`, { username: 'alice', token: GIT_TOKEN })).status, 200);
    first.child.kill('SIGTERM');
    await new Promise((r) => first.child.once('exit', r));
    const second = await spawnCli(dataDir, ['--allow-http', '--agent-command', 'cat'], `alice:${TOKEN}`);
    try {
      const again = new ApiClient(second.url, TOKEN);
      assert.deepEqual((await again.request('GET', '/v1/credentials')).body.credentials.map((c: { host: string }) => c.host), [git.host]);
      const { body } = await again.start({ repo: { url: `${git.url}/private.git` }, prompt: 'hi', autoInitiate: true });
      const stream = await again.stream(body.sessionId);
      await stream.waitFor(isReady, 30_000, 'ready on the private repository');
      await stream.close();
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
  });

  it('a key that cannot open the store stops the server at startup, naming the key and never showing it', async () => {
    const dataDir = tempDir();
    const started = await spawnCli(dataDir, ['--agent-command', 'cat'], `alice:${TOKEN}`);
    const api = new ApiClient(started.url, TOKEN);
    assert.equal((await api.request('PUT', '/v1/secrets/NPM_TOKEN', { value: 'npm-secret-value', exposeTo: 'setup' })).status, 200);
    started.child.kill('SIGTERM');
    await new Promise((r) => started.child.once('exit', r));
    const store = await testStoreFor(dataDir);
    const storeArgs = store ? ['--store', store] : [];
    const wrongKey = 'c'.repeat(64);
    const wrong = await refusedStart(dataDir, storeArgs, { BERTH_SECRET_KEY: wrongKey });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /BERTH_SECRET_KEY cannot open the credentials and secrets already stored/);
    assert.ok(!wrong.stderr.includes(wrongKey) && !wrong.stderr.includes(TEST_SECRET_KEY), 'the key is named, never shown');
    if (!store) {
      // One instance on SQLite: the key file in the data dir, replaced by another key.
      const keyFile = join(dataDir, 'secret-key');
      const original = readFileSync(keyFile, 'utf8');
      writeFileSync(keyFile, `${'d'.repeat(64)}\n`);
      const swapped = await refusedStart(dataDir, [], {});
      assert.notEqual(swapped.code, 0);
      assert.match(swapped.stderr, /the key file .*secret-key cannot open the credentials and secrets already stored/);
      assert.ok(!swapped.stderr.includes('d'.repeat(64)) && !swapped.stderr.includes(original.trim()));
      const malformed = await refusedStart(dataDir, [], { BERTH_SECRET_KEY: 'too-short' });
      assert.match(malformed.stderr, /BERTH_SECRET_KEY must be 32 bytes/);
    }
  });

  it('PostgreSQL: several instances need the same BERTH_SECRET_KEY; without one the server refuses to start', { skip: TEST_PG_URL ? false : 'needs BERTH_TEST_PG_URL' }, async () => {
    const dataDir = tempDir();
    const store = (await testStoreFor(dataDir))!;
    const missing = await refusedStart(dataDir, ['--store', store], { BERTH_SECRET_KEY: undefined });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /BERTH_SECRET_KEY is required with a PostgreSQL store/);
    // Two instances on one database, the same key: a credential stored through one opens the repository through the other.
    const a = await spawnCli(tempDir(), ['--store', store, '--instance-id', 'vault_a', '--allow-http', '--agent-command', 'cat'], `alice:${TOKEN}`);
    const b = await spawnCli(tempDir(), ['--store', store, '--instance-id', 'vault_b', '--allow-http', '--agent-command', 'cat'], `alice:${TOKEN}`);
    try {
      assert.equal((await new ApiClient(a.url, TOKEN).request('PUT', `/v1/credentials/${encodeURIComponent(git.host)}`, { username: 'alice', token: GIT_TOKEN })).status, 200);
      const viaB = new ApiClient(b.url, TOKEN);
      const { body } = await viaB.start({ repo: { url: `${git.url}/private.git` }, prompt: 'hi', autoInitiate: true });
      await viaB.waitFor(body.sessionId, (s) => s.status === 'ready' || s.status === 'failed', 30_000);
      const view = (await viaB.get(body.sessionId)).body;
      assert.equal(view.status, 'ready', JSON.stringify(view.lastError));
    } finally {
      for (const i of [a, b]) {
        i.child.kill('SIGTERM');
        await new Promise((r) => i.child.once('exit', r));
      }
    }
  });
});
