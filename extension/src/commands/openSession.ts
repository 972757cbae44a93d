// Berth: Open Session — a quick pick of the user's sessions; the chosen one is rebuilt from the server.
import * as vscode from 'vscode';
import type { SessionView } from '@berth/protocol';
import { STATUS_CODICONS } from '../statusBarModel';
import { errorMessage, type CommandContext } from './context';

export async function openSession(ctx: CommandContext, sessionId?: string): Promise<void> {
  let id = typeof sessionId === 'string' ? sessionId : undefined;
  if (!id) {
    let sessions: SessionView[];
    try {
      const api = await ctx.connection.ready();
      sessions = await api.listSessions();
    } catch (err) {
      void vscode.window.showErrorMessage(`Berth: cannot list sessions: ${errorMessage(err)}`);
      return;
    }
    if (sessions.length === 0) {
      const choice = await vscode.window.showInformationMessage('Berth: you have no sessions yet.', 'Start Session');
      if (choice) await vscode.commands.executeCommand('berth.startSession');
      return;
    }
    const picked = await vscode.window.showQuickPick(
      [...sessions]
        .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))
        .map((s) => ({
          label: `$(${STATUS_CODICONS[s.status]}) ${s.prompt?.split('\n')[0]?.slice(0, 80) || s.id}`,
          description: `${s.status}${s.step && s.status === 'preparing' ? ` · ${s.step}` : ''}`,
          detail: `${s.repo.url}${s.repo.branch ? ` @ ${s.repo.branch}` : ''} · ${s.id}`,
          id: s.id,
        })),
      { title: 'Berth: Open Session', placeHolder: 'Choose a session', matchOnDetail: true },
    );
    if (!picked) return;
    id = picked.id;
  }
  const opening = ctx.controller.open(id);
  await ctx.chatView.reveal();
  await opening;
}
