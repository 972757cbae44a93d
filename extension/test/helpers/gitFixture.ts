// Real git repositories in a temp dir, laid out as a Berth session sees them: a bare origin, the
// sandbox's clone where the agent's checkpoints are committed on the session's work branch, a
// bundle of base..head made the way the server makes it, and the user's own checkout (the workspace).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const SESSION_ID = 'ses_fixturefixturefixture01';

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@berth.invalid',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@berth.invalid',
      GIT_CONFIG_NOSYSTEM: '1',
    },
  }).trim();
}

/** `null` deletes the file; a Buffer is written as is. */
export type FileEdits = Record<string, string | Buffer | null>;

export function writeFiles(dir: string, files: FileEdits): void {
  for (const [path, content] of Object.entries(files)) {
    const full = join(dir, path);
    if (content === null) {
      if (existsSync(full)) unlinkSync(full);
      continue;
    }
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

export function read(dir: string, path: string): string {
  return readFileSync(join(dir, path), 'utf8');
}

/** Twenty numbered lines: edits far apart merge cleanly, edits on the same line conflict. */
export function lines(edits: Record<number, string> = {}): string {
  return Array.from({ length: 20 }, (_, i) => edits[i + 1] ?? `line ${i + 1}`).join('\n') + '\n';
}

export interface Fixture {
  tmp: string;
  origin: string;
  sandbox: string;
  workspace: string;
  branch: string;
  base: string;
  /** Commits `files` in the sandbox as the session's next checkpoint; returns its sha. */
  checkpoint(files: FileEdits): string;
  /** The bundle the server serves: `git bundle create file refs/heads/<branch> ^<base>`. */
  bundle(): string;
  /** Pushes a new commit to origin's main (from a scratch clone). */
  pushToOrigin(files: FileEdits): string;
  close(): void;
}

export const INITIAL_FILES: FileEdits = {
  'README.md': '# fixture\n',
  'src/app.txt': lines(),
  'src/remove-me.txt': 'to be deleted\n',
  'notes.txt': lines(),
};

/**
 * `workspaceBeforeBase`: the workspace is cloned before the session's base commit is pushed, so it
 * lacks the base (the "fetch first" case).
 */
export function createFixture(options: { workspaceBeforeBase?: boolean } = {}): Fixture {
  const tmp = mkdtempSync(join(tmpdir(), 'berth-apply-'));
  const origin = join(tmp, 'origin.git');
  const seed = join(tmp, 'seed');
  const sandbox = join(tmp, 'sandbox');
  const workspace = join(tmp, 'workspace');
  git(tmp, 'init', '-q', '--bare', '-b', 'main', origin);
  git(tmp, 'clone', '-q', origin, seed);
  git(seed, 'checkout', '-q', '-b', 'main');
  writeFiles(seed, INITIAL_FILES);
  git(seed, 'add', '-A');
  git(seed, 'commit', '-q', '-m', 'initial');
  git(seed, 'push', '-q', 'origin', 'main');
  if (options.workspaceBeforeBase) {
    git(tmp, 'clone', '-q', origin, workspace);
    writeFiles(seed, { 'later.txt': 'pushed after the workspace was cloned\n' });
    git(seed, 'add', '-A');
    git(seed, 'commit', '-q', '-m', 'later');
    git(seed, 'push', '-q', 'origin', 'main');
  }
  git(tmp, 'clone', '-q', origin, sandbox);
  if (!options.workspaceBeforeBase) git(tmp, 'clone', '-q', origin, workspace);
  const branch = `berth/${SESSION_ID}`;
  git(sandbox, 'switch', '-q', '-c', branch);
  const base = git(sandbox, 'rev-parse', 'HEAD');
  let bundles = 0;
  return {
    tmp,
    origin,
    sandbox,
    workspace,
    branch,
    base,
    checkpoint(files) {
      writeFiles(sandbox, files);
      git(sandbox, 'add', '-A');
      git(sandbox, 'commit', '-q', '-m', 'checkpoint');
      return git(sandbox, 'rev-parse', 'HEAD');
    },
    bundle() {
      const file = join(tmp, `session-${++bundles}.bundle`);
      git(sandbox, 'bundle', 'create', '-q', file, `refs/heads/${branch}`, `^${base}`);
      return file;
    },
    pushToOrigin(files) {
      writeFiles(seed, files);
      git(seed, 'add', '-A');
      git(seed, 'commit', '-q', '-m', 'origin moves on');
      git(seed, 'push', '-q', 'origin', 'main');
      return git(seed, 'rev-parse', 'HEAD');
    },
    close() {
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
