// Berth: Stop Session, Berth: Retry, and the two status-bar click targets.
import * as vscode from 'vscode';
import { forgetSession } from '../lastSession';
import { errorMessage, type CommandContext } from './context';

export async function stopSession(ctx: CommandContext): Promise<void> {
  const id = ctx.controller.sessionId;
  if (!id) {
    void vscode.window.showInformationMessage('Berth: no session is open.');
    return;
  }
  const confirm = await vscode.window.showWarningMessage(
    `Stop session ${id}? Its sandbox is destroyed and the session is deleted.`,
    { modal: true },
    'Stop Session',
  );
  if (confirm !== 'Stop Session') return;
  try {
    await ctx.controller.deleteSession();
    await forgetSession(ctx.extension);
    ctx.log.info(`stopped session ${id}`);
  } catch (err) {
    void vscode.window.showErrorMessage(`Berth: could not stop the session: ${errorMessage(err)}`);
  }
}

export async function retry(ctx: CommandContext): Promise<void> {
  if (ctx.connection.auth === 'signed_out' && ctx.connection.isEmbedded) {
    // The local server died or never started: try again.
    await ctx.connection.refresh();
    return;
  }
  if (ctx.controller.state.session?.status !== 'failed') {
    void vscode.window.showInformationMessage('Berth: there is nothing to retry.');
    return;
  }
  await ctx.chatView.reveal();
  await ctx.controller.retry();
}

export async function revealError(ctx: CommandContext): Promise<void> {
  await ctx.chatView.reveal('error');
}

export async function openChat(ctx: CommandContext): Promise<void> {
  await ctx.chatView.reveal('input');
}
