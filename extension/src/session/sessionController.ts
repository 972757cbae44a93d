// Drives the current session: API calls and the event stream feed the state machine,
// and listeners (status bar, chat view) are told about every new state. No vscode import.
import type { ShownError, StartSessionRequest, StreamEvent } from '@berth/protocol';
import { errorMessage, silentLogger, type Logger } from '../logger';
import { ApiError, type ApiClient } from './apiClient';
import { initialState, inputLock, reduce, type SessionAction, type SessionMachineState } from './stateMachine';
import { StreamClient, type StreamClientOptions } from './streamClient';

export type StreamTuning = Pick<StreamClientOptions, 'backoff' | 'random' | 'pingIntervalMs'>;

/** Checkpoints replayed on reopen come in a burst: one summary fetch after the last of them. */
const CHANGES_REFRESH_DELAY_MS = 150;

export class SessionController {
  private machine: SessionMachineState = initialState;
  private stream: StreamClient | null = null;
  private readonly listeners = new Set<(state: SessionMachineState) => void>();
  /** The last start request, so Retry can repeat a start that never got a session id. */
  private lastStart: StartSessionRequest | null = null;
  /** Bumped whenever another session takes over, so late answers for the old one are dropped. */
  private generation = 0;
  private changesTimer: NodeJS.Timeout | null = null;

  constructor(
    private api: ApiClient | null,
    private readonly options: { log?: Logger; stream?: StreamTuning } = {},
  ) {}

  get state(): SessionMachineState {
    return this.machine;
  }

  get sessionId(): string | null {
    return this.machine.session?.sessionId ?? null;
  }

  get streamClient(): StreamClient | null {
    return this.stream;
  }

  onDidChange(listener: (state: SessionMachineState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A new server or token: the current session belongs to the old connection. */
  setApi(api: ApiClient | null): void {
    this.api = api;
    this.clear();
  }

  clear(): void {
    this.generation++;
    this.stopStream();
    this.lastStart = null;
    this.dispatch({ type: 'cleared' });
  }

  /** Shows "preparing" at once, then calls the fast path and follows the new session's stream. */
  async start(request: StartSessionRequest): Promise<string | null> {
    const api = this.requireApi();
    const generation = ++this.generation;
    this.stopStream();
    this.lastStart = request;
    this.dispatch({ type: 'start_requested', repo: request.repo, prompt: request.prompt ?? null });
    try {
      const res = await api.startSession(request);
      if (generation !== this.generation) return res.sessionId;
      this.dispatch({ type: 'start_accepted', sessionId: res.sessionId, status: res.status });
      this.followStream(res.sessionId);
      return res.sessionId;
    } catch (err) {
      if (generation === this.generation) this.dispatch({ type: 'request_failed', error: toErrorInfo(err) });
      return null;
    }
  }

  /** Reopening rebuilds everything from the server: snapshot, then every persisted event from the start. */
  async open(sessionId: string): Promise<void> {
    const api = this.requireApi();
    const generation = ++this.generation;
    this.stopStream();
    this.lastStart = null;
    this.dispatch({ type: 'opened', sessionId });
    try {
      const view = await api.getSession(sessionId);
      if (generation !== this.generation) return;
      this.dispatch({ type: 'snapshot', session: view });
      this.followStream(sessionId);
    } catch (err) {
      if (generation === this.generation) this.dispatch({ type: 'request_failed', error: toErrorInfo(err) });
    }
  }

  /** Resolves true when the server accepted the message; false when the POST failed (shown in the chat). */
  async send(text: string): Promise<boolean> {
    const id = this.sessionId;
    const lock = inputLock(this.machine);
    if (!id || !lock.enabled) throw new Error(lock.reason || 'No session');
    const api = this.requireApi();
    const generation = this.generation;
    this.dispatch({ type: 'send_started' });
    try {
      const res = await api.sendMessage(id, text);
      if (generation === this.generation) this.dispatch({ type: 'send_finished', turnId: res.turnId, status: res.status, text });
      return true;
    } catch (err) {
      if (generation === this.generation) this.dispatch({ type: 'send_failed', error: toErrorInfo(err) });
      return false;
    }
  }

  async retry(): Promise<void> {
    const session = this.machine.session;
    if (!session || session.status !== 'failed') return;
    if (!session.sessionId) {
      // The start request itself failed: send it again.
      if (this.lastStart) await this.start(this.lastStart);
      return;
    }
    const api = this.requireApi();
    const generation = this.generation;
    this.dispatch({ type: 'retry_requested' });
    try {
      await api.retry(session.sessionId);
      if (generation === this.generation && !this.stream) this.followStream(session.sessionId);
    } catch (err) {
      if (generation === this.generation) this.dispatch({ type: 'request_failed', error: toErrorInfo(err) });
    }
  }

  /** Cancels a queued message; the stream's `queue` event then removes it from the chat. */
  async cancelQueued(turnId: string): Promise<void> {
    const id = this.sessionId;
    if (id) await this.requireApi().cancelQueuedMessage(id, turnId);
  }

  async interrupt(): Promise<void> {
    const id = this.sessionId;
    if (id) await this.requireApi().interrupt(id);
  }

  /** Stops the sandbox (after a last checkpoint); the session is kept, sleeping, and the next message resumes it. */
  async stopSession(): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    await this.requireApi().stopSession(id);
    // The stream says `sleeping` too; the checkpoint taken on the way may have changed the summary.
    await this.refreshChanges();
  }

  /** Fetches the server's cumulative summary of the open session's work (after a checkpoint or a push). */
  async refreshChanges(): Promise<void> {
    const id = this.sessionId;
    if (!id || !this.api) return;
    const generation = this.generation;
    try {
      const view = await this.api.getSession(id);
      if (generation === this.generation && view.changes !== undefined) this.dispatch({ type: 'changes_summary', sessionId: id, changes: view.changes });
    } catch (err) {
      (this.options.log ?? silentLogger).warn(`could not refresh the changes of ${id}: ${errorMessage(err)}`);
    }
  }

  /** Deletes the session on the server (its sandbox is destroyed) and clears the view. */
  async deleteSession(): Promise<void> {
    const id = this.sessionId;
    if (!id) return;
    await this.requireApi().deleteSession(id);
    if (this.sessionId === id) this.clear();
  }

  dispose(): void {
    this.generation++;
    this.stopStream();
    if (this.changesTimer) clearTimeout(this.changesTimer);
    this.listeners.clear();
  }

  private followStream(sessionId: string): void {
    const api = this.requireApi();
    const stream: StreamClient = new StreamClient({
      ...this.options.stream,
      sessionId,
      log: this.options.log ?? silentLogger,
      async connectUrl(after) {
        const { ticket } = await api.streamTicket(sessionId);
        return api.streamUrl(sessionId, ticket, after);
      },
      isPermanentError: (err) => err instanceof ApiError && err.isPermanent,
      onEvent: (event) => {
        if (this.stream !== stream) return;
        this.dispatch({ type: 'event', event });
        this.followChanges(event);
      },
      onConnectionState: (connection) => this.stream === stream && this.dispatch({ type: 'connection', connection }),
      onFatal: (err) => {
        if (this.stream !== stream) return;
        this.stream = null;
        this.dispatch({ type: 'stream_failed', error: toErrorInfo(err) });
      },
    });
    this.stream = stream;
    stream.start();
  }

  /** A checkpoint the summary does not include yet: ask the server for the new cumulative summary. */
  private followChanges(event: StreamEvent): void {
    if (event.type !== 'changes') return;
    if (this.changesTimer) clearTimeout(this.changesTimer);
    this.changesTimer = null;
    // Replayed on reopen, the last checkpoint is the one the snapshot's summary already includes.
    if (this.machine.session?.changes?.head === event.data.head) return;
    this.changesTimer = setTimeout(() => {
      this.changesTimer = null;
      void this.refreshChanges();
    }, CHANGES_REFRESH_DELAY_MS);
  }

  private stopStream(): void {
    const stream = this.stream;
    this.stream = null;
    stream?.stop();
  }

  private requireApi(): ApiClient {
    if (!this.api) throw new Error('Not connected to a Berth server. Run "Berth: Sign In" or start the local server.');
    return this.api;
  }

  private dispatch(action: SessionAction): void {
    const next = reduce(this.machine, action);
    if (next === this.machine) return;
    this.machine = next;
    for (const listener of this.listeners) {
      try {
        listener(next);
      } catch (err) {
        (this.options.log ?? silentLogger).error(`state listener failed: ${errorMessage(err)}`);
      }
    }
  }
}

export function toErrorInfo(err: unknown): ShownError {
  if (err instanceof ApiError) return { code: err.code, message: err.message };
  return { code: 'client_error', message: errorMessage(err) };
}
