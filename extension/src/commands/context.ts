import type * as vscode from 'vscode';
import type { Connection } from '../connection';
import type { RedactingLogger } from '../logger';
import type { SessionController } from '../session/sessionController';
import type { ChatViewProvider } from '../views/chatViewProvider';

/** What every command may use; built once in activate(). */
export interface CommandContext {
  extension: vscode.ExtensionContext;
  connection: Connection;
  controller: SessionController;
  chatView: ChatViewProvider;
  log: RedactingLogger;
  output: vscode.LogOutputChannel;
}

export { errorMessage } from '../logger';
