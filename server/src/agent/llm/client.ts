import { STATUS_CODES } from 'node:http';
import { Redactor, type TokenUsage } from '@berth/protocol';
import { retryAfterMs } from './retry';
import { SseParser, type SseEvent } from './sse';
import { LlmError, type ChatMessage, type Completion, type ToolCall, type ToolSpec } from './types';
import { ChatCompletion, ChatCompletionChunk, ErrorEnvelope, ErrorFields, Malformed, wireText, type ToolCallDelta } from './wire';

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

/** JSON text as a value; undefined when it is not JSON (JSON itself has no undefined). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** `value[key]` when `value` is an object, else undefined: for what fetch rejects with, Errors rather than data. */
function property(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
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
      // Usage comes in a last chunk only when asked for; endpoints that do not know the option ignore it.
      const body: Record<string, unknown> = { model: this.options.model, messages, stream: true, stream_options: { include_usage: true } };
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

  private parseChunk(data: string): ChatCompletionChunk {
    const chunk = ChatCompletionChunk.safeParse(parseJson(data));
    if (!chunk.success) throw this.badStream(`a data line is not a JSON object: ${JSON.stringify(this.scrub(data.slice(0, 80)))}`);
    return chunk.data;
  }

  badStream(what: string): LlmError {
    return new LlmError('llm_bad_stream', `the model endpoint ${this.endpoint} sent a malformed answer: ${what}`);
  }

  private streamError(error: unknown): LlmError {
    // An object's message (else the whole error as JSON); anything else is the message itself.
    const e = typeof error === 'object' && error !== null ? ErrorFields.safeParse(error).data : undefined;
    const status = Number(e?.code ?? e?.status);
    const detail = this.scrub(wireText(e ? (e.message ?? JSON.stringify(error)) : error).slice(0, 300));
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
        const e = ErrorEnvelope.safeParse(json).data?.error ?? json;
        const fields = ErrorFields.safeParse(e).data;
        detail = typeof e === 'string' ? e : wireText(fields?.message ?? fields?.detail ?? e);
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
    // undici: a TypeError whose cause is the system error, or an AggregateError of several (happy eyeballs).
    const cause = property(err, 'cause');
    const code = property(cause, 'code') ?? property(property(property(cause, 'errors'), '0'), 'code') ?? property(err, 'code');
    const at = `could not reach the model endpoint ${this.endpoint}`;
    switch (code) {
      case 'ECONNREFUSED':
        return new LlmError('llm_unreachable', `${at}: connection refused (is the server running and the base URL right?)`);
      case 'ENOTFOUND':
        return new LlmError('llm_unreachable', `${at}: the host name does not resolve`);
      default: {
        const what = code ?? this.scrub(wireText(property(cause, 'message') ?? (err instanceof Error ? err.message : String(err))));
        return new LlmError('llm_unreachable', `${at}: ${wireText(what)}`, typeof code === 'string' && RETRYABLE_NET.has(code));
      }
    }
  }

  private fromJson(json: unknown, onText: (delta: string) => void): Completion {
    const error = ErrorEnvelope.safeParse(json).data?.error;
    if (error !== undefined) throw this.streamError(error);
    const answer = ChatCompletion.safeParse(json);
    if (!answer.success) throw this.badStream('the answer has no choices[0].message');
    const [choice] = answer.data.choices;
    const text = choice.message.content ?? '';
    if (text) onText(text);
    const toolCalls: ToolCall[] = (choice.message.tool_calls ?? []).map((c, i) => {
      const name = c?.function?.name;
      const args = c?.function?.arguments;
      return {
        id: c?.id || `call_${i}`,
        type: 'function' as const,
        function: { name: name === undefined || name === null ? '' : wireText(name), arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) },
      };
    });
    const finish = choice.finish_reason;
    const usage = tokenUsage(answer.data.usage);
    return { text, toolCalls, finishReason: finish === undefined || finish === null ? 'stop' : wireText(finish), ...(usage ? { usage } : {}) };
  }
}

/** Puts one answer together from its deltas: text in order, tool calls by index. */
class Assembler {
  text = '';
  finishReason: string | null = null;
  sawDone = false;
  usage: TokenUsage | undefined;
  private calls: { id: string; name: string; args: string }[] = [];

  constructor(private readonly client: LlmClient) {}

  apply(chunk: ChatCompletionChunk, onText: (delta: string) => void): void {
    this.usage = tokenUsage(chunk.usage) ?? this.usage;
    const choice = chunk.choices?.[0];
    if (!choice) return; // e.g. a usage-only chunk
    const delta = choice.delta ?? choice.message;
    if (delta?.content) {
      this.text += delta.content;
      onText(delta.content);
    }
    const calls = delta?.tool_calls;
    if (calls instanceof Malformed) throw this.client.badStream(calls.what);
    for (const d of calls ?? []) this.applyToolDelta(d);
    if (choice.finish_reason) this.finishReason = wireText(choice.finish_reason);
  }

  private applyToolDelta(d: ToolCallDelta): void {
    let slot: { id: string; name: string; args: string } | undefined;
    if (d.index !== undefined) {
      slot = this.calls[d.index];
      if (!slot) slot = this.calls[d.index] = { id: '', name: '', args: '' };
    } else {
      // Some servers leave out `index`: a new id starts a new call, no id continues the last one.
      slot = d.id ? this.calls.find((c) => c.id === d.id) : this.calls.at(-1);
      if (!slot) this.calls.push((slot = { id: '', name: '', args: '' }));
    }
    if (d.id) slot.id = d.id;
    const name = d.function?.name;
    const args = d.function?.arguments;
    if (typeof name === 'string' && name && slot.name !== name) slot.name += name;
    if (typeof args === 'string') slot.args += args;
    else if (args && typeof args === 'object') slot.args += JSON.stringify(args);
  }

  result(): Completion {
    const toolCalls: ToolCall[] = this.calls
      .filter((c) => c !== undefined)
      .map((c, i) => ({ id: c.id || `call_${i}_${Date.now().toString(36)}`, type: 'function', function: { name: c.name, arguments: c.args } }));
    for (const call of toolCalls) if (!call.function.name) throw this.client.badStream('a tool call has no function name');
    return { text: this.text, toolCalls, finishReason: this.finishReason, ...(this.usage ? { usage: this.usage } : {}) };
  }
}

function tokenUsage(usage: { prompt_tokens: number; completion_tokens: number } | undefined): TokenUsage | undefined {
  return usage ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } : undefined;
}
