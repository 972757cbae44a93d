// Berth: Stop Session, Delete Session, Berth: Retry, and the two status-bar click targets.
import * as vscode from 'vscode';
import type { SessionView } from '@berth/protocol';
import { lastDelivered } from '../changes/deliveries';
import { forgetSession } from '../lastSession';
import { resolveTarget } from './changes';
import { errorMessage, type CommandContext } from './context';

/** Stops the sandbox after a last checkpoint; the session stays (sleeping) and the next message resumes it. */
export async function stopSession(ctx: CommandContext): Promise<void> {
  const id = ctx.controller.sessionId;
  if (!id) {
    void vscode.window.showInformationMessage('Berth: no session is open.');
    return;
  }
  try {
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Berth: stopping the sandbox (its work is checkpointed first)…' }, () =>
      ctx.controller.stopSession(),
    );
    ctx.log.info(`stopped session ${id}`);
    void vscode.window.showInformationMessage('Berth: the sandbox is stopped; the session is kept. Send a message to resume it.');
  } catch (err) {
    void vscode.window.showErrorMessage(`Berth: could not stop the session: ${errorMessage(err)}`);
  }
}

/** Removes the session and its data from the server, after saying what work would be lost. */
export async function deleteSession(ctx: CommandContext, arg?: unknown): Promise<void> {
  const { id, view, api } = await resolveTarget(ctx, arg);
  const detail = await unsavedWork(ctx, view);
  const confirm = await vscode.window.showWarningMessage(
    `Delete the session "${view.prompt?.split('\n')[0]?.slice(0, 60) || id}"?`,
    { modal: true, detail: `${detail}\n\nIts sandbox, conversation and checkpoints are removed from the server. This cannot be undone.` },
    'Delete Session',
  );
  if (confirm !== 'Delete Session') return;
  await api.deleteSession(id);
  if (ctx.controller.sessionId === id) {
    ctx.controller.clear();
    await forgetSession(ctx.extension);
  }
  await ctx.deliveries.forget(id);
  ctx.sessions.refresh();
  ctx.log.info(`deleted session ${id}`);
}

/** "3 changed files were never pushed or applied…" — from the server's summary and what this workspace applied. */
async function unsavedWork(ctx: CommandContext, view: SessionView): Promise<string> {
  const changes = view.changes;
  if (!changes || changes.head === changes.base || changes.files.length === 0) return 'The session changed no files.';
  const total = changes.files.length;
  const applied = ctx.deliveries.applied(view.id);
  let undelivered = total;
  try {
    const api = await ctx.connection.ready();
    const delivered = lastDelivered(changes, applied, changes.pushed || applied ? (await api.getChanges(view.id)).checkpoints : []);
    if (delivered === changes.head) undelivered = 0;
    else if (delivered) undelivered = (await api.getChanges(view.id, { from: delivered, to: changes.head })).files.length;
  } catch (err) {
    ctx.log.warn(`delete: could not compare with what was pushed or applied: ${errorMessage(err)}`);
  }
  const where = [
    changes.pushed && `pushed to ${changes.pushed.branch}`,
    applied && (applied.how === 'branch' ? `applied as the branch ${applied.branch}` : 'applied onto this working tree'),
  ]
    .filter(Boolean)
    .join(' and ');
  if (undelivered === 0) return `All of its work (${total} changed file${total === 1 ? '' : 's'}) was ${where}.`;
  const one = undelivered === 1;
  const lost = `never pushed or applied: ${one ? 'it is' : 'they are'} lost with the session.`;
  return where
    ? `${undelivered} file${one ? '' : 's'} changed after the work was ${where} ${one ? 'was' : 'were'} ${lost}`
    : `${undelivered} changed file${one ? '' : 's'} ${one ? 'was' : 'were'} ${lost}`;
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
