// The "Sessions" list under the chat. When it is empty, VS Code shows the view welcome content
// declared in package.json (signed out / local server starting / no sessions yet).
import * as vscode from 'vscode';
import type { SessionView } from '@berth/protocol';
import type { Connection } from '../connection';
import { STATUS_CODICONS } from '../statusBarModel';
import { errorMessage, type Logger } from '../logger';

export class SessionsTreeProvider implements vscode.TreeDataProvider<SessionView>, vscode.Disposable {
  static readonly viewId = 'berth.sessions';
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(
    private readonly connection: Connection,
    private readonly log: Logger,
  ) {}

  refresh(): void {
    this.changed.fire();
  }

  async getChildren(element?: SessionView): Promise<SessionView[]> {
    if (element) return [];
    const api = this.connection.api;
    let sessions: SessionView[] = [];
    if (api) {
      try {
        sessions = (await api.listSessions()).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
      } catch (err) {
        this.log.warn(`sessions view: ${errorMessage(err)}`);
      }
    }
    void vscode.commands.executeCommand('setContext', 'berth.hasSessions', sessions.length > 0);
    return sessions;
  }

  getTreeItem(session: SessionView): vscode.TreeItem {
    const item = new vscode.TreeItem(session.prompt?.split('\n')[0]?.slice(0, 80) || session.id);
    item.id = session.id;
    item.description = session.status === 'preparing' && session.step ? `${session.status} · ${session.step}` : session.status;
    item.tooltip = `${session.repo.url}${session.repo.branch ? ` @ ${session.repo.branch}` : ''}\n${session.id}${session.lastError ? `\n${session.lastError.message}` : ''}`;
    item.iconPath =
      session.status === 'failed'
        ? new vscode.ThemeIcon(STATUS_CODICONS.failed, new vscode.ThemeColor('errorForeground'))
        : new vscode.ThemeIcon(STATUS_CODICONS[session.status]);
    item.contextValue = `session.${session.status}`;
    item.command = { command: 'berth.openSession', title: 'Open Session', arguments: [session.id] };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
