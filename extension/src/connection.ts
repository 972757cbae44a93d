// Which server the extension talks to, and with what token: a configured URL with a token from
// SecretStorage, or (no URL set) the embedded local server. The token never goes to settings or logs.
import * as vscode from 'vscode';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { AuthState } from '@berth/protocol';
import { errorMessage, type RedactingLogger } from './logger';
import { ApiClient, ApiError } from './session/apiClient';
import { normalizeServerUrl } from './serverUrl';
import { DataDirInUseError, dockerAvailable, EmbeddedServer, findRunningServer, serverAnswers, type EmbeddedProvider, type RunningServer } from './server/embedded';

const SECRET_PREFIX = 'berth.token:';
/** How often a window using another window's local server checks that it is still there. */
const ATTACHED_CHECK_MS = 10_000;

export class Connection implements vscode.Disposable {
  private authState: AuthState = 'signed_out';
  private client: ApiClient | null = null;
  private embedded: EmbeddedServer | null = null;
  /** The local server of another window, used instead of starting a second one. */
  private attached: { server: RunningServer; timer: NodeJS.Timeout } | null = null;
  private startup: Promise<void> = Promise.resolve();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: RedactingLogger,
  ) {}

  get auth(): AuthState {
    return this.authState;
  }

  get api(): ApiClient | null {
    return this.client;
  }

  get isEmbedded(): boolean {
    return configuredUrl() === null;
  }

  /** (Re)connects according to the settings; resolves when connected or known to be signed out. */
  refresh(): Promise<void> {
    // A failed connect (a secret store that will not answer, a server that refuses) is logged and
    // shown as signed out; the next refresh starts over.
    this.startup = this.startup
      .then(() => this.connect())
      .catch((err: unknown) => this.log.error(`connecting to the Berth server failed: ${errorMessage(err)}`));
    return this.startup;
  }

  /** The API client, waiting for the embedded server if it is still starting. */
  async ready(): Promise<ApiClient> {
    await this.startup;
    if (!this.client) {
      throw new Error(
        this.isEmbedded
          ? 'The local Berth server is not running. See "Berth: Show Logs".'
          : 'Not signed in. Run "Berth: Sign In".',
      );
    }
    return this.client;
  }

  /** Checks the token against the server, then stores it (SecretStorage) and the URL (settings). */
  async signIn(serverUrl: string, token: string): Promise<void> {
    const url = normalizeServerUrl(serverUrl);
    if (!url) throw new Error('The server URL must be an http(s) URL without credentials.');
    this.log.addSecret(token);
    const candidate = new ApiClient({ baseUrl: url, token });
    try {
      await candidate.listSessions();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) throw new Error('The server refused this token.');
      throw err;
    }
    await this.context.secrets.store(SECRET_PREFIX + url, token);
    await vscode.workspace.getConfiguration('berth').update('serverUrl', url, vscode.ConfigurationTarget.Global);
    // The configuration listener calls refresh(); calling it here too makes sign-in deterministic.
    await this.refresh();
  }

  async signOut(): Promise<void> {
    const url = configuredUrl();
    if (url) await this.context.secrets.delete(SECRET_PREFIX + url);
    await this.refresh();
  }

  dispose(): void {
    this.detach();
    void this.stopEmbedded();
    this.changed.dispose();
  }

  /** For deactivate(): wait until the embedded server has exited. */
  stopEmbedded(): Promise<void> {
    const server = this.embedded;
    this.embedded = null;
    return server ? server.stop() : Promise.resolve();
  }

  private set(auth: AuthState, client: ApiClient | null): void {
    if (this.client && this.client !== client) this.log.removeSecret(this.client.connection.token);
    if (client) this.log.addSecret(client.connection.token);
    this.authState = auth;
    this.client = client;
    void vscode.commands.executeCommand('setContext', 'berth.auth', auth);
    this.changed.fire();
  }

  private async connect(): Promise<void> {
    const url = configuredUrl();
    if (url) {
      this.detach();
      await this.stopEmbedded();
      const token = await this.context.secrets.get(SECRET_PREFIX + url);
      this.set(token ? 'signed_in' : 'signed_out', token ? new ApiClient({ baseUrl: url, token }) : null);
      this.log.info(token ? `using the Berth server at ${url}` : `signed out of ${url}`);
      return;
    }
    if (this.embedded?.running) {
      if (this.client?.connection.baseUrl !== this.embedded.baseUrl) {
        this.set('signed_in', new ApiClient({ baseUrl: this.embedded.baseUrl, token: this.embedded.token }));
      }
      return;
    }
    if (this.attached) return;
    this.set('starting_server', null);
    // Another window may already run the local server on this data dir: use it (one server per data dir).
    const running = await findRunningServer(this.dataDir());
    if (running) {
      this.attach(running);
      return;
    }
    try {
      const server = await this.startEmbedded();
      this.embedded = server;
      server.onExit((code) => {
        if (this.embedded !== server) return;
        this.log.error(`the local server exited (code ${code}); run "Berth: Retry" or reload the window to restart it`);
        this.embedded = null;
        this.set('signed_out', null);
      });
      this.set('signed_in', new ApiClient({ baseUrl: server.baseUrl, token: server.token }));
    } catch (err) {
      const busy = err instanceof DataDirInUseError;
      // Lost a race with another window starting it: that one wrote server.json by now.
      const running = busy ? await findRunningServer(this.dataDir()) : null;
      if (running) {
        this.attach(running);
        return;
      }
      this.log.error(`could not start the local server: ${errorMessage(err)}`);
      this.set('signed_out', null);
      void vscode.window
        .showErrorMessage(
          busy
            ? 'Berth: another VS Code window runs the local server on this machine. Use that window, or set berth.serverUrl to a shared server.'
            : 'Berth: the local server did not start.',
          'Show Logs',
          'Sign In',
        )
        .then((choice) => {
          if (choice === 'Show Logs') void vscode.commands.executeCommand('berth.showLogs');
          if (choice === 'Sign In') void vscode.commands.executeCommand('berth.signIn');
        });
    }
  }

  private dataDir(): string {
    return join(this.context.globalStorageUri.fsPath, 'server');
  }

  /** Uses the local server another window started; when it goes away, this window starts its own. */
  private attach(server: RunningServer): void {
    this.log.info(`using the local server of another window: ${server.baseUrl} (pid ${server.pid})`);
    const timer = setInterval(() => {
      void serverAnswers(server.baseUrl).then((ok) => {
        if (ok || this.attached?.server !== server) return;
        this.log.warn('the local server of the other window stopped; starting one here');
        this.detach();
        void this.refresh();
      });
    }, ATTACHED_CHECK_MS);
    this.attached = { server, timer };
    this.set('signed_in', new ApiClient({ baseUrl: server.baseUrl, token: server.token }));
  }

  private detach(): void {
    if (this.attached) clearInterval(this.attached.timer);
    this.attached = null;
  }

  private async startEmbedded(): Promise<EmbeddedServer> {
    const config = vscode.workspace.getConfiguration('berth');
    const setting = config.get<'auto' | EmbeddedProvider>('localServer.provider', 'auto');
    const provider: EmbeddedProvider = setting === 'auto' ? ((await dockerAvailable()) ? 'devcontainer' : 'local') : setting;
    const dataDir = this.dataDir();
    await mkdir(dataDir, { recursive: true });
    const start = (provider: EmbeddedProvider) =>
      EmbeddedServer.start({
        nodePath: config.get<string>('localServer.nodePath', '') || 'node',
        cliPath: this.context.asAbsolutePath(join('dist', 'server', 'cli.js')),
        dataDir,
        provider,
        // The embedded server serves only this user, on loopback: cloning local paths is allowed.
        extraArgs: ['--allow-local-repos'],
        log: this.log,
      });
    try {
      return await start(provider);
    } catch (err) {
      if (setting !== 'auto' || provider === 'local' || err instanceof DataDirInUseError) throw err;
      // Docker answered but the devcontainer provider could not start: sessions still work locally.
      this.log.warn(`the devcontainer provider did not start (${errorMessage(err)}); using the local provider`);
      return start('local');
    }
  }
}

function configuredUrl(): string | null {
  const raw = vscode.workspace.getConfiguration('berth').get<string>('serverUrl', '').trim();
  return raw ? normalizeServerUrl(raw) : null;
}
