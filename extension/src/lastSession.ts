// The session last open in this workspace, per server, so that a window reload reopens it
// (rebuilt from the server, like every reopen).
import type * as vscode from 'vscode';
import type { Connection } from './connection';
import { errorMessage, type RedactingLogger } from './logger';
import { ApiError } from './session/apiClient';
import type { SessionController } from './session/sessionController';

const LAST_SESSION_KEY = 'berth.lastSession';

interface LastSession {
  /** `embedded` (its port changes on every start) or the server URL. */
  server: string;
  id: string;
}

function serverKey(conn: Connection): string | null {
  const api = conn.api;
  if (!api) return null;
  return conn.isEmbedded ? 'embedded' : api.connection.baseUrl;
}

export function rememberSession(context: vscode.ExtensionContext, conn: Connection, id: string | null): void {
  const server = serverKey(conn);
  const last = context.workspaceState.get<LastSession>(LAST_SESSION_KEY);
  if (!id || !server || (last?.id === id && last.server === server)) return;
  void context.workspaceState.update(LAST_SESSION_KEY, { server, id } satisfies LastSession);
}

export function forgetSession(context: vscode.ExtensionContext): Thenable<void> {
  return context.workspaceState.update(LAST_SESSION_KEY, undefined);
}

export async function reopenLastSession(context: vscode.ExtensionContext, conn: Connection, controller: SessionController, log: RedactingLogger) {
  const last = context.workspaceState.get<LastSession>(LAST_SESSION_KEY);
  const api = conn.api;
  if (!last || !api || last.server !== serverKey(conn) || controller.sessionId) return;
  try {
    await api.getSession(last.id);
  } catch (err) {
    log.info(`not reopening session ${last.id}: ${errorMessage(err)}`);
    if (err instanceof ApiError && err.status === 404) await forgetSession(context);
    return;
  }
  if (conn.api === api && !controller.sessionId) await controller.open(last.id);
}
