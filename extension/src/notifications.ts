// Shows the notices of sessions the user is not looking at (what to tell: notices.ts).
import * as vscode from 'vscode';
import type { SessionView } from '@berth/protocol';
import { noticeFor, type NotificationLevel, type SessionNotice } from './notices';

/** Follows every session's views (from the user-level stream) and shows the notices. */
export class SessionNotifier {
  private readonly known = new Map<string, SessionView>();

  constructor(private readonly openSessionId: () => string | null) {}

  /** A (re)connect's snapshot: the baseline, told nothing (what happened while away is in the list). */
  reset(sessions: SessionView[]): void {
    this.known.clear();
    for (const s of sessions) this.known.set(s.id, s);
  }

  update(next: SessionView): void {
    const prev = this.known.get(next.id);
    this.known.set(next.id, next);
    const level = vscode.workspace.getConfiguration('berth').get<NotificationLevel>('notifications', 'all');
    const notice = noticeFor(prev, next, { level, focused: vscode.window.state.focused, openSessionId: this.openSessionId() });
    if (notice) void this.show(next.id, notice);
  }

  private async show(sessionId: string, notice: SessionNotice): Promise<void> {
    const show = notice.severity === 'error' ? vscode.window.showErrorMessage : vscode.window.showInformationMessage;
    const picked = await show(notice.message, ...notice.actions);
    if (picked === 'Open') await vscode.commands.executeCommand('berth.openSession', sessionId);
    if (picked === 'Review Changes') await vscode.commands.executeCommand('berth.reviewChanges', sessionId);
  }
}
