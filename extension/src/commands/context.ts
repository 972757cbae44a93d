import type * as vscode from 'vscode';
import type { Deliveries } from '../changes/deliveries';
import type { Connection } from '../connection';
import type { RedactingLogger } from '../logger';
import type { SessionController } from '../session/sessionController';
import type { ChatViewProvider } from '../views/chatViewProvider';
import type { SessionsTreeProvider } from '../views/sessionsTreeProvider';

/** What every command may use; built once in activate(). */
export interface CommandContext {
  extension: vscode.ExtensionContext;
  connection: Connection;
  controller: SessionController;
  chatView: ChatViewProvider;
  sessions: SessionsTreeProvider;
  /** What this workspace did with each session's work (applied, pushed). */
  deliveries: Deliveries;
  log: RedactingLogger;
  output: vscode.LogOutputChannel;
}

export { errorMessage } from '../logger';
