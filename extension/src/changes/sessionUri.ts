// The read-only documents of a session's commits: `berth-session:/<path>?session=<id>&ref=<sha>`.
// The repository path is the URI path, so editors label the file as `app.ts  src` (as git's own
// `git:` documents do); the query says which session and commit. A commit's content never changes,
// so a URI names its bytes for good (they are cached by it). The all-zero sha names the empty side
// of a diff (a file added or deleted), as git's own null id does.
import { CommitSha, RepoPath, SESSION_ID_PATTERN } from '@berth/protocol';

export const SESSION_SCHEME = 'berth-session';
export const EMPTY_SIDE = '0'.repeat(40);

export interface SessionFileRef {
  sessionId: string;
  /** A full commit id, or EMPTY_SIDE. */
  sha: string;
  path: string;
}

/** The parts of the URI (decoded: `vscode.Uri.from({ scheme, path, query })` encodes them). */
export function sessionFileUriParts(ref: SessionFileRef): { path: string; query: string } {
  return { path: `/${ref.path}`, query: new URLSearchParams({ session: ref.sessionId, ref: ref.sha }).toString() };
}

/** Parses a URI's (decoded) path and query back; null for anything that is not a well-formed session file (never fetched). */
export function parseSessionFileUri(uri: { path: string; query: string }): SessionFileRef | null {
  const params = new URLSearchParams(uri.query);
  const sessionId = params.get('session') ?? '';
  const sha = params.get('ref') ?? '';
  const path = uri.path.replace(/^\//, '');
  if (!SESSION_ID_PATTERN.test(sessionId)) return null;
  if (sha !== EMPTY_SIDE && !CommitSha.safeParse(sha).success) return null;
  if (!RepoPath.safeParse(path).success) return null;
  return { sessionId, sha, path };
}
