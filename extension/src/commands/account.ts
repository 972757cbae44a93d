// Berth: Sign In / Sign Out. The token goes to SecretStorage only; the URL goes to settings.
import * as vscode from 'vscode';
import { normalizeServerUrl } from '../serverUrl';
import { errorMessage, type CommandContext } from './context';

export async function signIn(ctx: CommandContext): Promise<void> {
  const current = vscode.workspace.getConfiguration('berth').get<string>('serverUrl', '');
  const url = await vscode.window.showInputBox({
    title: 'Berth: Sign In (1/2)',
    prompt: 'Berth server URL',
    value: current || 'https://',
    ignoreFocusOut: true,
    validateInput: (v) => (normalizeServerUrl(v) ? undefined : 'Enter an http(s) URL without credentials, e.g. https://berth.example.com'),
  });
  if (url === undefined) return;
  const token = await vscode.window.showInputBox({
    title: 'Berth: Sign In (2/2)',
    prompt: 'Access token (stored in VS Code secret storage)',
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : 'A token is required'),
  });
  if (token === undefined) return;
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Berth: signing in…' },
      () => ctx.connection.signIn(url, token.trim()),
    );
    void vscode.window.showInformationMessage(`Berth: signed in to ${normalizeServerUrl(url)}.`);
  } catch (err) {
    void vscode.window.showErrorMessage(`Berth: sign-in failed: ${errorMessage(err)}`);
  }
}

export async function signOut(ctx: CommandContext): Promise<void> {
  await ctx.connection.signOut();
  void vscode.window.showInformationMessage('Berth: signed out.');
}
