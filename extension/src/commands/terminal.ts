// Berth: Open Terminal — a shell in the session's sandbox, in a VS Code terminal. A sleeping
// session is woken first (the sandbox is re-created, with progress); several terminals may be open.
import * as vscode from 'vscode';
import type { SessionView } from '@berth/protocol';
import type { ApiClient } from '../session/apiClient';
import { SandboxTerminal } from '../terminal/sandboxTerminal';
import { resolveTarget } from './changes';
import type { CommandContext } from './context';

const WAKE_POLL_MS = 300;
const WAKE_TIMEOUT_MS = 10 * 60_000;

export async function openTerminal(ctx: CommandContext, arg?: unknown): Promise<vscode.Terminal | undefined> {
  const { id, view, api } = await resolveTarget(ctx, arg);
  const live = await ensureSandbox(api, view);
  const label = live.prompt?.split('\n')[0]?.trim().slice(0, 30) || id.slice(0, 12);
  const pty = new SandboxTerminal(
    async (size) => api.terminalUrl(id, (await api.streamTicket(id, 'terminal')).ticket, size),
    (reason) => ctx.log.info(`terminal of session ${id} ended: ${reason}`),
  );
  const terminal = vscode.window.createTerminal({ name: `Berth: ${label}`, pty, iconPath: new vscode.ThemeIcon('remote') });
  terminal.show();
  ctx.log.info(`opened a terminal in the sandbox of session ${id}`);
  return terminal;
}

/** The session with a running sandbox: a sleeping one is woken, one being prepared is waited for. */
async function ensureSandbox(api: ApiClient, view: SessionView): Promise<SessionView> {
  if (view.status === 'ready' || view.status === 'running') return view;
  if (view.status === 'failed') throw new Error('The session failed: retry it before opening a terminal.');
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Berth: starting the sandbox for the terminal…', cancellable: true },
    async (progress, token) => {
      if (view.status === 'sleeping') await api.wake(view.id);
      const deadline = Date.now() + WAKE_TIMEOUT_MS;
      for (;;) {
        const current = await api.getSession(view.id);
        if (current.status === 'ready' || current.status === 'running') return current;
        if (current.status === 'failed') throw new Error(`The sandbox could not be started: ${current.lastError?.message ?? 'preparation failed'}`);
        if (token.isCancellationRequested) throw new vscode.CancellationError();
        if (Date.now() > deadline) throw new Error('The sandbox did not start in time.');
        if (current.step) progress.report({ message: current.step.replace(/_/g, ' ') });
        await new Promise((resolve) => setTimeout(resolve, WAKE_POLL_MS));
      }
    },
  );
}
