// The "Sessions" list under the chat. When it is empty, VS Code shows the view welcome content
// declared in package.json (signed out / local server starting / no sessions yet).
import * as vscode from 'vscode';
import type { ChangesSummary, SessionStatus, SessionView } from '@berth/protocol';
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
    /** The open session as the chat knows it (live from its stream): newer than the list the server returned a moment ago. */
    private readonly live: () => { id: string; status: SessionStatus; changes: ChangesSummary | null } | null = () => null,
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
        const open = this.live();
        if (open) sessions = sessions.map((s) => (s.id === open.id ? { ...s, status: open.status, step: open.status === 'preparing' ? s.step : null, changes: open.changes ?? s.changes } : s));
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
    const status = session.status === 'preparing' && session.step ? `${session.status} · ${session.step}` : session.status;
    const work = changesText(session);
    item.description = work ? `${status} · ${work}` : status;
    const tooltip = new vscode.MarkdownString(undefined, false);
    tooltip.appendText(`${session.repo.url}${session.repo.branch ? ` @ ${session.repo.branch}` : ''}\n${session.id}`);
    if (work) tooltip.appendText(`\n${pushedText(session)}`);
    if (session.lastError) tooltip.appendText(`\n${session.lastError.message}`);
    item.tooltip = tooltip;
    item.iconPath =
      session.status === 'failed'
        ? new vscode.ThemeIcon(STATUS_CODICONS.failed, new vscode.ThemeColor('errorForeground'))
        : new vscode.ThemeIcon(STATUS_CODICONS[session.status]);
    // `session.<status>` and, with work to review, `.changes` (the menus in package.json match on both).
    item.contextValue = `session.${session.status}${work ? '.changes' : ''}`;
    item.command = { command: 'berth.openSession', title: 'Open Session', arguments: [session.id] };
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/** `3 files +12 −4`, or empty while the session has changed nothing. */
export function changesText(session: SessionView): string {
  const c = session.changes;
  if (!c || c.head === c.base || c.files.length === 0) return '';
  return `${c.files.length} file${c.files.length === 1 ? '' : 's'} +${c.additions} −${c.deletions}`;
}

function pushedText(session: SessionView): string {
  const c = session.changes;
  const name = `${c?.files.length} changed file${c?.files.length === 1 ? '' : 's'} on ${c?.branch}`;
  if (!c?.pushed) return `${name}, not pushed`;
  return c.pushed.head === c.head ? `${name}, pushed to ${c.pushed.branch}` : `${name}, pushed to ${c.pushed.branch} before the latest changes`;
}
