import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatElapsed, shortRepo, stepTitle } from '../src/format';

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
