// The server's own git repository of one session: its base commit and its checkpoints. The work
// tree it snapshots belongs to the sandbox; every command runs with the hardened environment of
// hostGit (the server's git dir, its own index, no config, hooks or drivers from the sandbox).
import type { PipedChild } from '../util/launcher';
import { existsSync } from 'node:fs';
import { copyFile, cp, lstat, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChangedFile, SkippedFile } from '@berth/protocol';
import { hostGit, hostGitText, runHostGit, spawnHostGit, type HostGitOptions } from './hostGit';
import { mergeStats, parseNameStatus, parseNumStat } from './diffStat';

/**
 * Attributes that win over any `.gitattributes` in the work tree ($GIT_DIR/info/attributes has the
 * highest precedence): no filter, no eol or encoding conversion, no diff or merge driver. Stored
 * bytes are exactly the work tree's bytes.
 */
const NEUTRAL_ATTRIBUTES = '* -text -filter -ident !eol !diff !merge !working-tree-encoding !export-ignore !export-subst\n';

const BASE_REF = 'refs/berth/base';
const STEP_TIMEOUT_MS = 120_000;

export interface SnapshotResult {
  /** The new checkpoint, or null when the work tree equals the parent's tree. */
  sha: string | null;
  skipped: SkippedFile[];
}

export interface SnapshotRequest {
  workTree: string;
  parent: string;
  branch: string;
  message: string;
  maxFileBytes: number;
}

/** `1 XY sub mH mI mW hH hI path` (8 fields, then the path), `? path`. */
function parseStatus(out: Buffer): { path: string; deleted: boolean; untracked: boolean }[] {
  const entries: { path: string; deleted: boolean; untracked: boolean }[] = [];
  for (const record of out.toString('utf8').split('\0')) {
    if (record.startsWith('? ')) entries.push({ path: record.slice(2), deleted: false, untracked: true });
    else if (record.startsWith('1 ')) {
      let at = 0;
      for (let field = 0; field < 8; field++) at = record.indexOf(' ', at) + 1;
      const worktreeState = record.charAt(3); // Y of XY: the work tree against the index
      if (worktreeState === '.') continue;
      entries.push({ path: record.slice(at), deleted: worktreeState === 'D', untracked: false });
    }
  }
  return entries;
}

export class CheckpointRepo {
  constructor(readonly gitDir: string) {}

  private get indexFile(): string {
    return join(this.gitDir, 'berth-index');
  }

  private opts(extra: Partial<HostGitOptions> = {}): HostGitOptions {
    return { gitDir: this.gitDir, timeoutMs: STEP_TIMEOUT_MS, ...extra };
  }

  exists(): boolean {
    return existsSync(join(this.gitDir, 'HEAD'));
  }

  /** A fresh bare repository with the neutral attributes. Replaces whatever was there. */
  async init(branch: string): Promise<void> {
    await rm(this.gitDir, { recursive: true, force: true });
    await mkdir(this.gitDir, { recursive: true, mode: 0o700 });
    await hostGit(['init', '--quiet', '--bare'], this.opts());
    await mkdir(join(this.gitDir, 'info'), { recursive: true });
    await writeFile(join(this.gitDir, 'info', 'attributes'), NEUTRAL_ATTRIBUTES);
    await hostGit(['symbolic-ref', 'HEAD', `refs/heads/${branch}`], this.opts());
  }

  /**
   * Takes the base commit's objects and the index from a clone the server itself just made (before
   * any sandbox or setup command could touch it), so the first snapshot rehashes nothing unchanged.
   * Returns the base commit.
   */
  async captureBase(workspaceDir: string, branch: string): Promise<string> {
    const clone = { gitDir: join(workspaceDir, '.git'), timeoutMs: STEP_TIMEOUT_MS };
    const base = await hostGitText(['rev-parse', '--verify', 'HEAD^{commit}'], clone);
    await this.init(branch);
    await this.copyObjectsFrom(join(workspaceDir, '.git', 'objects'));
    await hostGit(['update-ref', BASE_REF, base], this.opts());
    await hostGit(['update-ref', `refs/heads/${branch}`, base], this.opts());
    await copyFile(join(workspaceDir, '.git', 'index'), this.indexFile).catch(() => {});
    // An index this git cannot use as its own (a split index, say) or that is not the base tree's:
    // start from the base tree instead (the first snapshot then hashes every file once).
    const index = this.opts({ indexFile: this.indexFile });
    const [tree, baseTree] = await Promise.all([runHostGit(['write-tree'], index), hostGitText(['rev-parse', `${base}^{tree}`], this.opts())]);
    if (tree.code !== 0 || tree.stdout.toString().trim() !== baseTree) await hostGit(['read-tree', base], index);
    return base;
  }

  /** Copies packs and loose objects (never `info/alternates`, which would point back into the clone). */
  private async copyObjectsFrom(objects: string): Promise<void> {
    const target = join(this.gitDir, 'objects');
    for (const name of await readdir(objects)) {
      if (name === 'pack' || /^[0-9a-f]{2}$/.test(name)) {
        await cp(join(objects, name), join(target, name), { recursive: true, force: true, dereference: false, verbatimSymlinks: true });
      }
    }
  }

  async base(): Promise<string> {
    return hostGitText(['rev-parse', '--verify', `${BASE_REF}^{commit}`], this.opts());
  }

  async hasCommit(sha: string): Promise<boolean> {
    return (await runHostGit(['cat-file', '-e', `${sha}^{commit}`], this.opts())).code === 0;
  }

  /**
   * Records the work tree as a commit on top of `parent`: tracked and untracked files, `.gitignore`
   * respected, files over `maxFileBytes` and nested repositories left out (and named). Only the
   * paths git reports as changed are hashed again; symbolic links are stored as links, never followed.
   */
  async snapshot(request: SnapshotRequest): Promise<SnapshotResult> {
    const work = this.opts({ workTree: request.workTree, indexFile: this.indexFile });
    if (!existsSync(this.indexFile)) await hostGit(['read-tree', request.parent], work);
    const status = await hostGit(
      ['status', '--porcelain=v2', '-z', '--untracked-files=all', '--ignore-submodules=all', '--no-renames'],
      work,
    );
    const skipped: SkippedFile[] = [];
    const update: string[] = [];
    for (const entry of parseStatus(status)) {
      if (entry.deleted) {
        update.push(entry.path);
        continue;
      }
      if (entry.untracked && entry.path.endsWith('/')) {
        skipped.push({ path: entry.path.slice(0, -1), reason: 'nested_repository' });
        continue;
      }
      const info = await lstat(join(request.workTree, entry.path)).catch(() => null);
      if (info?.isFile() && info.size > request.maxFileBytes) {
        skipped.push({ path: entry.path, reason: 'too_large', size: info.size });
        continue;
      }
      update.push(entry.path);
    }
    if (update.length > 0) {
      await hostGit(['update-index', '-z', '--add', '--remove', '--replace', '--stdin'], { ...work, input: update.join('\0') + '\0' });
    }
    const tree = await hostGitText(['write-tree'], work);
    const parentTree = await hostGitText(['rev-parse', '--verify', `${request.parent}^{tree}`], this.opts());
    if (tree === parentTree) return { sha: null, skipped };
    const sha = await hostGitText(['commit-tree', tree, '-p', request.parent, '-F', '-'], this.opts({ input: request.message }));
    await hostGit(['update-ref', `refs/heads/${request.branch}`, sha], this.opts());
    return { sha, skipped };
  }

  /** Points the work branch at `sha` (a checkpoint imported from the shared store). */
  async setHead(branch: string, sha: string): Promise<void> {
    await hostGit(['update-ref', `refs/heads/${branch}`, sha], this.opts());
  }

  /** What changed between two commits, with line counts (renames detected). */
  async changedFiles(from: string, to: string, path?: string): Promise<ChangedFile[]> {
    if (from === to) return [];
    const limit = path ? ['--', `:(literal)${path}`] : [];
    const common = ['diff-tree', '-r', '-z', '-M', '--no-ext-diff', '--no-textconv'];
    const [names, stats] = await Promise.all([
      hostGit([...common, '--name-status', from, to, ...limit], this.opts()),
      hostGit([...common, '--numstat', from, to, ...limit], this.opts()),
    ]);
    return mergeStats(parseNameStatus(names), parseNumStat(stats));
  }

  /** A unified, binary-safe diff (`git apply` takes it), streamed. */
  spawnDiff(from: string, to: string, path?: string): PipedChild {
    const limit = path ? ['--', `:(literal)${path}`] : [];
    return spawnHostGit(['diff', '--binary', '--full-index', '-M', '--no-ext-diff', '--no-textconv', '--no-color', from, to, ...limit], this.opts());
  }

  /** The object id of a file at a commit, or null when the path is not a file there. */
  async blobAt(ref: string, path: string): Promise<string | null> {
    const out = await hostGit(['ls-tree', '-z', '--full-tree', ref, '--', `:(literal)${path}`], this.opts());
    const entry = out.toString('utf8').split('\0')[0] ?? '';
    const match = /^(\d+) (blob) ([0-9a-f]+)\t(.*)$/s.exec(entry);
    return match && match[4] === path ? match[3]! : null;
  }

  spawnBlob(blob: string): PipedChild {
    return spawnHostGit(['cat-file', 'blob', blob], this.opts());
  }

  /** A bundle of `branch` with `exclude` as its prerequisite (base..head, or one checkpoint). */
  async bundle(branch: string, exclude: string): Promise<Buffer> {
    return hostGit(['bundle', 'create', '--quiet', '-', `refs/heads/${branch}`, `^${exclude}`], this.opts({ maxOutputBytes: 2 * 1024 * 1024 * 1024 }));
  }

  spawnBundle(branch: string, exclude: string): PipedChild {
    return spawnHostGit(['bundle', 'create', '--quiet', '-', `refs/heads/${branch}`, `^${exclude}`], this.opts());
  }

  /** Adds a bundle's objects (its prerequisites must be here already). */
  async unbundle(bundle: Buffer): Promise<void> {
    const file = join(this.gitDir, `incoming-${process.pid}-${Date.now()}.bundle`);
    await writeFile(file, bundle);
    try {
      await hostGit(['bundle', 'unbundle', file], this.opts());
    } finally {
      await rm(file, { force: true });
    }
  }

  /**
   * Brings the base commit's objects from the repository's remote (a new instance, or a lost data
   * dir): by id first, then every branch when the remote refuses to serve an unadvertised commit.
   */
  async fetchBase(url: string, base: string, transportFlags: string[], env: Record<string, string>, timeoutMs: number): Promise<void> {
    const fetch = ['-c', 'uploadpack.allowAnySHA1InWant=true', ...transportFlags, 'fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', url];
    const byId = await runHostGit([...fetch, base], this.opts({ env, timeoutMs }));
    if (byId.code !== 0 || !(await this.hasCommit(base))) {
      await hostGit([...fetch, '+refs/heads/*:refs/berth/remote/*'], this.opts({ env, timeoutMs }));
    }
    if (!(await this.hasCommit(base))) throw new Error(`the base commit ${base.slice(0, 12)} is no longer in the repository`);
    await hostGit(['update-ref', BASE_REF, base], this.opts());
    // Branches fetched only to find the base are not the session's.
    const extra = await hostGitText(['for-each-ref', '--format=%(refname)', 'refs/berth/remote/'], this.opts());
    for (const ref of extra.split('\n').filter(Boolean)) await hostGit(['update-ref', '-d', ref], this.opts());
  }

  /**
   * Puts the checkpoint into a fresh clone the server just made (before any sandbox runs in it):
   * the branch at the base commit, the work tree at `head`, the changes uncommitted, as the agent
   * left them.
   */
  async restoreInto(workspaceDir: string, branch: string, base: string, head: string): Promise<void> {
    const clone = { gitDir: join(workspaceDir, '.git'), workTree: workspaceDir, timeoutMs: STEP_TIMEOUT_MS };
    await hostGit(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', this.gitDir, `+refs/heads/${branch}:refs/berth/checkpoint`], clone);
    await hostGit(['reset', '--quiet', '--hard', base], clone);
    await hostGit(['read-tree', '-u', '--reset', head], clone);
    await hostGit(['reset', '--quiet'], clone);
    await hostGit(['update-ref', '-d', 'refs/berth/checkpoint'], clone);
    // The clone's index (the base tree, fresh stat data) serves the next snapshot: it hashes only
    // the files that differ from the base, and finds the tree of `head` unless the agent moved on.
    await copyFile(join(workspaceDir, '.git', 'index'), this.indexFile);
  }

  async remove(): Promise<void> {
    await rm(this.gitDir, { recursive: true, force: true });
  }
}
