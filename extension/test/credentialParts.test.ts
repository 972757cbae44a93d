// The vscode-free parts of the credential and secret commands: hosts from remotes and typed text,
// the validation messages under the input boxes, the quick pick rows, and Connect GitHub's outcomes
// with the GitHub sign-in passed in (the server side of it is in credentialsApi.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_SECRET_LENGTH, type CredentialView, type SecretView } from '@berth/protocol';
import { connectGitHub, isCancellation } from '../src/credentials/githubConnect';
import { credentialHostFromRemote, normalizeHostInput, repoUrlWithoutCredentials, tokenHint } from '../src/credentials/hosts';
import { credentialEntries, existingSecret, relativeTime, secretEntries, type ListEntry } from '../src/credentials/listRows';
import { cleanToken, hostProblem, secretNameProblem, secretValueProblem, tokenProblem, usernameProblem } from '../src/credentials/validation';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();

describe('credential hosts', () => {
  it('takes the host of an https or http remote, lower case, without user info or a default port', () => {
    assert.equal(credentialHostFromRemote('https://github.com/acme/app.git'), 'github.com');
    assert.equal(credentialHostFromRemote('https://x-access-token:ghp_secret@GitHub.com/acme/app'), 'github.com');
    assert.equal(credentialHostFromRemote('http://git.example.com:8080/team/repo.git'), 'git.example.com:8080');
    assert.equal(credentialHostFromRemote('https://gitlab.example.com:443/group/sub/repo.git'), 'gitlab.example.com');
    assert.equal(credentialHostFromRemote('  https://bitbucket.org/team/repo.git\n'), 'bitbucket.org');
  });

  it('prefills nothing for ssh, scp-like, file and local remotes', () => {
    for (const remote of ['git@github.com:acme/app.git', 'ssh://git@github.com/acme/app.git', 'file:///srv/repo.git', '/tmp/e2e/repo.git', '../repo', '', 'https://[::1]/repo.git']) {
      assert.equal(credentialHostFromRemote(remote), null, remote);
    }
  });

  it('turns what is typed or pasted into a host', () => {
    assert.equal(normalizeHostInput('  GitHub.com '), 'github.com');
    assert.equal(normalizeHostInput('https://GitHub.com/acme/app.git'), 'github.com');
    assert.equal(normalizeHostInput('https://user:pw@git.example.com:8443/x'), 'git.example.com:8443');
    assert.equal(normalizeHostInput('git@gitlab.com:group/app.git'), 'gitlab.com');
    assert.equal(normalizeHostInput('github.com/acme/app'), 'github.com');
    assert.equal(normalizeHostInput('git.example.com:8443'), 'git.example.com:8443');
    assert.equal(normalizeHostInput(''), '');
  });

  it('strips user name and password from a repository scope, and leaves other remotes as they are', () => {
    assert.equal(repoUrlWithoutCredentials('https://x-access-token:ghp_abcdefgh@github.com/acme/app.git'), 'https://github.com/acme/app.git');
    assert.equal(repoUrlWithoutCredentials('https://github.com/acme/app.git'), 'https://github.com/acme/app.git');
    assert.equal(repoUrlWithoutCredentials('git@github.com:acme/app.git'), 'git@github.com:acme/app.git');
    assert.equal(repoUrlWithoutCredentials(' /tmp/repo.git '), '/tmp/repo.git');
  });

  it('names the kind of token a host takes', () => {
    assert.match(tokenHint('github.com'), /personal access token/);
    assert.match(tokenHint('gitlab.example.com'), /read_repository/);
    assert.match(tokenHint('bitbucket.org'), /app password/);
    assert.match(tokenHint('git.example.com'), /personal access token or password/);
  });
});

describe('validation messages', () => {
  it('hosts: host or host:port, lower case after normalising; a readable message otherwise', () => {
    assert.equal(hostProblem('github.com'), undefined);
    assert.equal(hostProblem('GitHub.COM'), undefined, 'typed in upper case: normalised, not refused');
    assert.equal(hostProblem('https://git.example.com:8443/acme/app.git'), undefined);
    assert.match(hostProblem('')!.message, /Enter the host/);
    assert.match(hostProblem('exa mple.com')!.message, /"exa mple\.com" is not a host/);
    assert.match(hostProblem('-bad-.com')!.message, /is not a host/);
    assert.match(hostProblem('git.example.com:99999')!.message, /is not a host/);
    assert.match(hostProblem('git.example.com:0')!.message, /is not a host/);
    assert.equal(hostProblem('git.example.com:65535'), undefined);
  });

  it('user names: empty means the default; no spaces or colons', () => {
    assert.equal(usernameProblem(''), undefined);
    assert.equal(usernameProblem('oauth2'), undefined);
    assert.match(usernameProblem('a b')!.message, /no spaces/);
    assert.match(usernameProblem('a:b')!.message, /":"/);
    assert.match(usernameProblem('x'.repeat(257))!.message, /at most 256/);
  });

  it('tokens: at least MIN_SECRET_LENGTH characters, no blanks inside, surrounding blanks dropped', () => {
    assert.equal(MIN_SECRET_LENGTH, 8);
    assert.equal(tokenProblem('ghp_12345678'), undefined);
    assert.equal(tokenProblem('  ghp_12345678\n'), undefined, 'a pasted newline is not part of the token');
    assert.equal(cleanToken('  ghp_12345678\n'), 'ghp_12345678');
    const short = tokenProblem('abc1234');
    assert.equal(short?.severity, 'error');
    assert.match(short.message, /at least 8 characters \(this one has 7\)/);
    assert.ok(!short.message.includes('abc1234'), 'the message never repeats the token');
    assert.match(tokenProblem('')!.message, /Paste the access token/);
    assert.match(tokenProblem('abcd efgh ijkl')!.message, /no spaces/);
    assert.match(tokenProblem('x'.repeat(4097))!.message, /at most 4096/);
  });

  it('secret names: environment variable names', () => {
    for (const name of ['NPM_TOKEN', '_private', 'a1']) assert.equal(secretNameProblem(name), undefined, name);
    assert.match(secretNameProblem('')!.message, /Enter a name/);
    assert.match(secretNameProblem('1PASSWORD')!.message, /not an environment variable name/);
    assert.match(secretNameProblem('MY-TOKEN')!.message, /letters, digits and _/);
    assert.match(secretNameProblem('A'.repeat(129))!.message, /at most 128/);
  });

  it('secret values: at least MIN_SECRET_LENGTH characters; blanks around them are kept but flagged', () => {
    assert.equal(secretValueProblem('s3cret-value'), undefined);
    assert.match(secretValueProblem('')!.message, /Type or paste the value/);
    const short = secretValueProblem('1234567');
    assert.equal(short?.severity, 'error');
    assert.match(short.message, /at least 8 characters \(this one has 7\)/);
    const padded = secretValueProblem(' s3cret-value ');
    assert.equal(padded?.severity, 'warning', 'a warning does not block Enter');
    assert.match(padded.message, /blank/);
    assert.match(secretValueProblem('x'.repeat(65_537))!.message, /at most 65,536/);
  });
});

const rows = <T>(entries: ListEntry<T>[]) => entries.map((e) => (e.kind === 'separator' ? `-- ${e.label}` : [e.label, e.description, e.detail].filter(Boolean).join(' | ')));

describe('quick pick rows', () => {
  it('relative times', () => {
    assert.equal(relativeTime(ago(5), NOW), 'just now');
    assert.equal(relativeTime(ago(60), NOW), '1 minute ago');
    assert.equal(relativeTime(ago(125), NOW), '2 minutes ago');
    assert.equal(relativeTime(ago(3 * 3600), NOW), '3 hours ago');
    assert.equal(relativeTime(ago(26 * 3600), NOW), 'yesterday');
    assert.equal(relativeTime(ago(12 * 86_400), NOW), '12 days ago');
    assert.equal(relativeTime('2024-01-02T03:04:05.000Z', NOW), '2024-01-02');
    assert.equal(relativeTime('not a date', NOW), 'not a date');
  });

  it('credentials: add and Connect GitHub, then host, user name and when, sorted by host', () => {
    const credentials: CredentialView[] = [
      { host: 'gitlab.example.com:8443', username: 'oauth2', createdAt: ago(7200), updatedAt: ago(7200) },
      { host: 'github.com', username: 'x-access-token', createdAt: ago(86_400 * 3), updatedAt: ago(120) },
    ];
    const entries = credentialEntries(credentials, NOW, 'github.com');
    assert.deepEqual(rows(entries), [
      '$(add) Add Git Credential… | A host, a user name and an access token (a personal access token, an app password…)',
      '$(github) Connect GitHub… | Replace the github.com credential with the token of your GitHub sign-in in VS Code',
      '-- Stored on the Berth server',
      "$(key) github.com | x-access-token · the workspace's remote | replaced 2 minutes ago · clones, fetches and pushes https repositories on github.com",
      '$(key) gitlab.example.com:8443 | oauth2 | added 2 hours ago · clones, fetches and pushes https repositories on gitlab.example.com:8443',
    ]);
    const open = entries.filter((e) => e.kind === 'row' && e.value.action === 'open');
    assert.equal(open.length, 2);
    assert.deepEqual(rows(credentialEntries([], NOW)).slice(1), ['$(github) Connect GitHub… | Use your GitHub sign-in in VS Code for github.com']);
  });

  it('secrets: grouped by where they apply (all, this repository, others), with the exposure explained', () => {
    const secrets: SecretView[] = [
      { name: 'NPM_TOKEN', repo: null, exposeTo: 'setup', createdAt: ago(30), updatedAt: ago(30) },
      { name: 'OPENAI_KEY', repo: 'https://github.com/acme/app.git', exposeTo: 'agent', createdAt: ago(600), updatedAt: ago(600) },
      { name: 'DB_URL', repo: 'https://github.com/acme/other', exposeTo: 'setup', createdAt: ago(600), updatedAt: ago(600) },
      { name: 'AWS_KEY', repo: null, exposeTo: 'agent', createdAt: ago(600), updatedAt: ago(60) },
    ];
    // The workspace's remote spelled another way still counts as this repository.
    assert.deepEqual(rows(secretEntries(secrets, NOW, 'git@github.com:acme/app')), [
      '$(add) Add Secret… | An environment variable for setup commands, or also for the agent',
      '-- All of your sessions',
      '$(eye) AWS_KEY | agent: the model can read it | all of your sessions · replaced 1 minute ago',
      '$(lock) NPM_TOKEN | setup: never the agent | all of your sessions · added just now',
      '-- This repository',
      '$(eye) OPENAI_KEY | agent: the model can read it | only sessions of https://github.com/acme/app.git · added 10 minutes ago',
      '-- Other repositories',
      '$(lock) DB_URL | setup: never the agent | only sessions of https://github.com/acme/other · added 10 minutes ago',
    ]);
    assert.deepEqual(rows(secretEntries(secrets, NOW, null)).filter((r) => r.startsWith('--')), ['-- All of your sessions', '-- Other repositories']);
    assert.deepEqual(rows(secretEntries([], NOW, null)), ['$(add) Add Secret… | An environment variable for setup commands, or also for the agent']);
    assert.equal(existingSecret(secrets, 'NPM_TOKEN', null)?.exposeTo, 'setup');
    assert.equal(existingSecret(secrets, 'NPM_TOKEN', 'https://github.com/acme/app.git'), undefined, 'another scope is another secret');
    assert.equal(existingSecret(secrets, 'OPENAI_KEY', 'https://github.com/acme/app')?.exposeTo, 'agent', 'the server spells the scope without .git');
    assert.equal(existingSecret(secrets, 'OPENAI_KEY', null), undefined);
  });
});

describe('Connect GitHub (the sign-in passed in)', () => {
  const TOKEN = 'gho_abcdefghijklmnopqrstuvwxyz0123456789';
  const untouchedApi = {
    listCredentials: () => Promise.reject(new Error('the server must not be asked')),
    putCredential: () => Promise.reject(new Error('the server must not be asked')),
  };

  it('the user cancelling stores nothing and is no error', async () => {
    for (const err of [Object.assign(new Error('Canceled'), { name: 'Canceled' }), new Error('User did not consent to login.')]) {
      const outcome = await connectGitHub({ getSession: () => Promise.reject(err), api: untouchedApi, protect: () => assert.fail('no token to protect') });
      assert.deepEqual(outcome, { kind: 'cancelled' });
    }
    assert.deepEqual(await connectGitHub({ getSession: async () => undefined, api: untouchedApi, protect: () => {} }), { kind: 'cancelled' });
  });

  it('no GitHub provider in this editor: unavailable, with VS Code\'s reason', async () => {
    const outcome = await connectGitHub({
      getSession: () => Promise.reject(new Error("No authentication provider 'github' is currently registered.")),
      api: untouchedApi,
      protect: () => {},
    });
    assert.deepEqual(outcome, { kind: 'unavailable', reason: "No authentication provider 'github' is currently registered." });
    assert.equal(isCancellation(new Error("No authentication provider 'github' is currently registered.")), false);
  });

  it('protects the token before sending it, and says which account; a server failure never shows the token', async () => {
    const protectedSecrets: string[] = [];
    const outcome = await connectGitHub({
      getSession: async () => ({ accessToken: TOKEN, account: { label: 'octocat' } }),
      api: {
        listCredentials: async () => [],
        putCredential: async () => {
          assert.deepEqual(protectedSecrets, [TOKEN], 'protected before it is sent');
          throw new Error(`refused ${TOKEN}`);
        },
      },
      protect: (s) => protectedSecrets.push(s),
    });
    assert.equal(outcome.kind, 'failed');
    assert.ok(outcome.kind === 'failed' && !outcome.message.includes(TOKEN) && /octocat/.test(outcome.message), JSON.stringify(outcome));
  });
});

describe('what is shown is blanked like the log', () => {
  it('RedactingLogger.redactText blanks every registered token and secret', async () => {
    const { RedactingLogger, REDACTED, silentLogger } = await import('../src/logger');
    const log = new RedactingLogger(silentLogger);
    log.addSecret('ghp_typed_token_123');
    log.addSecret('a-secret-value');
    assert.equal(log.redactText('refused ghp_typed_token_123 and a-secret-value'), `refused ${REDACTED} and ${REDACTED}`);
  });
});
