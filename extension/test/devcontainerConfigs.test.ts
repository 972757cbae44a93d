import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { listDevcontainerConfigs } from '../src/devcontainerConfigs';
import { buildStartRequest } from '../src/commands/startRequest';

function checkout(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-configs-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('the dev container configs of a checkout', () => {
  it('finds them where the spec looks (and nowhere else), with their names', () => {
    const dir = checkout({
      '.devcontainer/devcontainer.json': '{ "image": "x" }',
      '.devcontainer.json': '// comment\n{ "name": "Root \\"one\\"", "image": "x" }',
      '.devcontainer/python/devcontainer.json': '{ "name": "Python 3", "image": "x" }',
      '.devcontainer/go/devcontainer.json': '{}',
      '.devcontainer/empty/README.md': 'no config here',
      '.devcontainer/deep/nested/devcontainer.json': '{}',
      'other/devcontainer.json': '{}',
    });
    assert.deepEqual(listDevcontainerConfigs(dir), [
      { path: '.devcontainer/devcontainer.json' },
      { path: '.devcontainer.json', name: 'Root \\"one\\"' },
      { path: '.devcontainer/go/devcontainer.json' },
      { path: '.devcontainer/python/devcontainer.json', name: 'Python 3' },
    ]);
  });
  it('none in a checkout without them', () => {
    assert.deepEqual(listDevcontainerConfigs(checkout({ 'README.md': '#' })), []);
  });
  it('the start request names the chosen one; a path out of the repository is refused', () => {
    const ok = buildStartRequest({ repoUrl: 'https://example.com/r.git', prompt: 'p', autoInitiate: true, devcontainer: '.devcontainer/python/devcontainer.json' });
    assert.ok(ok.ok && ok.request.devcontainer === '.devcontainer/python/devcontainer.json');
    const bad = buildStartRequest({ repoUrl: 'https://example.com/r.git', prompt: 'p', autoInitiate: true, devcontainer: '../x/devcontainer.json' });
    assert.equal(bad.ok, false);
    const notConfig = buildStartRequest({ repoUrl: 'https://example.com/r.git', prompt: 'p', autoInitiate: true, devcontainer: 'package.json' });
    assert.equal(notConfig.ok, false);
  });
});
