import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryText, fileCount, formatElapsed, formatTokens, sessionTokens, shortRepo, splitPath, stepTitle } from '../src/format';

describe('chat formatting', () => {
  it('formats elapsed times', () => {
    assert.equal(formatElapsed(0), '0 ms');
    assert.equal(formatElapsed(999), '999 ms');
    assert.equal(formatElapsed(1000), '1.0 s');
    assert.equal(formatElapsed(12_345), '12.3 s');
    assert.equal(formatElapsed(61_000), '1 min 1 s');
  });

  it('shortens repository URLs to owner/name', () => {
    assert.equal(shortRepo('https://github.com/acme/app.git'), 'acme/app');
    assert.equal(shortRepo('git@github.com:acme/app.git'), 'acme/app');
    assert.equal(shortRepo('/tmp/x/origin.git'), 'x/origin');
    assert.ok(shortRepo('x'.repeat(100)).length <= 60);
  });

  it('titles steps', () => {
    assert.equal(stepTitle('clone'), 'Cloning');
    assert.equal(stepTitle('agent_start'), 'Starting the agent');
  });
});

describe('format: the session\'s work', () => {
  const changes = { base: 'a'.repeat(40), head: 'c'.repeat(40), branch: 'berth/x', files: [], additions: 0, deletions: 0 };
  it('splits a path into its name and folder', () => {
    assert.deepEqual(splitPath('src/lib/app.ts'), ['app.ts', 'src/lib']);
    assert.deepEqual(splitPath('README.md'), ['README.md', '']);
  });
  it('says where the work went, and whether that is current', () => {
    assert.deepEqual(deliveryText(changes, null), []);
    assert.deepEqual(deliveryText({ ...changes, pushed: { branch: 'berth/x', head: 'c'.repeat(40), at: 't' } }, null), ['Pushed to berth/x']);
    assert.deepEqual(deliveryText({ ...changes, pushed: { branch: 'berth/x', head: 'b'.repeat(40), at: 't' } }, { head: 'c'.repeat(40), how: 'branch', branch: 'mine', at: 't' }), [
      'Pushed to berth/x before the latest changes',
      'Applied as branch mine',
    ]);
    assert.deepEqual(deliveryText(changes, { head: 'b'.repeat(40), how: 'worktree', at: 't' }), ['Applied to the working tree before the latest changes']);
    assert.equal(fileCount(1), '1 file');
    assert.equal(fileCount(3), '3 files');
  });
});

describe('tokens', () => {
  it('shows what the endpoint reported, per turn and added up; nothing when nothing was reported', () => {
    assert.equal(formatTokens({ promptTokens: 1200, completionTokens: 34 }), '1,234 tokens (1,200 in, 34 out)');
    const turn = (usage?: { promptTokens: number; completionTokens: number }) => ({ kind: 'turn' as const, key: 'k', turnId: 't', status: 'completed' as const, durationMs: 1, ...(usage ? { usage } : {}) });
    assert.deepEqual(sessionTokens([turn({ promptTokens: 10, completionTokens: 2 }), turn(), turn({ promptTokens: 5, completionTokens: 1 })]), { promptTokens: 15, completionTokens: 3 });
    assert.equal(sessionTokens([turn(), turn()]), null);
  });
});
