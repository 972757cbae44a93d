import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { finishedBlocksEnd } from '../src/components/streamedMarkdown';
import { renderMarkdown } from '../src/markdown';

describe('a streamed answer is rendered a block at a time', () => {
  it('finished blocks end after the last blank line outside a code fence', () => {
    assert.equal(finishedBlocksEnd('one\n\ntwo', 0), 5);
    assert.equal(finishedBlocksEnd('one\n\ntwo\n\nthr', 0), 10);
    assert.equal(finishedBlocksEnd('one\n\n```js\na\n\nb', 0), 5, 'a blank line inside an open fence is no boundary');
    assert.equal(finishedBlocksEnd('```\na\n\nb\n```\n\nafter', 0), 14, 'after the fence closed it is');
    assert.equal(finishedBlocksEnd('~~~~\n```\n\n~~~~\n\nx', 0), 16, 'a fence closes only with its own kind and length');
    assert.equal(finishedBlocksEnd('one\n\ntwo\n\nthr', 5), 10, 'the search starts where the last one ended');
    assert.equal(finishedBlocksEnd('no blank line yet', 0), 0);
  });

  it('renders the same as the whole text would (paragraphs, headings, fenced code, lists)', () => {
    const text = [
      '# Plan',
      '',
      'First I read **the parser**, then:',
      '',
      '- a tight list',
      '- of two items',
      '',
      '```ts',
      'const a = 1;',
      '',
      'const b = 2;',
      '```',
      '',
      '1. numbered',
      '2. list',
      '',
      'A [link](https://example.com) and `code`.',
      '',
      'The end',
    ].join('\n');
    // Every prefix, split where the stream would split it, renders as the whole does.
    const whole = renderMarkdown(text);
    let finished = 0;
    let html = '';
    for (let length = 1; length <= text.length; length++) {
      const end = finishedBlocksEnd(text.slice(0, length), finished);
      if (end > finished) {
        html += renderMarkdown(text.slice(finished, end));
        finished = end;
      }
    }
    html += renderMarkdown(text.slice(finished));
    assert.equal(html.replace(/\n/g, ''), whole.replace(/\n/g, ''));
  });
});
