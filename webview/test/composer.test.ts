import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mergeDraft } from '../src/components/composer';

describe('composer: a message the host could not send comes back', () => {
  it('into an empty input as it was', () => {
    assert.equal(mergeDraft('please fix the test', ''), 'please fix the test');
    assert.equal(mergeDraft('please fix the test', '  \n'), 'please fix the test');
  });
  it('ahead of what was typed since, never dropping either', () => {
    assert.equal(mergeDraft('first', 'second'), 'first\n\nsecond');
  });
  it('once, when the input already holds the same text', () => {
    assert.equal(mergeDraft('same', 'same '), 'same');
  });
});
