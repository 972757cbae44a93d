// The window's view of all sessions: the user-level stream client against a real server (snapshot,
// then live status changes), and which changes become notifications.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SessionView } from '@berth/protocol';
import { noticeFor, type NoticeContext } from '../src/notices';
import { UserStreamClient } from '../src/session/userStreamClient';
import { silentLogger } from '../src/logger';
import { startRealServer, waitFor, type RealServer } from './helpers/realServer';

const view = (over: Partial<SessionView>): SessionView =>
  ({
    id: 'ses_AAAAAAAAAAAAAAAAAAAAAAAA',
    repo: { url: 'https://example.com/a.git' },
    prompt: 'fix the login page',
    setup: [],
    autoInitiate: true,
    status: 'ready',
    step: null,
    lastError: null,
    changes: null,
    ...over,
  }) as SessionView;

const changes = (head: string, files = 2) => ({ base: 'b'.repeat(40), head, branch: 'berth/x', files: Array.from({ length: files }, (_, i) => ({ path: `f${i}`, status: 'modified', additions: 1, deletions: 0, binary: false })), additions: files, deletions: 0 });

describe('notices', () => {
  const away: NoticeContext = { level: 'all', focused: false, openSessionId: null };

  it('a finished turn: with Review Changes when it changed files', () => {
    const plain = noticeFor(view({ status: 'running' }), view({ status: 'ready' }), away);
    assert.deepEqual(plain?.actions, ['Open']);
    assert.match(plain.message, /“fix the login page” finished its turn\./);
    const withWork = noticeFor(view({ status: 'running', changes: changes('c'.repeat(40)) as never }), view({ status: 'ready', changes: changes('d'.repeat(40), 3) as never }), away);
    assert.deepEqual(withWork?.actions, ['Open', 'Review Changes']);
    assert.match(withWork.message, /changed 3 files/);
    const sameHead = noticeFor(view({ status: 'running', changes: changes('c'.repeat(40)) as never }), view({ status: 'ready', changes: changes('c'.repeat(40)) as never }), away);
    assert.deepEqual(sameHead?.actions, ['Open'], 'no new checkpoint: nothing to review from this turn');
  });

  it('failures always (unless off), ready for a prompt, and quiet for the session in view', () => {
    const failed = noticeFor(view({ status: 'preparing' }), view({ status: 'failed', lastError: { code: 'setup_failed', message: 'npm ci exited with code 1' } }), { ...away, level: 'failures' });
    assert.equal(failed?.severity, 'error');
    assert.match(failed.message, /failed: npm ci exited with code 1/);
    assert.equal(noticeFor(undefined, view({ status: 'failed' }), away)?.severity, 'error', 'a session first seen failed');
    assert.equal(noticeFor(view({ status: 'running' }), view({ status: 'ready' }), { ...away, level: 'failures' }), null);
    const prepared = { preparedAt: '2026-12-01T00:00:00Z' };
    assert.match(noticeFor(view({ status: 'preparing', preparedAt: null }), view({ status: 'ready', initiatedAt: null, ...prepared }), away)!.message, /ready for your prompt/);
    assert.match(noticeFor(view({ status: 'preparing', preparedAt: null }), view({ status: 'ready', initiatedAt: '2026-12-01T00:00:01Z', ...prepared }), away)!.message, /finished its turn/, 'the first prompt done during preparation');
    assert.equal(noticeFor(view({ status: 'preparing', ...prepared }), view({ status: 'ready', ...prepared }), away), null, 'a resume settling on ready is quiet');
    assert.equal(noticeFor(view({ status: 'running' }), view({ status: 'ready' }), { ...away, level: 'off' }), null);
    const inView = { level: 'all' as const, focused: true, openSessionId: view({}).id };
    assert.equal(noticeFor(view({ status: 'running' }), view({ status: 'ready' }), inView), null, 'the user is looking at it');
    assert.ok(noticeFor(view({ status: 'running' }), view({ status: 'ready' }), { ...inView, focused: false }), 'but not while the window is in the background');
    assert.equal(noticeFor(view({ status: 'ready' }), view({ status: 'sleeping' }), away), null);
  });
});

describe('user stream client (real server)', () => {
  let real: RealServer;
  before(async () => {
    real = await startRealServer({ agentCommand: 'cat' });
  });
  after(async () => {
    await real?.close();
  });

  it('gets a snapshot, then every status change of every session', async () => {
    const snapshots: SessionView[][] = [];
    const updates: SessionView[] = [];
    const client = new UserStreamClient(() => real.api.userStreamUrl(), { onSnapshot: (s) => snapshots.push(s), onSession: (v) => updates.push(v), onDown: () => {} }, silentLogger);
    try {
      await waitFor('the snapshot', () => snapshots[0]);
      const ids = await Promise.all(['one', 'two'].map(async (prompt) => (await real.api.startSession({ repo: { url: real.repoUrl }, prompt, autoInitiate: true })).sessionId));
      for (const id of ids) {
        // Ready with its first prompt sent (a quick turn may end before preparation settles: no `running` then).
        await waitFor(`${id} ready after its turn`, () => updates.find((v) => v.id === id && v.status === 'ready' && v.initiatedAt !== null), 30_000);
        assert.equal(updates.find((v) => v.id === id)?.status, 'preparing', 'its first change was seen too');
      }
    } finally {
      client.dispose();
    }
  });
});
