// The warm pool's configuration: the flag form, the file form, and what either refuses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWarmPoolFlag, poolKey, readWarmPoolFile, specMatch, WarmPoolSpecError } from '../src/pool/spec';
import { CLI, tempDir } from './helpers';

describe('warm pool specs', () => {
  it('reads URL[#branch]=N', () => {
    assert.deepEqual(parseWarmPoolFlag('https://example.com/acme/app.git#release/1.2=3'), {
      repo: 'https://example.com/acme/app.git',
      branch: 'release/1.2',
      size: 3,
      setup: [],
      devcontainer: null,
    });
    assert.deepEqual(parseWarmPoolFlag('/srv/repos/app.git=1'), { repo: '/srv/repos/app.git', branch: null, size: 1, setup: [], devcontainer: null });
  });

  it('refuses a missing or bad size, an empty branch and a bad branch name', () => {
    for (const bad of ['https://example.com/a.git', 'https://example.com/a.git=0', 'https://example.com/a.git=33', 'https://example.com/a.git=1.5', '=2', 'https://example.com/a.git#=2', 'https://example.com/a.git#a..b=1']) {
      assert.throws(() => parseWarmPoolFlag(bad), WarmPoolSpecError, bad);
    }
  });

  it('reads the file form with setup commands and a config path, and says what is wrong in one', () => {
    const dir = tempDir('berth-pool-spec-');
    const good = join(dir, 'pool.json');
    writeFileSync(good, JSON.stringify({ pools: [{ repo: 'https://example.com/a.git', branch: 'main', size: 2, setup: ['npm ci'], devcontainer: '.devcontainer/node/devcontainer.json' }] }));
    assert.deepEqual(readWarmPoolFile(good), [
      { repo: 'https://example.com/a.git', branch: 'main', size: 2, setup: ['npm ci'], devcontainer: '.devcontainer/node/devcontainer.json' },
    ]);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ pools: [{ repo: 'https://example.com/a.git', size: 2, devcontainer: '../outside/devcontainer.json' }] }));
    assert.throws(() => readWarmPoolFile(bad), /pools\.0\.devcontainer/);
    writeFileSync(bad, JSON.stringify({ pools: [{ repo: 'https://example.com/a.git', size: 2, extra: true }] }));
    assert.throws(() => readWarmPoolFile(bad), WarmPoolSpecError);
    writeFileSync(bad, '{ not json');
    assert.throws(() => readWarmPoolFile(bad), /--warm-pool-file/);
  });

  it('keys a pool by what a start must match: the URL as normalised, branch, config, setup', () => {
    const base = { repo: 'https://Example.com/acme/app.git', branch: null, size: 1, setup: [], devcontainer: null };
    assert.equal(poolKey(specMatch(base)), poolKey({ repoUrl: 'https://example.com/acme/app', repoBranch: null, setup: [], devcontainer: null }));
    assert.notEqual(poolKey(specMatch(base)), poolKey(specMatch({ ...base, setup: ['make'] })));
    assert.notEqual(poolKey(specMatch(base)), poolKey(specMatch({ ...base, branch: 'main' })));
    assert.notEqual(poolKey(specMatch(base)), poolKey(specMatch({ ...base, devcontainer: '.devcontainer.json' })));
  });
});

describe('berth-server serve --warm-pool', () => {
  const serve = (args: string[]) =>
    spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', tempDir(), ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, BERTH_TOKENS: '' } });

  it('refuses a pool without the devcontainer provider, a bad flag, and a repository a start could not use', () => {
    const local = serve(['--warm-pool', 'https://example.com/a.git=1']);
    assert.equal(local.status, 2, local.stderr);
    assert.match(local.stderr, /--warm-pool needs --provider devcontainer/);
    const badFlag = serve(['--provider', 'devcontainer', '--warm-pool', 'https://example.com/a.git']);
    assert.match(badFlag.stderr, /--warm-pool must be URL\[#branch\]=N/);
    const localRepo = serve(['--provider', 'devcontainer', '--warm-pool', '/srv/repo.git=1']);
    assert.match(localRepo.stderr, /--warm-pool \/srv\/repo\.git: .*local/i);
  });
});
