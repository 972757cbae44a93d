import * as vscode from 'vscode';
import { OPEN_CHAT_COMMAND, REVEAL_ERROR_COMMAND } from '../statusBar';
import { signIn, signOut } from './account';
import { errorMessage, type CommandContext } from './context';
import { openSession } from './openSession';
import { openChat, retry, revealError, stopSession } from './sessionActions';
import { showLogs } from './showLogs';
import { startSession, type StartSessionArgs } from './startSession';

/** Command ids, as contributed in package.json. */
export const COMMANDS = {
  startSession: 'berth.startSession',
  openSession: 'berth.openSession',
  stopSession: 'berth.stopSession',
  retry: 'berth.retry',
  signIn: 'berth.signIn',
  signOut: 'berth.signOut',
  showLogs: 'berth.showLogs',
  openChat: OPEN_CHAT_COMMAND,
  revealError: REVEAL_ERROR_COMMAND,
} as const;

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const guard =
    <A extends unknown[]>(name: string, run: (...args: A) => Promise<unknown>) =>
    async (...args: A) => {
      try {
        return await run(...args);
      } catch (err) {
        const message = errorMessage(err);
        ctx.log.error(`${name}: ${message}`);
        void vscode.window.showErrorMessage(`Berth: ${message}`);
        return undefined;
      }
    };
  return [
    vscode.commands.registerCommand(COMMANDS.startSession, guard('start', (args?: StartSessionArgs) => startSession(ctx, args ?? {}))),
    vscode.commands.registerCommand(COMMANDS.openSession, guard('open', (id?: unknown) => openSession(ctx, typeof id === 'string' ? id : undefined))),
    vscode.commands.registerCommand(COMMANDS.stopSession, guard('stop', () => stopSession(ctx))),
    vscode.commands.registerCommand(COMMANDS.retry, guard('retry', () => retry(ctx))),
    vscode.commands.registerCommand(COMMANDS.signIn, guard('sign in', () => signIn(ctx))),
    vscode.commands.registerCommand(COMMANDS.signOut, guard('sign out', () => signOut(ctx))),
    vscode.commands.registerCommand(COMMANDS.showLogs, guard('logs', () => showLogs(ctx))),
    vscode.commands.registerCommand(COMMANDS.openChat, guard('open chat', () => openChat(ctx))),
    vscode.commands.registerCommand(COMMANDS.revealError, guard('reveal error', () => revealError(ctx))),
  ];
}
