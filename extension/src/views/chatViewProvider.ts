// The sidebar chat: posts the state machine's view state to the webview and validates every
// message coming back (the webview is untrusted: agent output is rendered there).
import * as vscode from 'vscode';
import {
  HostToWebview,
  WebviewToHost,
  diffView,
  type AppliedWork,
  type AuthState,
  type ChangedFile,
  type ChatViewState,
  type MessageHandlers,
  type WebviewCommand,
} from '@berth/protocol';
import { errorMessage, type Logger } from '../logger';
import type { SessionController } from '../session/sessionController';
import { findChangedFile, isKnownRange, toViewState } from '../session/stateMachine';
import { chatHtml, createNonce } from './webviewHtml';

/** What the changes cards' buttons do, for the open session (the commands of commands/changes.ts). */
export interface ChangesActions {
  review(sessionId: string, range: { from: string; to: string } | null): Promise<void>;
  openFile(sessionId: string, range: { from: string; to: string }, file: ChangedFile): Promise<void>;
  apply(sessionId: string): Promise<void>;
  push(sessionId: string): Promise<void>;
  openPullRequest(sessionId: string): Promise<void>;
}

export interface ChatViewDeps {
  controller: SessionController;
  auth(): AuthState;
  /** What this workspace applied of a session's work. */
  applied(sessionId: string): AppliedWork | null;
  runCommand(command: WebviewCommand): void;
  changes: ChangesActions;
  log: Logger;
}

/** Streamed output can produce many states per second; the webview gets at most one per interval. */
const POST_INTERVAL_MS = 30;

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'berth.chat';

  private view: vscode.WebviewView | null = null;
  private revision = 0;
  private lastPostAt = 0;
  private postTimer: NodeJS.Timeout | null = null;
  private pendingReveal: HostToWebview | null = null;
  /** The state the webview has (the last one posted); null: it needs the whole state. */
  private shown: ChatViewState | null = null;
  private readonly renderWaiters = new Set<{ revision: number; resolve: () => void }>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly deps: ChatViewDeps,
  ) {
    this.disposables.push({ dispose: deps.controller.onDidChange(() => this.schedulePost()) });
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const webview = view.webview;
    webview.options = {
      enableScripts: true,
      enableCommandUris: false,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
    webview.html = chatHtml({
      cspSource: webview.cspSource,
      nonce: createNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'chat.css')).toString(),
    });
    const subscriptions = [
      webview.onDidReceiveMessage((raw: unknown) => this.receive(raw)),
      view.onDidChangeVisibility(() => {
        if (view.visible) this.postNow();
      }),
    ];
    view.onDidDispose(() => {
      for (const d of subscriptions) d.dispose();
      if (this.view === view) {
        this.view = null;
        this.shown = null;
      }
    });
  }

  /** Shows the chat view and, once the webview is up, scrolls to `target`. */
  async reveal(target?: 'error' | 'input'): Promise<void> {
    if (target) this.pendingReveal = { type: 'reveal', target };
    if (this.view) this.view.show(true);
    else await vscode.commands.executeCommand(`${ChatViewProvider.viewId}.focus`);
    this.flushReveal();
  }

  /** Posts the current state now and returns its revision. */
  postNow(): number {
    if (this.postTimer) clearTimeout(this.postTimer);
    this.postTimer = null;
    this.lastPostAt = Date.now();
    const state = this.viewState();
    const shown = this.shown;
    // The whole state when the webview has none, another session is open, or the stream came back
    // (a reconnect replays events: the conversation may have been rebuilt); else only what changed.
    const whole = !shown || (shown.session?.sessionId ?? null) !== (state.session?.sessionId ?? null) || (shown.connection !== 'open' && state.connection === 'open');
    this.post(whole ? { type: 'state', state } : { type: 'patch', patch: diffView(shown, state) });
    if (this.view) this.shown = state;
    return state.revision;
  }

  /** Resolves when the webview has painted `revision` (or a later one); false after `timeoutMs`. */
  waitForRender(revision: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          this.renderWaiters.delete(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.renderWaiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.renderWaiters.add(waiter);
    });
  }

  dispose(): void {
    if (this.postTimer) clearTimeout(this.postTimer);
    for (const d of this.disposables) d.dispose();
  }

  private viewState(): ChatViewState {
    const id = this.deps.controller.sessionId;
    return toViewState(this.deps.controller.state, this.deps.auth(), ++this.revision, id ? this.deps.applied(id) : null);
  }

  /** The open session's id, for a card action; the actions report their own failures. */
  private openSessionId(): string | null {
    const id = this.deps.controller.sessionId;
    if (!id) this.deps.log.warn('chat view: a changes action without an open session');
    return id;
  }

  /** Also called by the extension when the auth state changes. */
  schedulePost(): void {
    if (this.postTimer) return;
    const wait = POST_INTERVAL_MS - (Date.now() - this.lastPostAt);
    if (wait <= 0) {
      this.postNow();
      return;
    }
    this.postTimer = setTimeout(() => this.postNow(), wait);
  }

  private post(message: HostToWebview): void {
    if (!this.view) return;
    void this.view.webview.postMessage(message).then(undefined, (err: unknown) => {
      this.deps.log.debug(`chat view: postMessage failed: ${errorMessage(err)}`);
    });
  }

  private flushReveal(): void {
    if (this.pendingReveal && this.view) {
      this.post(this.pendingReveal);
      this.pendingReveal = null;
    }
  }

  private readonly handlers: MessageHandlers<WebviewToHost> = {
    ready: () => {
      this.shown = null;
      this.postNow();
      this.flushReveal();
    },
    send: async ({ text }) => {
      // The webview cleared its input on Enter; a message that did not go out goes back there, not lost.
      try {
        if (!(await this.deps.controller.send(text))) this.post({ type: 'restoreDraft', text });
      } catch (err) {
        this.post({ type: 'restoreDraft', text });
        void vscode.window.showWarningMessage(`Berth: the message was not sent: ${errorMessage(err)}`);
      }
    },
    retry: () => this.deps.controller.retry(),
    interrupt: async () => {
      try {
        await this.deps.controller.interrupt();
      } catch (err) {
        void vscode.window.showWarningMessage(`Berth: could not stop the turn: ${errorMessage(err)}`);
      }
    },
    command: ({ command }) => this.deps.runCommand(command),
    resync: () => {
      this.deps.log.debug('chat view: the webview asked for the whole state');
      this.shown = null;
      this.postNow();
    },
    rendered: ({ revision }) => {
      for (const waiter of [...this.renderWaiters]) if (revision >= waiter.revision) waiter.resolve();
    },
    reviewChanges: async ({ range }) => {
      const id = this.openSessionId();
      if (!id) return;
      if (range && !isKnownRange(this.deps.controller.state.session, range.from, range.to)) {
        this.deps.log.warn('chat view: ignored a review of a range the chat never showed');
        return;
      }
      await this.deps.changes.review(id, range);
    },
    openFileDiff: async ({ from, to, path }) => {
      const id = this.openSessionId();
      const file = findChangedFile(this.deps.controller.state.session, from, to, path);
      if (!id || !file) {
        this.deps.log.warn('chat view: ignored a diff of a file the chat never showed');
        return;
      }
      await this.deps.changes.openFile(id, { from, to }, file);
    },
    applyChanges: async () => {
      const id = this.openSessionId();
      if (id) await this.deps.changes.apply(id);
    },
    pushChanges: async () => {
      const id = this.openSessionId();
      if (id) await this.deps.changes.push(id);
    },
    cancelQueued: async ({ turnId }) => {
      if (!this.deps.controller.state.session?.queue.some((m) => m.turnId === turnId)) {
        this.deps.log.warn('chat view: ignored a cancel of a message the chat does not show as queued');
        return;
      }
      try {
        await this.deps.controller.cancelQueued(turnId);
      } catch (err) {
        void vscode.window.showWarningMessage(`Berth: the queued message was not cancelled: ${errorMessage(err)}`);
      }
    },
    openPullRequest: async () => {
      const id = this.openSessionId();
      if (id) await this.deps.changes.openPullRequest(id);
    },
  };

  private receive(raw: unknown): void {
    const parsed = WebviewToHost.safeParse(raw);
    if (!parsed.success) {
      this.deps.log.warn('chat view: ignored an invalid message from the webview');
      return;
    }
    const message = parsed.data;
    const handler = this.handlers[message.type] as (m: WebviewToHost) => void | Promise<void>;
    Promise.resolve(handler(message)).catch((err: unknown) => {
      this.deps.log.error(`chat view: ${message.type} failed: ${errorMessage(err)}`);
    });
  }
}
