// The `berth-session:` file system: both sides of every diff of a session's work, read-only,
// fetched from `GET /v1/sessions/:id/content` and cached (content at a commit never changes).
import * as vscode from 'vscode';
import type { ApiClient } from '../session/apiClient';
import { ApiError } from '../session/apiClient';
import { ContentCache } from './contentCache';
import { EMPTY_SIDE, parseSessionFileUri, SESSION_SCHEME, sessionFileUriParts, type SessionFileRef } from './sessionUri';

export function sessionFileUri(ref: SessionFileRef): vscode.Uri {
  return vscode.Uri.from({ scheme: SESSION_SCHEME, ...sessionFileUriParts(ref) });
}

export class SessionFileSystem implements vscode.FileSystemProvider {
  private readonly cache = new ContentCache();
  private readonly changed = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  /** Never fires: nothing at a commit changes. */
  readonly onDidChangeFile = this.changed.event;

  constructor(private readonly api: () => Promise<ApiClient>) {}

  static register(api: () => Promise<ApiClient>): vscode.Disposable {
    return vscode.workspace.registerFileSystemProvider(SESSION_SCHEME, new SessionFileSystem(api), { isReadonly: true, isCaseSensitive: true });
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => {});
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const content = await this.readFile(uri);
    return { type: vscode.FileType.File, ctime: 0, mtime: 0, size: content.byteLength, permissions: vscode.FilePermission.Readonly };
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    const ref = parseSessionFileUri(uri);
    if (!ref) throw vscode.FileSystemError.FileNotFound(uri);
    if (ref.sha === EMPTY_SIDE) return new Uint8Array();
    return this.cache.get(`${ref.sessionId}\n${ref.sha}\n${ref.path}`, async () => {
      try {
        return await (await this.api()).getContent(ref.sessionId, ref.sha, ref.path);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw vscode.FileSystemError.FileNotFound(uri);
        throw vscode.FileSystemError.Unavailable(err instanceof Error ? err.message : String(err));
      }
    });
  }

  readDirectory(): [string, vscode.FileType][] {
    throw vscode.FileSystemError.NoPermissions('The files of a Berth session are read-only.');
  }

  createDirectory(): void {
    throw vscode.FileSystemError.NoPermissions('The files of a Berth session are read-only.');
  }

  writeFile(): void {
    throw vscode.FileSystemError.NoPermissions('The files of a Berth session are read-only.');
  }

  delete(): void {
    throw vscode.FileSystemError.NoPermissions('The files of a Berth session are read-only.');
  }

  rename(): void {
    throw vscode.FileSystemError.NoPermissions('The files of a Berth session are read-only.');
  }
}
