import * as vscode from 'vscode';
import { z } from 'zod';
import { CommitSha } from '@berth/protocol';
import { OPEN_CHAT_COMMAND, REVEAL_ERROR_COMMAND } from '../statusBar';
import { signIn, signOut } from './account';
import { errorMessage, type CommandContext } from './context';
import { applyChanges, openPullRequest, pushBranch, reviewChanges } from './changes';
import { addGitCredential, connectGitHub, gitCredentials, type AddCredentialArgs } from './credentials';
import { openSession } from './openSession';
import { manageSecrets } from './secrets';
import { deleteSession, openChat, retry, revealError, stopSession } from './sessionActions';
import { showLogs } from './showLogs';
import { startSession, type StartSessionArgs } from './startSession';
import { openTerminal } from './terminal';

/** Command ids, as contributed in package.json. */
export const COMMANDS = {
  startSession: 'berth.startSession',
  openSession: 'berth.openSession',
  stopSession: 'berth.stopSession',
  deleteSession: 'berth.deleteSession',
  reviewChanges: 'berth.reviewChanges',
  applyChanges: 'berth.applyChanges',
  pushBranch: 'berth.pushBranch',
  openPullRequest: 'berth.openPullRequest',
  retry: 'berth.retry',
  signIn: 'berth.signIn',
  signOut: 'berth.signOut',
  showLogs: 'berth.showLogs',
  connectGitHub: 'berth.connectGitHub',
  addGitCredential: 'berth.addGitCredential',
  gitCredentials: 'berth.gitCredentials',
  manageSecrets: 'berth.manageSecrets',
  openTerminal: 'berth.openTerminal',
  openChat: OPEN_CHAT_COMMAND,
  revealError: REVEAL_ERROR_COMMAND,
} as const;

/** A checkpoint range passed to Review Changes (anything else reviews the whole session). */
const CommitRangeArg = z.object({ from: CommitSha, to: CommitSha });

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const guard =
    <A extends unknown[]>(name: string, run: (...args: A) => Promise<unknown>) =>
    async (...args: A) => {
      try {
        return await run(...args);
      } catch (err) {
        // Blanked like the log: a credential or secret being handled may be in a server's answer.
        const message = ctx.log.redactText(errorMessage(err));
        ctx.log.error(`${name}: ${message}`);
        void vscode.window.showErrorMessage(`Berth: ${message}`);
        return undefined;
      }
    };
  return [
    vscode.commands.registerCommand(COMMANDS.startSession, guard('start', (args?: StartSessionArgs) => startSession(ctx, args ?? {}))),
    vscode.commands.registerCommand(COMMANDS.openSession, guard('open', (id?: unknown) => openSession(ctx, typeof id === 'string' ? id : undefined))),
    vscode.commands.registerCommand(COMMANDS.stopSession, guard('stop', () => stopSession(ctx))),
    // These take the session from a Sessions view item (or an id); the palette acts on the open one.
    vscode.commands.registerCommand(COMMANDS.deleteSession, guard('delete', (target?: unknown) => deleteSession(ctx, target))),
    vscode.commands.registerCommand(
      COMMANDS.reviewChanges,
      guard('review', (target?: unknown, range?: unknown) => reviewChanges(ctx, target, CommitRangeArg.safeParse(range).data)),
    ),
    vscode.commands.registerCommand(COMMANDS.applyChanges, guard('apply', (target?: unknown) => applyChanges(ctx, target))),
    vscode.commands.registerCommand(COMMANDS.pushBranch, guard('push', (target?: unknown) => pushBranch(ctx, target))),
    vscode.commands.registerCommand(COMMANDS.openPullRequest, guard('pull request', (target?: unknown) => openPullRequest(ctx, target))),
    vscode.commands.registerCommand(COMMANDS.retry, guard('retry', () => retry(ctx))),
    vscode.commands.registerCommand(COMMANDS.signIn, guard('sign in', () => signIn(ctx))),
    vscode.commands.registerCommand(COMMANDS.signOut, guard('sign out', () => signOut(ctx))),
    vscode.commands.registerCommand(COMMANDS.showLogs, guard('logs', () => showLogs(ctx))),
    vscode.commands.registerCommand(COMMANDS.connectGitHub, guard('connect GitHub', () => connectGitHub(ctx))),
    vscode.commands.registerCommand(
      COMMANDS.addGitCredential,
      guard('add git credential', (args?: AddCredentialArgs) => addGitCredential(ctx, typeof args?.host === 'string' ? { host: args.host } : {})),
    ),
    vscode.commands.registerCommand(COMMANDS.gitCredentials, guard('git credentials', () => gitCredentials(ctx))),
    vscode.commands.registerCommand(COMMANDS.manageSecrets, guard('secrets', () => manageSecrets(ctx))),
    vscode.commands.registerCommand(COMMANDS.openTerminal, guard('terminal', (target?: unknown) => openTerminal(ctx, target))),
    vscode.commands.registerCommand(COMMANDS.openChat, guard('open chat', () => openChat(ctx))),
    vscode.commands.registerCommand(COMMANDS.revealError, guard('reveal error', () => revealError(ctx))),
  ];
}
