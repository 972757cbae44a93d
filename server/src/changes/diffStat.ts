// Reads git's machine output (`-z` name-status and numstat) into the protocol's changed-file list.
import type { ChangedFile, FileChangeStatus } from '@berth/protocol';

interface NameStatus {
  status: FileChangeStatus;
  path: string;
  oldPath?: string;
}

const STATUS_LETTERS: Record<string, FileChangeStatus> = {
  A: 'added',
  M: 'modified',
  T: 'modified', // a type change (file ↔ symbolic link) is a modification of that path
  D: 'deleted',
  R: 'renamed',
};

/** `git diff-tree -r -z -M --name-status`: `X\0path\0`, or `R<score>\0old\0new\0`. */
export function parseNameStatus(out: Buffer): NameStatus[] {
  const parts = out.toString('utf8').split('\0');
  const entries: NameStatus[] = [];
  for (let i = 0; i < parts.length - 1; ) {
    const letter = parts[i]!.charAt(0);
    const status = STATUS_LETTERS[letter] ?? 'modified';
    if (letter === 'R' || letter === 'C') {
      entries.push({ status: letter === 'R' ? 'renamed' : 'added', oldPath: parts[i + 1]!, path: parts[i + 2]! });
      i += 3;
    } else {
      entries.push({ status, path: parts[i + 1]! });
      i += 2;
    }
  }
  return entries;
}

interface NumStat {
  additions: number;
  deletions: number;
  binary: boolean;
}

/** `git diff-tree -r -z -M --numstat`: `a\td\tpath\0`, or for a rename `a\td\t\0old\0new\0`; `-\t-` for binary. */
export function parseNumStat(out: Buffer): Map<string, NumStat> {
  const parts = out.toString('utf8').split('\0');
  const stats = new Map<string, NumStat>();
  for (let i = 0; i < parts.length - 1; ) {
    const [add = '0', del = '0', path = ''] = parts[i]!.split('\t');
    const binary = add === '-' && del === '-';
    const stat = { additions: binary ? 0 : Number(add), deletions: binary ? 0 : Number(del), binary };
    if (path === '') {
      stats.set(parts[i + 2]!, stat); // renamed: keyed by the new path
      i += 3;
    } else {
      stats.set(path, stat);
      i += 1;
    }
  }
  return stats;
}

export function mergeStats(names: NameStatus[], stats: Map<string, NumStat>): ChangedFile[] {
  return names.map((n) => {
    const s = stats.get(n.path) ?? { additions: 0, deletions: 0, binary: false };
    return { path: n.path, status: n.status, ...(n.oldPath !== undefined ? { oldPath: n.oldPath } : {}), ...s };
  });
}

export function totals(files: ChangedFile[]): { additions: number; deletions: number } {
  let additions = 0;
  let deletions = 0;
  for (const f of files) {
    additions += f.additions;
    deletions += f.deletions;
  }
  return { additions, deletions };
}
