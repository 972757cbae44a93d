// HTTP client of the Berth server (axios). Every response is parsed with the protocol's schemas,
// and every failure becomes an ApiError that never carries the token or request headers.
import axios, { AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import {
  ApiError,
  ApiErrorBody,
  ChangesResponse,
  CredentialListResponse,
  CredentialView,
  ModelsResponse,
  PushResponse,
  SecretListResponse,
  SecretView,
  SendMessageResponse,
  SessionListResponse,
  SessionView,
  StartSessionResponse,
  StopSessionResponse,
  StreamTicketResponse,
  type PutCredentialRequest,
  type PutSecretRequest,
  type StartSessionRequest,
} from '@berth/protocol';

/** A range of the session's checkpoints; each end defaults to the server's (base → head). */
export interface CommitRange {
  from?: string;
  to?: string;
}

type ResponseType = 'json' | 'text' | 'arraybuffer' | 'stream';

/** How long a push or a bundle download may take (they move a whole branch). */
const TRANSFER_TIMEOUT_MS = 10 * 60_000;

export interface ServerConnection {
  /** e.g. `http://127.0.0.1:4711` (no trailing slash needed). */
  baseUrl: string;
  token: string;
}

export { ApiError };

export class ApiClient {
  private readonly http: AxiosInstance;

  constructor(readonly connection: ServerConnection, options: { timeoutMs?: number } = {}) {
    this.http = axios.create({
      baseURL: connection.baseUrl.replace(/\/+$/, ''),
      timeout: options.timeoutMs ?? 30_000,
      headers: { Authorization: `Bearer ${connection.token}` },
      // Never follow redirects with the bearer token to somewhere else.
      maxRedirects: 0,
      // Status handling is ours (ApiError), and responses are parsed by schema below.
      validateStatus: () => true,
      proxy: false,
    });
  }

  /** The fast path: 202 with the new id while preparation runs in the background. */
  startSession(request: StartSessionRequest): Promise<StartSessionResponse> {
    return this.call('POST', '/v1/sessions', StartSessionResponse, request, { timeoutMs: 0 });
  }

  async listSessions(): Promise<SessionView[]> {
    return (await this.call('GET', '/v1/sessions', SessionListResponse)).sessions;
  }

  getSession(id: string): Promise<SessionView> {
    return this.call('GET', `/v1/sessions/${encodeURIComponent(id)}`, SessionView);
  }

  sendMessage(id: string, text: string): Promise<SendMessageResponse> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/messages`, SendMessageResponse, { text });
  }

  /** The models a start may choose (none for a server whose agent is a command). */
  models(): Promise<ModelsResponse> {
    return this.call('GET', '/v1/models', ModelsResponse);
  }

  /** Cancels a message that still waits in the session's queue. */
  async cancelQueuedMessage(id: string, turnId: string): Promise<void> {
    await this.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}/messages/${encodeURIComponent(turnId)}`, null);
  }

  async retry(id: string): Promise<void> {
    await this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/retry`, null);
  }

  async interrupt(id: string): Promise<void> {
    await this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/interrupt`, null);
  }

  async deleteSession(id: string): Promise<void> {
    await this.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}`, null);
  }

  async preparationLog(id: string): Promise<string> {
    const res = await this.send('GET', `/v1/sessions/${encodeURIComponent(id)}/log`, undefined, { responseType: 'text' });
    return typeof res.data === 'string' ? res.data : String(res.data ?? '');
  }

  /** Stops the sandbox after a last checkpoint; the session is kept (sleeping) and the next message resumes it. */
  stopSession(id: string): Promise<StopSessionResponse> {
    return this.call('POST', `${sessionPath(id)}/stop`, StopSessionResponse);
  }

  /** The files changed in a range of checkpoints (default: base → head), and the list of checkpoints. */
  getChanges(id: string, range: CommitRange = {}): Promise<ChangesResponse> {
    return this.call('GET', `${sessionPath(id)}/changes${query({ from: range.from, to: range.to })}`, ChangesResponse);
  }

  /** A unified diff (`git diff --binary`), appliable with `git apply`. */
  async getDiff(id: string, range: CommitRange & { path?: string } = {}): Promise<string> {
    const res = await this.send('GET', `${sessionPath(id)}/diff${query({ from: range.from, to: range.to, path: range.path })}`, undefined, { responseType: 'text' });
    return typeof res.data === 'string' ? res.data : String(res.data ?? '');
  }

  /** The bytes of `path` at commit `ref` (the base or a checkpoint); an ApiError 404 when the file is absent there. */
  async getContent(id: string, ref: string, path: string): Promise<Uint8Array> {
    const res = await this.send('GET', `${sessionPath(id)}/content${query({ ref, path })}`, undefined, { responseType: 'arraybuffer' });
    return toBytes(res.data);
  }

  /** Downloads the git bundle of base..head (one ref: `refs/heads/<branch>`) into `file`; returns its size. */
  async downloadBundle(id: string, file: string): Promise<number> {
    const res = await this.send('GET', `${sessionPath(id)}/bundle`, undefined, { responseType: 'stream', timeout: TRANSFER_TIMEOUT_MS });
    let size = 0;
    const body = res.data as Readable;
    body.on('data', (chunk: Buffer) => (size += chunk.length));
    try {
      await pipeline(body, createWriteStream(file, { mode: 0o600 }));
    } catch {
      await rm(file, { force: true });
      throw new ApiError(0, 'network', 'The download of the session\'s changes was interrupted');
    }
    return size;
  }

  /** Pushes the session's work branch (or `branch`) to the repository's remote. */
  push(id: string, branch?: string): Promise<PushResponse> {
    return this.call('POST', `${sessionPath(id)}/push`, PushResponse, branch ? { branch } : {}, { timeoutMs: TRANSFER_TIMEOUT_MS });
  }

  // ---- the user's git credentials and session secrets (answers never carry a token or a value) ----

  /** Stores (or replaces) the credential the server uses for https/http repositories on `host` (`host[:port]`). */
  putCredential(host: string, request: PutCredentialRequest): Promise<CredentialView> {
    return this.call('PUT', credentialPath(host), CredentialView, request);
  }

  async listCredentials(): Promise<CredentialView[]> {
    return (await this.call('GET', '/v1/credentials', CredentialListResponse)).credentials;
  }

  /** An ApiError 404 when there is no credential for `host`. */
  async deleteCredential(host: string): Promise<void> {
    await this.call('DELETE', credentialPath(host), null);
  }

  /** Stores (or replaces) a secret: for all of the user's sessions, or (`repo`) for one repository's. */
  putSecret(name: string, request: PutSecretRequest): Promise<SecretView> {
    return this.call('PUT', secretPath(name), SecretView, request);
  }

  async listSecrets(): Promise<SecretView[]> {
    return (await this.call('GET', '/v1/secrets', SecretListResponse)).secrets;
  }

  /** Removes the secret of that name for all sessions, or (`repo`) the one scoped to that repository; an ApiError 404 when there is none. */
  async deleteSecret(name: string, repo?: string | null): Promise<void> {
    await this.call('DELETE', `${secretPath(name)}${query({ repo: repo ?? undefined })}`, null);
  }

  streamTicket(id: string, purpose: 'stream' | 'terminal' = 'stream'): Promise<StreamTicketResponse> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/${purpose}-ticket`, StreamTicketResponse);
  }

  /** The WebSocket URL of a session's stream (the ticket, not the token, authenticates it). */
  streamUrl(id: string, ticket: string, after: number): string {
    return this.socketUrl(id, 'stream', { ticket, after: String(after) });
  }

  /** The WebSocket URL of a terminal in the session's sandbox (a terminal ticket authenticates it). */
  terminalUrl(id: string, ticket: string, size: { cols: number; rows: number }): string {
    return this.socketUrl(id, 'terminal', { ticket, cols: String(size.cols), rows: String(size.rows) });
  }

  private socketUrl(id: string, what: 'stream' | 'terminal', query: Record<string, string>): string {
    const url = new URL(`${this.http.defaults.baseURL}/v1/sessions/${encodeURIComponent(id)}/${what}`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    return url.toString();
  }

  /** The WebSocket URL of the user's own stream (every session's status), with a fresh ticket. */
  async userStreamUrl(): Promise<string> {
    const { ticket } = await this.call('POST', '/v1/stream-ticket', StreamTicketResponse);
    const url = new URL(`${this.http.defaults.baseURL}/v1/stream`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('ticket', ticket);
    return url.toString();
  }

  /** Re-creates a sleeping session's sandbox (without a message); other statuses are answered as they are. */
  wake(id: string): Promise<StartSessionResponse> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/wake`, StartSessionResponse);
  }

  private async call<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
    options?: { timeoutMs?: number },
  ): Promise<z.infer<S>>;
  private async call(method: string, path: string, schema: null, body?: unknown): Promise<void>;
  private async call(
    method: string,
    path: string,
    schema: z.ZodType | null,
    body?: unknown,
    options: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    const res = await this.send(method, path, body, options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {});
    if (!schema) return undefined;
    const parsed = schema.safeParse(res.data);
    if (!parsed.success) {
      throw new ApiError(res.status, 'invalid_response', `Unexpected response from ${method} ${path}`);
    }
    return parsed.data;
  }

  private async send(method: string, path: string, body: unknown, extra: { timeout?: number; responseType?: ResponseType } = {}): Promise<AxiosResponse> {
    let res: AxiosResponse;
    try {
      res = await this.http.request({
        method,
        url: path,
        data: body,
        // axios labels a bodyless POST as a form; the server rightly refuses that media type.
        ...(body === undefined ? { headers: { 'Content-Type': false } } : {}),
        ...extra,
      });
    } catch (err) {
      // AxiosError holds the request config (and with it the Authorization header): keep only the reason.
      const reason = err instanceof AxiosError ? (err.code ?? 'request failed') : 'request failed';
      throw new ApiError(0, 'network', `Cannot reach the Berth server (${reason})`);
    }
    if (res.status >= 200 && res.status < 300) return res;
    const parsed = ApiErrorBody.safeParse(await errorBody(res.data));
    if (parsed.success) throw new ApiError(res.status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.details);
    throw new ApiError(res.status, 'http_error', `${method} ${path} failed with HTTP ${res.status}`);
  }
}

function sessionPath(id: string): string {
  return `/v1/sessions/${encodeURIComponent(id)}`;
}

function credentialPath(host: string): string {
  return `/v1/credentials/${encodeURIComponent(host)}`;
}

function secretPath(name: string): string {
  return `/v1/secrets/${encodeURIComponent(name)}`;
}

function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : '';
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof data === 'string') return Buffer.from(data);
  return new Uint8Array();
}

/** An error answer as JSON, whatever the response type asked for (text, bytes or a stream). */
async function errorBody(data: unknown): Promise<unknown> {
  if (typeof data === 'string') return safeJson(data);
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) return safeJson(Buffer.from(toBytes(data)).toString('utf8'));
  if (data && typeof (data as Readable).pipe === 'function') {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of data as Readable) {
        chunks.push(chunk as Buffer);
        size += (chunk as Buffer).length;
        if (size > 64 * 1024) break; // an error body is small; never buffer a runaway one
      }
    } catch {
      return undefined;
    }
    return safeJson(Buffer.concat(chunks).toString('utf8'));
  }
  return data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
