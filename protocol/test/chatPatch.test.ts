// The chat's updates: a patch turns what the webview has into what the host has, exactly, and a
// streamed chunk costs the chunk, whatever the length of the session.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyItemsPatch, applyViewPatch, diffItems, diffView, type ChatItem, type ChatViewState } from '../src/index';

const user = (n: number): ChatItem => ({ kind: 'user', key: `u${n}`, turnId: `t${n}`, text: `question ${n}` });
const answer = (n: number, text: string): ChatItem => ({ kind: 'assistant', key: `a${n}`, turnId: `t${n}`, text });
const turn = (n: number): ChatItem => ({ kind: 'turn', key: `c${n}`, turnId: `t${n}`, status: 'completed', durationMs: 10 });

function view(items: ChatItem[], revision: number, sessionId = 'ses_1'): ChatViewState {
  return {
    revision,
    auth: 'signed_in',
    connection: 'open',
    session: { sessionId, repo: null, prompt: null, status: 'running', step: null, resume: false, steps: [], items, activeTurnId: null, error: null, changes: null, queue: [], model: null },
    sending: false,
    input: { enabled: true, reason: '' },
    canRetry: false,
    canInterrupt: true,
    applied: null,
  };
}

describe('chat patches', () => {
  it('a streamed chunk at the end of a 500-turn history is sent as the chunk alone', () => {
    const history = Array.from({ length: 500 }, (_, n) => [user(n), answer(n, `answer ${n} `.repeat(50)), turn(n)]).flat();
    const before = [...history, user(500), answer(500, 'the start')];
    const after = [...before.slice(0, -1), answer(500, 'the start, and more')];
    const patch = diffItems(before, after);
    assert.deepEqual(patch, { keep: before.length - 1, append: { key: 'a500', text: ', and more' }, items: [] });
    assert.ok(JSON.stringify(patch).length < 100, 'the size of the chunk, not of the history');
    assert.deepEqual(applyItemsPatch(before, patch), after);
  });

  it('turns any state into any next one the host makes: appends, new items, replaced and removed ones', () => {
    let random = 7;
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    let items: ChatItem[] = [];
    let n = 0;
    for (let step = 0; step < 2000; step++) {
      const r = next();
      const last = items.at(-1);
      let updated: ChatItem[];
      if (r < 0.4 && last?.kind === 'assistant') updated = [...items.slice(0, -1), { ...last, text: last.text + `chunk${step} ` }];
      else if (r < 0.7) updated = [...items, n % 2 ? user(n) : answer(n, 'x')];
      else if (r < 0.85 && items.length) {
        const i = Math.floor(next() * items.length);
        updated = items.slice();
        updated[i] = turn(n);
      } else updated = items.slice(0, Math.floor(next() * items.length));
      n++;
      const patch = diffItems(items, updated);
      assert.deepEqual(applyItemsPatch(items, patch), updated, `step ${step}`);
      items = updated;
    }
  });

  it('a view patch applies only to the revision and session it was made against', () => {
    const a = view([user(1), answer(1, 'hi')], 1);
    const b = view([user(1), answer(1, 'hi there')], 2);
    const patch = diffView(a, b);
    assert.deepEqual(applyViewPatch(a, patch), b);
    assert.equal(applyViewPatch(view([user(1), answer(1, 'hi')], 0), patch), null, 'another revision: the whole state is asked for');
    assert.equal(applyViewPatch(view([user(1), answer(1, 'hi')], 1, 'ses_other'), patch), null, 'another session');
    assert.equal(applyItemsPatch([user(1)], { keep: 1, append: { key: 'a1', text: 'x' }, items: [] }), null, 'nothing to append to');
  });
});
