// Berth: Show Logs — the extension's log, or the current session's preparation log from the server.
import * as vscode from 'vscode';
import { errorMessage, type CommandContext } from './context';

export async function showLogs(ctx: CommandContext): Promise<void> {
  const id = ctx.controller.sessionId;
  if (!id) {
    ctx.output.show(true);
    return;
  }
  const choice = await vscode.window.showQuickPick(
    [
      { label: '$(output) Extension log', which: 'extension' as const },
      { label: '$(file-text) Preparation log', description: id, which: 'session' as const },
    ],
    { title: 'Berth: Show Logs' },
  );
  if (!choice) return;
  if (choice.which === 'extension') {
    ctx.output.show(true);
    return;
  }
  try {
    const api = await ctx.connection.ready();
    const text = await api.preparationLog(id);
    const doc = await vscode.workspace.openTextDocument({ content: text || '(the preparation log is empty)', language: 'log' });
    await vscode.window.showTextDocument(doc, { preview: true });
  } catch (err) {
    void vscode.window.showErrorMessage(`Berth: cannot read the preparation log: ${errorMessage(err)}`);
  }
}
