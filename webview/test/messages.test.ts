import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChatViewState, HostToWebview, WebviewToHost, type ChatSession } from '@berth/protocol';
import { initialState, reduce, toViewState } from '../../extension/src/session/stateMachine';

describe('host ↔ webview message schemas', () => {
  it('accepts every webview → host message the webview sends', () => {
    for (const message of [
      { type: 'ready' },
      { type: 'send', text: 'hello' },
      { type: 'retry' },
      { type: 'interrupt' },
      { type: 'command', command: 'startSession' },
      { type: 'command', command: 'showLogs' },
      { type: 'rendered', revision: 3 },
    ]) {
      assert.equal(WebviewToHost.safeParse(message).success, true, JSON.stringify(message));
    }
  });

  it('rejects unknown types, arbitrary commands, wrong shapes and oversized text', () => {
    for (const message of [
      null,
      'ready',
      {},
      { type: 'eval', code: 'x' },
      { type: 'command', command: 'workbench.action.quit' },
      { type: 'command' },
      { type: 'send' },
      { type: 'send', text: '' },
      { type: 'send', text: 42 },
      { type: 'send', text: 'x'.repeat(100_001) },
      { type: 'rendered', revision: -1 },
      { type: 'rendered', revision: 1.5 },
    ]) {
      assert.equal(WebviewToHost.safeParse(message).success, false, JSON.stringify(message));
    }
  });

  it('the state machine only produces view states that the schema accepts', () => {
    const s = [
      { type: 'start_requested', repo: { url: 'https://e.com/r.git', branch: 'main' }, prompt: 'p' },
      { type: 'start_accepted', sessionId: 'ses_aaaaaaaaaaaaaaaaaaaaaaaa', status: 'preparing' },
      {
        type: 'event',
        event: { id: 0, sessionId: 'ses_aaaaaaaaaaaaaaaaaaaaaaaa', type: 'preparing', ts: 't', data: { step: 'clone', state: 'started', message: 'm', elapsedMs: 3, detail: 'd' } },
      },
      {
        type: 'event',
        event: { id: 1, sessionId: 'ses_aaaaaaaaaaaaaaaaaaaaaaaa', type: 'tool_call', ts: 't', data: { turnId: 't', callId: 'c', name: 'n', args: { a: [1] } } },
      },
    ] as const;
    const state = s.reduce(reduce, initialState);
    const view = toViewState(state, 'signed_in', 1);
    const parsed = HostToWebview.safeParse({ type: 'state', state: view });
    assert.equal(parsed.success, true, parsed.success ? '' : parsed.error.message);
    assert.deepEqual(parsed.data, { type: 'state', state: view }, 'nothing is lost in the round trip');
  });

  it('rejects a state with an unknown item kind or step state', () => {
    const view = toViewState(initialState, 'signed_in', 1);
    const session: ChatSession = {
      sessionId: null,
      repo: null,
      prompt: null,
      status: 'preparing',
      step: null,
      resume: false,
      steps: [],
      items: [],
      activeTurnId: null,
      error: null,
      changes: null,
      queue: [],
      model: null,
    };
    assert.equal(ChatViewState.safeParse({ ...view, session }).success, true);
    assert.equal(ChatViewState.safeParse({ ...view, session: { ...session, items: [{ kind: 'html', key: 'k', html: '<b>' }] } }).success, false);
    assert.equal(
      ChatViewState.safeParse({ ...view, session: { ...session, steps: [{ step: 'clone', state: 'exploded', message: '', elapsedMs: 0 }] } }).success,
      false,
    );
    assert.equal(HostToWebview.safeParse({ type: 'reveal', target: 'somewhere' }).success, false);
    assert.equal(HostToWebview.safeParse({ type: 'restoreDraft', text: 'not sent' }).success, true);
    assert.equal(HostToWebview.safeParse({ type: 'restoreDraft' }).success, false);
  });
});

describe('changes card messages (webview → host)', () => {
  const sha = 'a'.repeat(40);
  it('accepts the card and summary actions', () => {
    for (const message of [
      { type: 'reviewChanges', range: null },
      { type: 'reviewChanges', range: { from: sha, to: 'b'.repeat(40) } },
      { type: 'openFileDiff', from: sha, to: sha, path: 'src/app.ts' },
      { type: 'applyChanges' },
      { type: 'pushChanges' },
      { type: 'openPullRequest' },
    ]) {
      assert.equal(WebviewToHost.safeParse(message).success, true, JSON.stringify(message));
    }
  });
  it('refuses shas that are not full commit ids and paths that leave the repository', () => {
    for (const message of [
      { type: 'reviewChanges' },
      { type: 'reviewChanges', range: { from: 'HEAD', to: sha } },
      { type: 'reviewChanges', range: { from: '--output=/tmp/x', to: sha } },
      { type: 'openFileDiff', from: sha, to: sha, path: '../../etc/passwd' },
      { type: 'openFileDiff', from: sha, to: sha, path: '/etc/passwd' },
      { type: 'openFileDiff', from: sha, to: sha, path: 'a/./b' },
      { type: 'openFileDiff', from: sha, to: sha, path: 'a\0b' },
      { type: 'openFileDiff', from: sha.toUpperCase(), to: sha, path: 'a' },
      { type: 'applyChanges', branch: 'x' },
    ]) {
      const parsed = WebviewToHost.safeParse(message);
      // `applyChanges` with an extra key parses (zod strips it); nothing in it is used.
      if (message.type === 'applyChanges') assert.deepEqual(parsed.data, { type: 'applyChanges' });
      else assert.equal(parsed.success, false, JSON.stringify(message));
    }
  });
});
