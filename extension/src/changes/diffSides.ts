// Which two documents a changed file compares: an added file has no left side, a deleted one no
// right side, a renamed one its old path on the left. No vscode import.
import type { ChangedFile } from '@berth/protocol';
import { EMPTY_SIDE, type SessionFileRef } from './sessionUri';

export interface DiffSides {
  /** What the multi-file diff editor lists the entry as. */
  resource: SessionFileRef;
  left: SessionFileRef | null;
  right: SessionFileRef | null;
}

export function diffSides(sessionId: string, from: string, to: string, file: ChangedFile): DiffSides {
  const left = file.status === 'added' ? null : { sessionId, sha: from, path: file.status === 'renamed' && file.oldPath ? file.oldPath : file.path };
  const right = file.status === 'deleted' ? null : { sessionId, sha: to, path: file.path };
  return { resource: right ?? left!, left, right };
}

/** For a single-file diff editor, which needs two documents: the missing side is the empty one. */
export function bothSides(sides: DiffSides): { left: SessionFileRef; right: SessionFileRef } {
  const empty = { ...sides.resource, sha: EMPTY_SIDE };
  return { left: sides.left ?? empty, right: sides.right ?? empty };
}

const STATUS_LETTER: Record<ChangedFile['status'], string> = { added: 'A', modified: 'M', deleted: 'D', renamed: 'R' };

/** `M src/app.ts +3 −1` — one line of a file list (quick picks, confirmations). */
export function describeFile(file: ChangedFile): string {
  const counts = file.binary ? 'binary' : `+${file.additions} −${file.deletions}`;
  const renamed = file.status === 'renamed' && file.oldPath ? `${file.oldPath} → ` : '';
  return `${STATUS_LETTER[file.status]} ${renamed}${file.path} ${counts}`;
}
