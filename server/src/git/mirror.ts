// A local bare mirror per repository, so that the second start of a repo clones mostly from disk.
// `DATA_DIR/mirrors/<sha256(url)>.git` (URLs never carry credentials here). A start borrows a
// mirror's objects only after the remote accepted its own user's credential: the mirror is fetched
// with it first, and the clone itself asks the remote with it too. The URL is never written into
// the mirror (no remote is configured: every fetch names the URL explicitly).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { git, remoteAccess, type GitCredential } from './git';
import type { RepoTransport } from './repoUrl';

export function mirrorDir(dataDir: string, url: string): string {
  return join(dataDir, 'mirrors', `${createHash('sha256').update(url).digest('hex')}.git`);
}

/** Why a mirror could not be brought up to date: the remote stalled, or the mirror (or fetch) failed. */
export class MirrorError extends Error {
  constructor(
    readonly kind: 'timeout' | 'aborted' | 'failed',
    message: string,
  ) {
    super(message);
    this.name = 'MirrorError';
  }
}

const locks = new Map<string, Promise<void>>();

/**
 * Runs `fn` while holding the in-process lock of one mirror: two starts of the same repo never
 * fetch into it (or clone from it while the other fetches) at once. FIFO, per mirror.
 */
export async function withMirrorLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(dir) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  locks.set(dir, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (locks.get(dir) === tail) locks.delete(dir);
  }
}

/** Half-received packs of a fetch that was killed (a server crash): nobody else fetches here now. */
async function removeFetchLeftovers(dir: string): Promise<void> {
  const objects = join(dir, 'objects');
  const pack = join(objects, 'pack');
  const stale = [
    ...(await readdir(objects).catch(() => [] as string[])).filter((f) => f.startsWith('incoming-')).map((f) => join(objects, f)),
    ...(await readdir(pack).catch(() => [] as string[])).filter((f) => f.startsWith('tmp_')).map((f) => join(pack, f)),
  ];
  await Promise.all(stale.map((path) => rm(path, { recursive: true, force: true })));
}

export interface MirrorUpdate {
  dir: string;
  url: string;
  transport: RepoTransport;
  timeoutMs: number;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  env?: Record<string, string>;
  /** The starting user's credential: a mirror is brought up to date with it, or not at all. */
  credential?: GitCredential | null;
}

/** Creates the mirror on first use, then fetches branches and tags with `--prune`. Call under the lock. */
export async function updateMirror(m: MirrorUpdate): Promise<'created' | 'fetched'> {
  const deadline = Date.now() + m.timeoutMs;
  const fresh = !existsSync(join(m.dir, 'HEAD'));
  if (fresh) {
    await rm(m.dir, { recursive: true, force: true });
    await mkdir(join(m.dir, '..'), { recursive: true });
    const init = await git(['init', '--quiet', '--bare', m.dir], { timeoutMs: m.timeoutMs, signal: m.signal });
    if (init.exitCode !== 0) throw new MirrorError('failed', `git init failed: ${init.output.lastLines(2).join(' ')}`);
  }
  else await removeFetchLeftovers(m.dir);
  const access = remoteAccess(m.transport, m.credential ?? null);
  const fetch = await git(
    [
      `--git-dir=${m.dir}`,
      ...access.args,
      // No background gc: a concurrent clone may be reading the objects (--reference).
      '-c', 'gc.auto=0',
      'fetch', '--prune', '--progress', '--no-write-fetch-head',
      '--', m.url, '+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*',
    ],
    { timeoutMs: Math.max(1, deadline - Date.now()), signal: m.signal, onLine: m.onLine, env: { ...m.env, ...access.env } },
  );
  if (fetch.timedOut) throw new MirrorError('timeout', 'the mirror fetch timed out');
  if (fetch.aborted) throw new MirrorError('aborted', 'cancelled');
  if (fetch.exitCode !== 0) {
    throw new MirrorError('failed', fetch.spawnError?.message ?? `git fetch exited with ${fetch.exitCode}: ${fetch.output.lastLines(3).join(' | ')}`);
  }
  // The mirror directory's mtime records its last use, for pruneMirrors.
  const now = new Date();
  await utimes(m.dir, now, now);
  return fresh ? 'created' : 'fetched';
}

/**
 * Removes the mirrors not used for `maxAgeMs` (repos nobody starts any more, or URLs whose token
 * was rotated), each under its lock so that a start of that repo never loses its mirror mid-clone.
 */
export async function pruneMirrors(dataDir: string, maxAgeMs: number, now = Date.now()): Promise<string[]> {
  const root = join(dataDir, 'mirrors');
  const removed: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.endsWith('.git')) continue;
    const dir = join(root, name);
    await withMirrorLock(dir, async () => {
      const lastUse = (await stat(dir).catch(() => null))?.mtimeMs;
      if (lastUse === undefined || now - lastUse < maxAgeMs) return;
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    });
  }
  return removed;
}
