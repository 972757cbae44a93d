import { STATUS_CODES } from 'node:http';
import { Redactor } from '@berth/protocol';
import { retryAfterMs } from './retry';
import { SseParser, type SseEvent } from './sse';
import { LlmError, type ChatMessage, type Completion, type ToolCall, type ToolSpec } from './types';
import { FetchFailure, WireChunk, WireError, WireToolCall, firstChoice, wireText } from './wire';

export interface LlmClientOptions {
  /** e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1 */
  baseUrl: string;
  model: string;
  apiKey: string | null;
  /** No answer headers, or no stream data, for this long: the request fails. */
  requestTimeoutMs: number;
}

/** A request the endpoint accepted (200 and the stream began); `read` streams the rest of the answer. */
export interface OpenCompletion {
  read(onText: (delta: string) => void): Promise<Completion>;
}

const MAX_ERROR_BODY = 64 * 1024;
const RETRYABLE_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529]);
const RETRYABLE_NET = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'EAI_AGAIN']);

function statusLine(status: number): string {
  const text = STATUS_CODES[status];
  return text ? `${status} ${text}` : String(status);
}

/** One chat completions endpoint. Every message it produces is free of the API key. */
export class LlmClient {
  readonly endpoint: string;
  private readonly url: string;

  private readonly redactor: Redactor;

  constructor(private readonly options: LlmClientOptions) {
    this.redactor = new Redactor([options.apiKey]);
    this.url = options.baseUrl.replace(/\/+$/, '') + '/chat/completions';
    this.endpoint = this.scrub(this.url);
  }

  /** Removes the API key and URL credentials from text meant for users. */
  scrub(text: string): string {
    return this.redactor.redact(text);
  }

  /**
   * Sends one request. Resolves once the endpoint accepted it: status 200 and the first event of
   * the stream arrived. Rejects with an LlmError (retryable or not), or with the signal's reason.
   */
  async open(messages: ChatMessage[], tools: ToolSpec[], signal: AbortSignal): Promise<OpenCompletion> {
    const ctrl = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        ctrl.abort();
      }, this.options.requestTimeoutMs);
    };
    const onAbort = () => ctrl.abort(signal.reason);
    if (signal.aborted) throw signal.reason;
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const failure = (err: unknown): unknown => {
      if (signal.aborted) return signal.reason;
      if (timedOut) {
        return new LlmError(
          'llm_timeout',
          `the model endpoint ${this.endpoint} sent nothing for ${Math.round(this.options.requestTimeoutMs / 1000)} s`,
          false,
        );
      }
      if (err instanceof LlmError) return err;
      return this.networkError(err);
    };

    arm();
    let res: Response;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream, application/json' };
      if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
      const body: Record<string, unknown> = { model: this.options.model, messages, stream: true };
      if (tools.length) body.tools = tools;
      res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(body), signal: ctrl.signal });
    } catch (err) {
      done();
      throw failure(err);
    }

    try {
      if (res.status !== 200) throw await this.httpError(res);
      const type = res.headers.get('content-type') ?? '';
      if (type.includes('json')) {
        // An endpoint that ignores `stream: true`: one JSON answer.
        arm();
        const json: unknown = await res.json().catch(() => {
          throw this.badStream('the answer is not valid JSON');
        });
        done();
        return { read: async (onText) => this.fromJson(json, onText) };
      }
      if (!res.body) throw this.badStream('the answer has no body');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SseParser();
      const queue: SseEvent[] = [];
      let ended = false;
      const fill = async (): Promise<boolean> => {
        while (queue.length === 0 && !ended) {
          arm();
          const { value, done: eof } = await reader.read();
          if (eof) {
            ended = true;
            queue.push(...parser.push(decoder.decode()), ...parser.end());
          } else queue.push(...parser.push(decoder.decode(value, { stream: true })));
        }
        return queue.length > 0;
      };
      // Accepted only once the stream really began; an error as its first event is a failed request.
      if (!(await fill())) throw this.badStream('the stream ended before any data');
      const first = queue[0]!;
      if (first.data !== '[DONE]') {
        const parsed = this.parseChunk(first.data);
        if (parsed.error !== undefined) throw this.streamError(parsed.error);
      }
      const assembler = new Assembler(this);
      return {
        read: async (onText) => {
          try {
            while (await fill()) {
              const event = queue.shift()!;
              if (event.data === '[DONE]') {
                assembler.sawDone = true;
                break;
              }
              const chunk = this.parseChunk(event.data);
              if (chunk.error !== undefined) throw this.streamError(chunk.error);
              assembler.apply(chunk, onText);
            }
            if (!assembler.sawDone && assembler.finishReason === null) {
              throw this.badStream('the stream ended before the answer was complete');
            }
            return assembler.result();
          } catch (err) {
            throw failure(err);
          } finally {
            done();
            reader.cancel().catch(() => {});
          }
        },
      };
    } catch (err) {
      done();
      res.body?.cancel().catch(() => {});
      throw failure(err);
    }
  }

  private parseChunk(data: string): WireChunk {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      value = undefined;
    }
    const chunk = WireChunk.safeParse(value);
    if (!chunk.success) throw this.badStream(`a data line is not a JSON object: ${JSON.stringify(this.scrub(data.slice(0, 80)))}`);
    return chunk.data;
  }

  badStream(what: string): LlmError {
    return new LlmError('llm_bad_stream', `the model endpoint ${this.endpoint} sent a malformed answer: ${what}`);
  }

  private streamError(error: unknown): LlmError {
    const parsed = WireError.safeParse(error);
    const e = parsed.success ? parsed.data : { message: wireText(error), code: undefined, status: undefined };
    const status = Number(e.code ?? e.status);
    const detail = this.scrub(wireText(e.message ?? error).slice(0, 300));
    if (status === 429 || (status >= 500 && status < 600)) {
      return new LlmError(status === 429 ? 'llm_rate_limited' : 'llm_server_error', `the model endpoint ${this.endpoint} failed (${statusLine(status)}): ${detail}`, true, null, status);
    }
    return new LlmError('llm_stream_error', `the model endpoint ${this.endpoint} reported an error: ${detail}`);
  }

  private async httpError(res: Response): Promise<LlmError> {
    let detail = '';
    try {
      const text = (await res.text()).slice(0, MAX_ERROR_BODY);
      try {
        const json: unknown = JSON.parse(text);
        const body = WireChunk.safeParse(json);
        const e = body.success && body.data.error !== undefined && body.data.error !== null ? body.data.error : json;
        const fields = WireError.safeParse(e);
        detail = typeof e === 'string' ? e : wireText((fields.success ? (fields.data.message ?? fields.data.detail) : undefined) ?? e);
      } catch {
        detail = text;
      }
    } catch {
      /* no body */
    }
    detail = this.scrub(detail.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()).slice(0, 300);
    const s = res.status;
    const line = statusLine(s);
    const suffix = detail ? `: ${detail}` : '';
    const at = `the model endpoint ${this.endpoint}`;
    const retryAfter = s === 429 || s >= 500 ? retryAfterMs(res.headers) : null;
    if (s === 401 || s === 403) {
      const hint = this.options.apiKey ? 'check the API key (BERTH_LLM_API_KEY)' : 'no API key is configured: set BERTH_LLM_API_KEY';
      return new LlmError('llm_auth', `${at} refused the request (${line})${suffix}; ${hint}`, false, null, s);
    }
    if (s === 429) return new LlmError('llm_rate_limited', `${at} is rate limiting requests (${line})${suffix}`, true, retryAfter, s);
    if (RETRYABLE_STATUS.has(s) || s >= 500) return new LlmError('llm_server_error', `${at} failed (${line})${suffix}`, true, retryAfter, s);
    if (s === 404) {
      return new LlmError('llm_not_found', `${at} answered ${line}${suffix}; check the base URL (it usually ends in /v1) and the model name "${this.options.model}"`, false, null, s);
    }
    return new LlmError('llm_request_rejected', `${at} rejected the request (${line})${suffix}`, false, null, s);
  }

  private networkError(err: unknown): LlmError {
    const failed = FetchFailure.safeParse(err);
    const cause = failed.success ? failed.data.cause : undefined;
    const code: string | undefined = cause?.code ?? cause?.errors?.[0]?.code ?? (failed.success ? failed.data.code : undefined);
    const at = `could not reach the model endpoint ${this.endpoint}`;
    switch (code) {
      case 'ECONNREFUSED':
        return new LlmError('llm_unreachable', `${at}: connection refused (is the server running and the base URL right?)`);
      case 'ENOTFOUND':
        return new LlmError('llm_unreachable', `${at}: the host name does not resolve`);
      default: {
        const what = code ?? this.scrub(cause?.message ?? (err instanceof Error ? err.message : String(err)));
        return new LlmError('llm_unreachable', `${at}: ${what}`, code !== undefined && RETRYABLE_NET.has(code));
      }
    }
  }

  private fromJson(json: unknown, onText: (delta: string) => void): Completion {
    const answer = WireChunk.safeParse(json);
    if (answer.success && answer.data.error !== undefined) throw this.streamError(answer.data.error);
    const choice = answer.success ? firstChoice(answer.data) : undefined;
    const message = choice?.message;
    if (!choice || !message) throw this.badStream('the answer has no choices[0].message');
    const text = typeof message.content === 'string' ? message.content : '';
    if (text) onText(text);
    const calls: unknown[] = Array.isArray(message.tool_calls) ? message.tool_calls : [];
    const toolCalls: ToolCall[] = calls.map((raw, i) => {
      const parsed = WireToolCall.safeParse(raw);
      const call = parsed.success ? parsed.data : undefined;
      const fn = call?.function;
      return {
        id: typeof call?.id === 'string' && call.id ? call.id : `call_${i}`,
        type: 'function' as const,
        function: {
          name: fn?.name === undefined || fn.name === null ? '' : wireText(fn.name),
          arguments: typeof fn?.arguments === 'string' ? fn.arguments : JSON.stringify(fn?.arguments ?? {}),
        },
      };
    });
    return { text, toolCalls, finishReason: choice.finish_reason === undefined || choice.finish_reason === null ? 'stop' : wireText(choice.finish_reason) };
  }
}

/** Puts one answer together from its deltas: text in order, tool calls by index. */
class Assembler {
  text = '';
  finishReason: string | null = null;
  sawDone = false;
  private calls: { id: string; name: string; args: string }[] = [];

  constructor(private readonly client: LlmClient) {}

  apply(chunk: WireChunk, onText: (delta: string) => void): void {
    const choice = firstChoice(chunk);
    if (!choice) return; // e.g. a usage-only chunk
    const delta = choice.delta ?? choice.message ?? { content: undefined, tool_calls: undefined };
    if (typeof delta.content === 'string' && delta.content) {
      this.text += delta.content;
      onText(delta.content);
    }
    if (delta.tool_calls !== undefined && delta.tool_calls !== null) {
      if (!Array.isArray(delta.tool_calls)) throw this.client.badStream('tool_calls is not an array');
      for (const d of delta.tool_calls as unknown[]) this.applyToolDelta(d);
    }
    if (choice.finish_reason) this.finishReason = wireText(choice.finish_reason);
  }

  private applyToolDelta(raw: unknown): void {
    const parsed = raw && typeof raw === 'object' ? WireToolCall.safeParse(raw) : null;
    if (!parsed?.success) throw this.client.badStream('a tool_calls entry is not an object');
    const d = parsed.data;
    let slot: { id: string; name: string; args: string } | undefined;
    if (typeof d.index === 'number' && Number.isInteger(d.index)) {
      slot = this.calls[d.index];
      if (!slot) slot = this.calls[d.index] = { id: '', name: '', args: '' };
    } else {
      // Some servers leave out `index`: a new id starts a new call, no id continues the last one.
      slot = typeof d.id === 'string' && d.id ? this.calls.find((c) => c.id === d.id) : this.calls.at(-1);
      if (!slot) this.calls.push((slot = { id: '', name: '', args: '' }));
    }
    if (typeof d.id === 'string' && d.id) slot.id = d.id;
    const fn = d.function ?? { name: undefined, arguments: undefined };
    if (typeof fn.name === 'string' && fn.name && slot.name !== fn.name) slot.name += fn.name;
    if (typeof fn.arguments === 'string') slot.args += fn.arguments;
    else if (fn.arguments && typeof fn.arguments === 'object') slot.args += JSON.stringify(fn.arguments);
  }

  result(): Completion {
    const toolCalls: ToolCall[] = this.calls
      .filter((c) => c !== undefined)
      .map((c, i) => ({ id: c.id || `call_${i}_${Date.now().toString(36)}`, type: 'function', function: { name: c.name, arguments: c.args } }));
    for (const call of toolCalls) if (!call.function.name) throw this.client.badStream('a tool call has no function name');
    return { text: this.text, toolCalls, finishReason: this.finishReason };
  }
}
