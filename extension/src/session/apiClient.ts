// HTTP client of the Berth server (axios). Every response is parsed with the protocol's schemas,
// and every failure becomes an ApiError that never carries the token or request headers.
import axios, { AxiosError, type AxiosInstance } from 'axios';
import type { z } from 'zod';
import {
  ApiErrorBody,
  SendMessageResponse,
  SessionListResponse,
  SessionView,
  StartSessionResponse,
  StreamTicketResponse,
  type StartSessionRequest,
} from '@berth/protocol';

export interface ServerConnection {
  /** e.g. `http://127.0.0.1:4711` (no trailing slash needed). */
  baseUrl: string;
  token: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    /** The server's error code, or `network` / `invalid_response` for failures before a valid answer. */
    readonly code: string,
    /** HTTP status, or 0 when no response arrived. */
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Errors no retry can fix (the session is gone or the credentials are wrong). */
  get isPermanent(): boolean {
    return this.status === 401 || this.status === 403 || this.status === 404;
  }
}

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

  streamTicket(id: string): Promise<StreamTicketResponse> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/stream-ticket`, StreamTicketResponse);
  }

  /** The WebSocket URL of a session's stream (the ticket, not the token, authenticates it). */
  streamUrl(id: string, ticket: string, after: number): string {
    const url = new URL(`${this.http.defaults.baseURL}/v1/sessions/${encodeURIComponent(id)}/stream`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('ticket', ticket);
    url.searchParams.set('after', String(after));
    return url.toString();
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
      throw new ApiError(`Unexpected response from ${method} ${path}`, 'invalid_response', res.status);
    }
    return parsed.data;
  }

  private async send(method: string, path: string, body: unknown, extra: { timeout?: number; responseType?: 'text' } = {}) {
    let res;
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
      throw new ApiError(`Cannot reach the Berth server (${reason})`, 'network', 0);
    }
    if (res.status >= 200 && res.status < 300) return res;
    const parsed = ApiErrorBody.safeParse(typeof res.data === 'string' ? safeJson(res.data) : res.data);
    if (parsed.success) throw new ApiError(parsed.data.error.message, parsed.data.error.code, res.status);
    throw new ApiError(`${method} ${path} failed with HTTP ${res.status}`, 'http_error', res.status);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
