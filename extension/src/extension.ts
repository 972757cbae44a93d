// activate(): wires the parts together. The data path: command → api client → server →
// stream client → state machine → status bar and chat webview.
import * as vscode from 'vscode';
import { Deliveries } from './changes/deliveries';
import { SessionFileSystem } from './changes/sessionFileSystem';
import { registerCommands } from './commands';
import { openFileDiff } from './commands/changes';
import { watchCloneFailures } from './commands/credentialHint';
import type { CommandContext } from './commands/context';
import { Connection } from './connection';
import { rememberSession, reopenLastSession } from './lastSession';
import { RedactingLogger } from './logger';
import { SessionController } from './session/sessionController';
import { hasChanges } from './session/stateMachine';
import { createStatusBar } from './statusBar';
import { ChatViewProvider } from './views/chatViewProvider';
import { SessionsTreeProvider } from './views/sessionsTreeProvider';
import { SessionNotifier } from './notifications';
import { UserStreamClient } from './session/userStreamClient';
import type { WebviewCommand } from '@berth/protocol';

let connection: Connection | null = null;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Berth', { log: true });
  const log = new RedactingLogger(output);
  connection = new Connection(context, log);
  const conn = connection;
  const controller = new SessionController(null, { log });
  const deliveries = new Deliveries(context.workspaceState);
  // The card buttons run the same commands as the palette (with their error reporting), for the open session.
  const run = (command: string, ...args: unknown[]) => Promise.resolve(vscode.commands.executeCommand(command, ...args)).then(() => {});
  const chatView = new ChatViewProvider(context.extensionUri, {
    controller,
    auth: () => conn.auth,
    applied: (id) => deliveries.applied(id),
    runCommand: (command: WebviewCommand) => void vscode.commands.executeCommand(`berth.${command}`),
    changes: {
      review: (id, range) => run('berth.reviewChanges', id, range ?? undefined),
      openFile: (id, range, file) =>
        openFileDiff(id, range, file).catch((err: unknown) => {
          log.error(`diff: ${err instanceof Error ? err.message : String(err)}`);
          void vscode.window.showErrorMessage(`Berth: cannot open the diff: ${err instanceof Error ? err.message : String(err)}`);
        }),
      apply: (id) => run('berth.applyChanges', id),
      push: (id) => run('berth.pushBranch', id),
      openPullRequest: (id) => run('berth.openPullRequest', id),
    },
    log,
  });
  const sessions = new SessionsTreeProvider(conn, log, () => {
    const s = controller.state.session;
    return s?.sessionId ? { id: s.sessionId, status: s.status, changes: s.changes } : null;
  });
  const ctx: CommandContext = { extension: context, connection: conn, controller, chatView, sessions, deliveries, log, output };

  // A new server or token replaces the API client; the open session belonged to the old one.
  // The session last open on this server in this workspace is reopened (rebuilt from the server).
  let connectionKey = '';
  // Every session of the user, live (one connection per window): the Sessions view and notifications.
  const notifier = new SessionNotifier(() => controller.sessionId);
  let userStream: UserStreamClient | null = null;
  context.subscriptions.push({ dispose: () => userStream?.dispose() });
  conn.onDidChange(() => {
    const api = conn.api;
    const key = api ? `${api.connection.baseUrl}\n${api.connection.token}` : '';
    if (key !== connectionKey) {
      connectionKey = key;
      controller.setApi(api);
      if (api) void reopenLastSession(context, conn, controller, log);
      userStream?.dispose();
      userStream = api
        ? new UserStreamClient(
            () => api.userStreamUrl(),
            {
              onSnapshot: (views) => {
                notifier.reset(views);
                sessions.refresh();
              },
              onSession: (view) => {
                notifier.update(view);
                sessions.refresh();
              },
              onDown: () => {},
            },
            log,
          )
        : null;
    }
    chatView.schedulePost();
    sessions.refresh();
  });

  // A clone the remote refused for want of a credential: offer one, then Retry.
  controller.onDidChange(watchCloneFailures(ctx));

  // Context keys for `when` clauses, and a sessions list that follows status changes (not every delta).
  let lastStatusKey = '';
  controller.onDidChange((state) => {
    const status = state.session?.status ?? '';
    const statusKey = `${state.session?.sessionId}:${status}:${state.session?.changes?.head}:${state.session?.changes?.pushed?.head}`;
    if (statusKey === lastStatusKey) return;
    lastStatusKey = statusKey;
    rememberSession(context, conn, state.session?.sessionId ?? null);
    void vscode.commands.executeCommand('setContext', 'berth.hasSession', !!state.session?.sessionId);
    void vscode.commands.executeCommand('setContext', 'berth.sessionStatus', status);
    void vscode.commands.executeCommand('setContext', 'berth.hasChanges', hasChanges(state));
    sessions.refresh();
  });

  context.subscriptions.push(
    output,
    conn,
    { dispose: () => controller.dispose() },
    chatView,
    sessions,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, chatView),
    SessionFileSystem.register(() => conn.ready()),
    vscode.window.registerTreeDataProvider(SessionsTreeProvider.viewId, sessions),
    createStatusBar(controller),
    ...registerCommands(ctx),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('berth.serverUrl') || e.affectsConfiguration('berth.localServer')) void conn.refresh();
    }),
  );
  void conn.refresh();
}

/** Stops the embedded server (VS Code waits for the returned promise, briefly). */
export async function deactivate(): Promise<void> {
  await connection?.stopEmbedded();
  connection = null;
}

