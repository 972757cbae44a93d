// Applies a session's work (base → head, both commits in the local repository) onto the user's
// working tree with a three-way merge per file: base, the user's working tree ("yours") and the
// session's head ("theirs"). A dry run (`planApply`) says what would happen to every file; the
// apply re-checks that nothing changed since and never loses the user's uncommitted work:
// - a file the user did not touch takes the session's version (or is deleted);
// - a file the user edited is merged (`git merge-file`); overlapping edits get conflict markers
//   that keep both sides (or the file is left alone, the caller's choice), and a copy of the user's
//   version is kept in the backup folder first;
// - what cannot be merged (binary, symbolic links, deleted on one side and edited on the other,
//   submodules, unsafe paths) is left exactly as it is, and reported.
// The index is not touched: the result shows up as ordinary uncommitted changes.
// No vscode import: tested against real git repositories in temp dirs.
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { short, type LocalRepo } from './localRepo';

export type ApplyAction =
  /** Untouched locally: takes the session's version. */
  | 'write'
  /** Untouched locally: the session deleted it. */
  | 'delete'
  /** The working tree already has the session's version. */
  | 'unchanged'
  /** Edited locally, merged cleanly with the session's edit. */
  | 'merge'
  /** Edited locally, overlapping the session's edit: conflict markers (both sides kept), or left alone. */
  | 'conflict'
  /** Cannot be merged safely: left exactly as it is. */
  | 'skip';

export interface PlannedFile {
  path: string;
  /** What the session did to the file (base → head). */
  change: 'added' | 'modified' | 'deleted';
  /** The working tree differs from the base here: the user's own uncommitted (or later) edit. */
  localEdit: boolean;
  action: ApplyAction;
  /** Why, for `conflict` and `skip`. */
  reason?: string;
  /** Overlapping regions, for `conflict`. */
  conflicts?: number;
  /** The working tree's version when planned ("absent", "dir" or a content id). */
  local: string;
}

export interface ApplyPlan {
  base: string;
  head: string;
  files: PlannedFile[];
  /** Merge results (clean or with markers) to write, by path. */
  readonly merged: ReadonlyMap<string, Buffer>;
}

export interface ApplyResult {
  written: string[];
  deleted: string[];
  merged: string[];
  /** Written with conflict markers (the user's edit inside them, and in the backup folder). */
  conflicted: string[];
  /** Left exactly as they were, with the reason. */
  skipped: { path: string; reason: string }[];
  unchanged: string[];
  /** Where copies of the user's versions of merged and conflicted files were put; null when none were needed. */
  backupDir: string | null;
}

export interface ApplyOptions {
  /** What to do with overlapping edits: write conflict markers (both sides kept), or leave those files alone. */
  conflicts: 'markers' | 'skip';
  /** Copies of locally edited files go here before they are rewritten. */
  backupDir: string;
}

/** The working tree changed between the dry run and the apply: nothing was written. */
export class WorktreeChangedError extends Error {
  constructor(readonly paths: string[]) {
    super(`The working tree changed since the dry run (${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', …' : ''}). Nothing was applied; run Apply again.`);
    this.name = 'WorktreeChangedError';
  }
}

interface DiffEntry {
  path: string;
  oldMode: string;
  newMode: string;
  oldId: string;
  newId: string;
  status: string;
}

const ABSENT = 'absent';
const DIRECTORY = 'dir';
const SYMLINK_MODE = '120000';
const GITLINK_MODE = '160000';
const NULL_ID = /^0+$/;

/** The dry run: what applying base → head onto the working tree would do to each file. Writes nothing. */
export async function planApply(repo: LocalRepo, base: string, head: string): Promise<ApplyPlan> {
  for (const sha of [base, head]) {
    if (!(await repo.hasCommit(sha))) throw new Error(`Commit ${short(sha)} is not in this repository.`);
  }
  const entries = await diffEntries(repo, base, head);
  const locals = await localIds(repo, entries.map((e) => e.path));
  const merged = new Map<string, Buffer>();
  const files: PlannedFile[] = [];
  for (const entry of entries) {
    const planned = await planFile(repo, entry, locals.get(entry.path)!, merged, { base, head });
    files.push(planned);
  }
  return { base, head, files, merged };
}

/** Applies a plan the user confirmed; refuses (writing nothing) when the working tree changed since. */
export async function applyPlan(repo: LocalRepo, plan: ApplyPlan, options: ApplyOptions): Promise<ApplyResult> {
  const now = await localIds(repo, plan.files.map((f) => f.path));
  const changed = plan.files.filter((f) => now.get(f.path) !== f.local).map((f) => f.path);
  if (changed.length) throw new WorktreeChangedError(changed);

  const result: ApplyResult = { written: [], deleted: [], merged: [], conflicted: [], skipped: [], unchanged: [], backupDir: null };
  const rewritesLocalEdit = (f: PlannedFile) => f.action === 'merge' || (f.action === 'conflict' && options.conflicts === 'markers');
  // The user's versions first, before anything is rewritten.
  for (const file of plan.files.filter(rewritesLocalEdit)) {
    const target = join(options.backupDir, ...file.path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    await copyFile(join(repo.root, ...file.path.split('/')), target);
    result.backupDir = options.backupDir;
  }
  for (const file of plan.files.filter((f) => f.action === 'delete')) {
    await rm(join(repo.root, ...file.path.split('/')), { force: true });
    await removeEmptyParents(repo.root, file.path);
    result.deleted.push(file.path);
  }
  const writes = plan.files.filter((f) => f.action === 'write').map((f) => f.path);
  if (writes.length) {
    // git writes the session's versions itself: modes, symbolic links, line endings and filters as a checkout would;
    // only the working tree (not the index), and only these literal paths.
    await repo.git(['--literal-pathspecs', 'restore', `--source=${plan.head}`, '--worktree', '--pathspec-from-file=-', '--pathspec-file-nul'], {
      input: writes.join('\0'),
    });
    result.written.push(...writes);
  }
  for (const file of plan.files) {
    const path = join(repo.root, ...file.path.split('/'));
    switch (file.action) {
      case 'merge':
        await writeFile(path, plan.merged.get(file.path)!);
        result.merged.push(file.path);
        break;
      case 'conflict':
        if (options.conflicts === 'markers') {
          await writeFile(path, plan.merged.get(file.path)!);
          result.conflicted.push(file.path);
        } else {
          result.skipped.push({ path: file.path, reason: file.reason ?? 'overlapping edits' });
        }
        break;
      case 'skip':
        result.skipped.push({ path: file.path, reason: file.reason ?? 'cannot be merged' });
        break;
      case 'unchanged':
        result.unchanged.push(file.path);
        break;
      case 'write':
      case 'delete':
        break;
    }
  }
  return result;
}

/** Counts of a plan, for the dry-run summary. */
export function planCounts(plan: ApplyPlan): Record<ApplyAction, number> {
  const counts: Record<ApplyAction, number> = { write: 0, delete: 0, unchanged: 0, merge: 0, conflict: 0, skip: 0 };
  for (const f of plan.files) counts[f.action]++;
  return counts;
}

async function diffEntries(repo: LocalRepo, base: string, head: string): Promise<DiffEntry[]> {
  // No renames: a rename is a deletion and an addition, each merged on its own.
  const out = (await repo.git(['diff', '--raw', '-z', '--no-renames', '--no-abbrev', '--no-ext-diff', '--no-textconv', base, head, '--'])).stdout.toString('utf8');
  const parts = out.split('\0');
  const entries: DiffEntry[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = /^:(\d{6}) (\d{6}) ([0-9a-f]+) ([0-9a-f]+) ([A-Z])\d*$/.exec(parts[i]!);
    if (!meta) continue;
    entries.push({ oldMode: meta[1]!, newMode: meta[2]!, oldId: meta[3]!, newId: meta[4]!, status: meta[5]!, path: parts[i + 1]! });
  }
  return entries;
}

async function planFile(
  repo: LocalRepo,
  entry: DiffEntry,
  local: string,
  merged: Map<string, Buffer>,
  range: { base: string; head: string },
): Promise<PlannedFile> {
  const change = entry.status === 'A' ? 'added' : entry.status === 'D' ? 'deleted' : 'modified';
  const baseId = change === 'added' ? ABSENT : versionId(entry.oldMode, entry.oldId);
  const theirsId = change === 'deleted' ? ABSENT : versionId(entry.newMode, entry.newId);
  const localEdit = local !== baseId;
  const planned = (action: ApplyAction, reason?: string): PlannedFile => ({ path: entry.path, change, localEdit, action, local, ...(reason ? { reason } : {}) });

  const unsafe = unsafePath(entry.path) ?? (await blockedParent(repo.root, entry.path));
  if (unsafe) return planned('skip', unsafe);
  if (entry.oldMode === GITLINK_MODE || entry.newMode === GITLINK_MODE) return planned('skip', 'a submodule: update it with git submodule');
  if (local === theirsId) return planned('unchanged');
  if (!localEdit) return planned(change === 'deleted' ? 'delete' : 'write');
  // The user changed this file too.
  if (local === DIRECTORY) return planned('skip', 'a folder in your working tree has this name');
  if (change === 'deleted') return planned('skip', 'the session deleted it, and you edited it: your version is kept');
  if (local === ABSENT) return planned('skip', 'you deleted it, and the session changed it: it stays deleted');
  if (isLink(local) || entry.oldMode === SYMLINK_MODE || entry.newMode === SYMLINK_MODE) {
    return planned('skip', 'a symbolic link changed on both sides: yours is kept');
  }
  const path = join(repo.root, ...entry.path.split('/'));
  const [yours, baseText, theirs] = await Promise.all([
    readFile(path),
    change === 'added' ? Buffer.alloc(0) : blob(repo, entry.oldId, entry.path),
    blob(repo, entry.newId, entry.path),
  ]);
  if ([yours, baseText, theirs].some(isBinary)) return planned('skip', 'a binary file changed on both sides: yours is kept');
  const result = await mergeFile(repo, { yours, base: baseText, theirs }, range);
  merged.set(entry.path, result.merged);
  if (result.conflicts === 0) return planned('merge');
  return {
    ...planned('conflict', change === 'added' ? 'you and the session both created it' : 'you and the session edited the same lines'),
    conflicts: result.conflicts,
  };
}

/** How a committed version is compared with the working tree: its kind and content id. */
function versionId(mode: string, id: string): string {
  if (NULL_ID.test(id)) return ABSENT;
  return mode === SYMLINK_MODE ? `link:${id}` : mode === GITLINK_MODE ? `gitlink:${id}` : `file:${id}${execBit(mode === '100755')}`;
}

/** The executable bit is part of a version where the file system has one. */
function execBit(executable: boolean): string {
  return executable && process.platform !== 'win32' ? '+x' : '';
}

function isLink(local: string): boolean {
  return local.startsWith('link:');
}

/** The working tree's version of each path: absent, a folder, or the id git would give its content. */
async function localIds(repo: LocalRepo, paths: string[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const files: { path: string; x: string }[] = [];
  const format = await repo.objectFormat();
  for (const path of paths) {
    const full = join(repo.root, ...path.split('/'));
    const stat = await lstat(full).catch(() => null);
    if (!stat) ids.set(path, ABSENT);
    else if (stat.isDirectory()) ids.set(path, DIRECTORY);
    else if (stat.isSymbolicLink()) ids.set(path, `link:${blobId(format, Buffer.from(await readlink(full, { encoding: 'buffer' })))}`);
    else if (stat.isFile() && !path.includes('\n')) files.push({ path, x: execBit((stat.mode & 0o100) !== 0) });
    else if (stat.isFile()) ids.set(path, `file:${blobId(format, await readFile(full))}${execBit((stat.mode & 0o100) !== 0)}`); // a name --stdin-paths cannot carry
    else ids.set(path, 'special');
  }
  if (files.length) {
    // One git for all: it applies the repository's own clean filters (line endings…), as `git add` would.
    const input = files.map((f) => f.path).join('\n') + '\n';
    const out = (await repo.git(['hash-object', '--stdin-paths'], { input })).stdout.toString('utf8').trim().split('\n');
    files.forEach((f, i) => ids.set(f.path, `file:${out[i]}${f.x}`));
  }
  return ids;
}

function blobId(format: 'sha1' | 'sha256', content: Buffer): string {
  return createHash(format).update(`blob ${content.length}\0`).update(content).digest('hex');
}

/** A committed blob as it would be in the working tree (smudge filters, line endings). */
async function blob(repo: LocalRepo, id: string, path: string): Promise<Buffer> {
  return (await repo.git(['cat-file', '--filters', `--path=${path}`, id])).stdout;
}

/** git's own test: a NUL byte in the first 8000 bytes. */
function isBinary(content: Buffer): boolean {
  return content.subarray(0, 8000).includes(0);
}

async function mergeFile(
  repo: LocalRepo,
  versions: { yours: Buffer; base: Buffer; theirs: Buffer },
  range: { base: string; head: string },
): Promise<{ merged: Buffer; conflicts: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-merge-'));
  try {
    const [yours, base, theirs] = ['yours', 'base', 'theirs'].map((name) => join(dir, name)) as [string, string, string];
    await Promise.all([writeFile(yours, versions.yours), writeFile(base, versions.base), writeFile(theirs, versions.theirs)]);
    const result = await repo.git(
      ['merge-file', '-p', '-L', 'yours (working tree)', '-L', `base ${short(range.base)}`, '-L', `Berth session ${short(range.head)}`, yours, base, theirs],
      { okCodes: Array.from({ length: 127 }, (_, i) => i + 1) },
    );
    return { merged: result.stdout, conflicts: result.code };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Paths that must never be written, whatever the commit says. */
export function unsafePath(path: string): string | null {
  const parts = path.split('/');
  if (!path || path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) return 'not a path inside the repository';
  if (parts.some((p) => p.replace(/[. ]+$/, '').toLowerCase() === '.git')) return 'a path inside .git';
  if (sep === '\\' && /[\\:]/.test(path)) return 'a path Windows cannot hold';
  return null;
}

/** A parent that is a symbolic link (writing through it could leave the repository) or a file in the way. */
async function blockedParent(root: string, path: string): Promise<string | null> {
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join('/');
    const stat = await lstat(join(root, ...parts.slice(0, i))).catch(() => null);
    if (!stat) return null; // created fresh from here on
    if (stat.isSymbolicLink()) return `its folder ${parent} is a symbolic link in your working tree`;
    if (!stat.isDirectory()) return `${parent} is a file in your working tree`;
  }
  return null;
}

async function removeEmptyParents(root: string, path: string): Promise<void> {
  const parts = path.split('/').slice(0, -1);
  while (parts.length) {
    const dir = join(root, ...parts);
    const entries = await readdir(dir).catch(() => null);
    if (!entries || entries.length) return;
    await rmdir(dir).catch(() => {});
    parts.pop();
  }
}

/** The dry run in words, for the confirmation: a line per group, the files of each named. */
export function describePlan(plan: ApplyPlan): string[] {
  const group = (action: ApplyAction) => plan.files.filter((f) => f.action === action);
  const names = (files: PlannedFile[], limit = 8) =>
    files
      .slice(0, limit)
      .map((f) => f.path)
      .join(', ') + (files.length > limit ? `, and ${files.length - limit} more` : '');
  const lines: string[] = [];
  const conflicts = group('conflict');
  const merged = group('merge');
  const skipped = group('skip');
  const clean = [...group('write'), ...group('delete')];
  if (conflicts.length) {
    lines.push(`Conflicts with your uncommitted edits (${conflicts.length}): ${names(conflicts)}.`);
    lines.push('  With conflict markers, both versions stay in the file (yours first) and a copy of yours is kept; or these files can be left alone.');
  }
  if (merged.length) lines.push(`Merged with your uncommitted edits (${merged.length}, a copy of yours is kept): ${names(merged)}.`);
  if (skipped.length) {
    lines.push(`Left as they are (${skipped.length}):`);
    for (const f of skipped.slice(0, 8)) lines.push(`  ${f.path}: ${f.reason}`);
    if (skipped.length > 8) lines.push(`  and ${skipped.length - 8} more`);
  }
  if (clean.length) lines.push(`Taken from the session (${clean.length}, not edited locally): ${names(clean)}.`);
  const unchanged = group('unchanged');
  if (unchanged.length) lines.push(`Already as in the session (${unchanged.length}): ${names(unchanged, 4)}.`);
  return lines;
}
