// The vscode-free parts around the session's work: diff document URIs, their cache, which sides a
// file's diff compares, and what was delivered (for Delete's confirmation).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ContentCache } from '../src/changes/contentCache';
import { Deliveries, lastDelivered, type Memento } from '../src/changes/deliveries';
import { bothSides, describeFile, diffSides } from '../src/changes/diffSides';
import { EMPTY_SIDE, parseSessionFileUri, sessionFileUriParts } from '../src/changes/sessionUri';

const ID = 'ses_aaaaaaaaaaaaaaaaaaaaaaaa';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

describe('berth-session: URIs', () => {
  it('round-trip a file at a commit, the path first (so editors label it by file name)', () => {
    const parts = sessionFileUriParts({ sessionId: ID, sha: A, path: 'src/my file#1.ts' });
    assert.equal(parts.path, '/src/my file#1.ts');
    assert.deepEqual(parseSessionFileUri(parts), { sessionId: ID, sha: A, path: 'src/my file#1.ts' });
    assert.deepEqual(parseSessionFileUri(sessionFileUriParts({ sessionId: ID, sha: EMPTY_SIDE, path: 'x' })), { sessionId: ID, sha: EMPTY_SIDE, path: 'x' });
  });

  it('refuse anything that is not a session, a full commit id and a path inside the repository', () => {
    const ok = sessionFileUriParts({ sessionId: ID, sha: A, path: 'a.txt' });
    for (const bad of [
      { ...ok, query: `session=${ID}&ref=HEAD` },
      { ...ok, query: `session=../x&ref=${A}` },
      { ...ok, query: `ref=${A}` },
      { ...ok, path: '/../../etc/passwd' },
      { ...ok, path: '/a/./b' },
      { ...ok, path: '/' },
    ]) {
      assert.equal(parseSessionFileUri(bad), null, JSON.stringify(bad));
    }
  });
});

describe('content cache', () => {
  it('loads once per key, shares a load in flight, and does not keep failures', async () => {
    const cache = new ContentCache(1024);
    let loads = 0;
    const load = async () => {
      loads++;
      return new Uint8Array([1, 2, 3]);
    };
    const [x, y] = await Promise.all([cache.get('k', load), cache.get('k', load)]);
    assert.deepEqual([...x], [1, 2, 3]);
    assert.equal(x, y);
    await cache.get('k', load);
    assert.equal(loads, 1);
    await assert.rejects(cache.get('bad', async () => Promise.reject(new Error('down'))));
    assert.deepEqual([...(await cache.get('bad', load))], [1, 2, 3], 'retried after the failure');
  });

  it('stays within its byte budget, least recently used out first', async () => {
    const cache = new ContentCache(10);
    const bytes = (n: number) => async () => new Uint8Array(n);
    await cache.get('a', bytes(4));
    await cache.get('b', bytes(4));
    await cache.get('a', bytes(4)); // a is now the most recent
    await cache.get('c', bytes(4)); // b goes
    assert.equal(cache.size, 8);
    let reloaded = false;
    await cache.get('b', async () => ((reloaded = true), new Uint8Array(4)));
    assert.equal(reloaded, true);
    await cache.get('huge', bytes(11));
    assert.ok(cache.size <= 10, 'an entry larger than the budget is served but not kept');
  });
});

describe('diff sides', () => {
  const f = (status: 'added' | 'modified' | 'deleted' | 'renamed', oldPath?: string) => ({ path: 'src/new.ts', status, additions: 1, deletions: 2, binary: false, ...(oldPath ? { oldPath } : {}) });

  it('added files have no left side, deleted ones no right side, renamed ones their old path on the left', () => {
    assert.deepEqual(diffSides(ID, A, B, f('added')), { resource: { sessionId: ID, sha: B, path: 'src/new.ts' }, left: null, right: { sessionId: ID, sha: B, path: 'src/new.ts' } });
    const deleted = diffSides(ID, A, B, f('deleted'));
    assert.deepEqual([deleted.left?.sha, deleted.right], [A, null]);
    assert.deepEqual(deleted.resource, { sessionId: ID, sha: A, path: 'src/new.ts' });
    const renamed = diffSides(ID, A, B, f('renamed', 'src/old.ts'));
    assert.deepEqual([renamed.left?.path, renamed.left?.sha, renamed.right?.path], ['src/old.ts', A, 'src/new.ts']);
    const modified = diffSides(ID, A, B, f('modified'));
    assert.deepEqual([modified.left?.sha, modified.right?.sha], [A, B]);
  });

  it('a single-file diff gets the empty side where a file is missing', () => {
    const { left, right } = bothSides(diffSides(ID, A, B, f('added')));
    assert.equal(left.sha, EMPTY_SIDE);
    assert.equal(right.sha, B);
    assert.equal(describeFile(f('renamed', 'src/old.ts')), 'R src/old.ts → src/new.ts +1 −2');
  });
});

describe('deliveries (what this workspace applied and pushed)', () => {
  const memento = (): Memento => {
    const data = new Map<string, unknown>();
    return { get: <T>(key: string) => data.get(key) as T | undefined, update: async (key, value) => void data.set(key, value) };
  };

  it('remembers per session and forgets on delete; ignores malformed entries', async () => {
    const store = memento();
    const deliveries = new Deliveries(store);
    await deliveries.setApplied(ID, { head: B, how: 'worktree', at: 't' });
    await deliveries.setPushed(ID, { remote: 'origin', branch: 'berth/x', head: B, at: 't' });
    assert.equal(deliveries.applied(ID)?.head, B);
    assert.equal(deliveries.pushed(ID)?.branch, 'berth/x');
    await store.update('berth.applied', { [ID]: { head: 'nope' } });
    assert.equal(deliveries.applied(ID), null);
    await deliveries.forget(ID);
    assert.equal(deliveries.pushed(ID), null);
  });

  it('the newest checkpoint that left the sandbox, by checkpoint order', () => {
    const checkpoints = [{ sha: B }, { sha: C }];
    const changes = { base: A, head: C, pushed: null };
    assert.equal(lastDelivered(changes, null, checkpoints), null);
    assert.equal(lastDelivered({ ...changes, pushed: { branch: 'x', head: C, at: 't' } }, null, []), C, 'pushed at head');
    assert.equal(lastDelivered(changes, { head: C }, []), C, 'applied at head');
    assert.equal(lastDelivered({ ...changes, pushed: { branch: 'x', head: B, at: 't' } }, null, checkpoints), B);
    assert.equal(lastDelivered({ ...changes, pushed: { branch: 'x', head: B, at: 't' } }, { head: C }, checkpoints), C);
  });
});
