import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkBranchName, checkRepoUrl } from '../src/git/repoUrl';
import { Redactor, redactUrlCredentials } from '@berth/protocol';
import { createRedactor } from '../src/sandbox/devcontainer/progress';

describe('repository URLs', () => {
  it('accepts https, ssh, git and scp-like remotes', () => {
    for (const url of ['https://github.com/a/b.git', 'ssh://git@host/x.git', 'git://host/x', 'git@github.com:a/b.git']) {
      assert.equal(checkRepoUrl(url, false).ok, true, url);
    }
  });

  it('refuses option injection, command transports and (unless allowed) local paths', () => {
    const refused: [string, RegExp][] = [
      ['--upload-pack=touch /tmp/x', /cannot start with "-"/],
      ['-uhttps://x', /cannot start with "-"/],
      ['ext::sh -c id', /spaces|remote helper/],
      ['ext::sh', /remote helper/],
      ['fd::3', /remote helper/],
      ['file:///etc', /local repositories are disabled/],
      ['/srv/repo.git', /local repositories are disabled/],
      ['ftp://x/y', /"ftp" transport/],
      ['https://x/y\n--config', /control characters/],
      ['relative/path', /not a repository URL/],
    ];
    for (const [url, why] of refused) {
      const r = checkRepoUrl(url, false);
      assert.equal(r.ok, false, url);
      assert.match(!r.ok ? r.reason : '', why, url);
    }
    assert.equal(checkRepoUrl('/srv/repo.git', true).ok, true);
    assert.equal(checkRepoUrl('file:///srv/repo.git', true).ok, true);
    assert.equal(checkRepoUrl('ext::sh', true).ok, false, 'allowing local repos never allows ext::');
  });

  it('checks branch names like git check-ref-format', () => {
    for (const ok of ['main', 'feature/x', 'berth/abc-1', 'v1.2']) assert.equal(checkBranchName(ok), null, ok);
    for (const bad of ['-f', 'a..b', 'a b', 'a~1', 'a^', 'a:b', 'x.lock', '.hidden', 'a/', '@', 'a@{1}', 'a\\b', 'end.']) {
      assert.notEqual(checkBranchName(bad), null, bad);
    }
  });
});

describe('redaction', () => {
  it('masks URL credentials and known secrets', () => {
    assert.equal(redactUrlCredentials('fatal: https://bob:hunter2@git.example/x'), 'fatal: https://bob:[redacted]@git.example/x');
    assert.equal(redactUrlCredentials('https://ghp_abcdef@github.com/x'), 'https://[redacted]@github.com/x');
    const r = new Redactor();
    r.add('sk-live-123456789');
    r.add('abc'); // too short to be a secret: ignored
    assert.equal(r.redact('key=sk-live-123456789 abc'), 'key=[redacted] abc');
    assert.equal(redactUrlCredentials('x git+ssh://u:pw@h'), 'x git+ssh://u:[redacted]@h');
  });

  it('replaces a secret that contains another whole, and forgets a removed one', () => {
    const r = new Redactor(['token-abc', 'token-abcdef-123']);
    assert.equal(r.redact('a token-abcdef-123 b token-abc'), 'a [redacted] b [redacted]');
    r.remove('token-abc');
    assert.equal(r.redact('token-abc'), 'token-abc');
  });

  it('is the same redactor in the Dev Containers CLI output, with its env rules on top', () => {
    const cli = createRedactor(['hunter22-secret']);
    assert.equal(cli('docker run -e KEY=hunter22-secret -e A=1 x'), 'docker run -e KEY=[redacted] -e A=[redacted] x');
    assert.equal(cli('clone https://u:pw@h/x hunter22-secret'), 'clone https://u:[redacted]@h/x [redacted]');
  });

  it('takes linear time on long lines (agent output such as minified code or base64)', () => {
    const line = 'x'.repeat(1024 * 1024);
    for (const text of [line, `https://${line}`, `${line}://${line}`]) {
      const started = performance.now();
      redactUrlCredentials(text);
      const ms = performance.now() - started;
      assert.ok(ms < 500, `${text.length} chars took ${ms.toFixed(0)} ms`);
    }
  });
});
