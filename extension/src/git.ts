// The few parts of the built-in git extension's API (`vscode.git`, API version 1) that Berth reads.
import * as vscode from 'vscode';

interface GitRemote {
  readonly name: string;
  readonly fetchUrl?: string;
  readonly pushUrl?: string;
}
interface GitRepository {
  readonly rootUri: vscode.Uri;
  readonly state: { readonly HEAD?: { readonly name?: string }; readonly remotes: GitRemote[] };
}
interface GitApi {
  readonly repositories: GitRepository[];
}
interface GitExtension {
  getAPI(version: 1): GitApi;
}

export interface WorkspaceRepo {
  url: string;
  branch?: string;
  folder: string;
}

/** The remote (origin first) and current branch of the workspace's repository, if there is one. */
export async function currentRepo(): Promise<WorkspaceRepo | null> {
  const extension = vscode.extensions.getExtension<GitExtension>('vscode.git');
  if (!extension) return null;
  try {
    const git = (extension.isActive ? extension.exports : await extension.activate()).getAPI(1);
    const activeFile = vscode.window.activeTextEditor?.document.uri.fsPath;
    const repo =
      git.repositories.find((r) => activeFile?.startsWith(r.rootUri.fsPath)) ?? git.repositories[0];
    if (!repo) return null;
    const remote = repo.state.remotes.find((r) => r.name === 'origin') ?? repo.state.remotes[0];
    const url = remote?.fetchUrl ?? remote?.pushUrl;
    if (!url) return null;
    const branch = repo.state.HEAD?.name;
    return { url, ...(branch ? { branch } : {}), folder: repo.rootUri.fsPath };
  } catch {
    return null;
  }
}
