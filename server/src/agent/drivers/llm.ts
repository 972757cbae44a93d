import type { HostSecrets, TokenUsage, TranscriptEntry } from '@berth/protocol';
import type { AgentDriver, TurnInput, TurnIO, TurnOutcome } from '../driver';
import { LlmClient } from '../llm/client';
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from '../llm/retry';
import { LlmError, type ChatMessage, type Completion, type ToolSpec } from '../llm/types';
import { DEFAULT_TOOL_LIMITS, runTool, toolSpecs, type ToolLimits } from '../tools';

export interface LlmDriverOptions {
  baseUrl: string;
  model: string;
  apiKey: string | null;
  /** Rounds of tool calls in one turn; the model asking for more ends the turn with an error. */
  maxToolRounds: number;
  /** Wall time of one turn, tools included. */
  maxTurnMs: number;
  /** No answer headers or stream data for this long: the request fails. */
  requestTimeoutMs: number;
  retry: RetryPolicy;
  tools: ToolLimits;
  systemPrompt: string;
}

export const DEFAULT_SYSTEM_PROMPT = [
  'You are a coding agent working in a git repository (the workspace). Use the tools to explore the files,',
  'make changes and run commands such as builds and tests. Paths are relative to the workspace root.',
  'Read a file before editing it; prefer edit_file for small changes and write_file for new files.',
  'Check your work by running commands when that makes sense. When you are done, answer briefly with',
  'what you did (or what you found), in Markdown.',
].join(' ');

export const LLM_DEFAULTS = {
  maxToolRounds: 50,
  maxTurnMs: 30 * 60_000,
  requestTimeoutMs: 120_000,
};

/** The agent host's command-line options of this driver (spread into main.ts's parseArgs). */
export const LLM_OPTIONS = {
  'llm-base-url': { type: 'string' },
  'llm-model': { type: 'string' },
  'max-tool-rounds': { type: 'string' },
  'max-turn-seconds': { type: 'string' },
  'command-timeout-seconds': { type: 'string' },
  'llm-request-timeout-seconds': { type: 'string' },
  'llm-max-retries': { type: 'string' },
  'llm-retry-base-ms': { type: 'string' },
} as const;

type LlmArgValues = { [K in keyof typeof LLM_OPTIONS]?: string | undefined };

function numberOption(values: LlmArgValues, name: keyof typeof LLM_OPTIONS, fallback: number, scale = 1): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n * scale;
}

/**
 * Builds the driver from the agent host's options. The API key is not among them: it arrives
 * later on stdin (the `init` command, see configure), so it is never in argv or the environment.
 */
export function createLlmDriver(values: LlmArgValues): LlmDriver {
  const baseUrl = values['llm-base-url'];
  const model = values['llm-model'];
  if (!baseUrl) throw new Error('--driver llm needs --llm-base-url');
  if (!model) throw new Error('--driver llm needs --llm-model');
  if (!/^https?:\/\//i.test(baseUrl)) throw new Error('--llm-base-url must be an http:// or https:// URL');
  const commandTimeoutMs = numberOption(values, 'command-timeout-seconds', DEFAULT_TOOL_LIMITS.commandTimeoutMs, 1000);
  return new LlmDriver({
    baseUrl,
    model,
    apiKey: null,
    maxToolRounds: Math.floor(numberOption(values, 'max-tool-rounds', LLM_DEFAULTS.maxToolRounds)),
    maxTurnMs: numberOption(values, 'max-turn-seconds', LLM_DEFAULTS.maxTurnMs, 1000),
    requestTimeoutMs: numberOption(values, 'llm-request-timeout-seconds', LLM_DEFAULTS.requestTimeoutMs, 1000),
    retry: {
      ...DEFAULT_RETRY,
      maxRetries: Math.floor(numberOption(values, 'llm-max-retries', DEFAULT_RETRY.maxRetries)),
      baseDelayMs: numberOption(values, 'llm-retry-base-ms', DEFAULT_RETRY.baseDelayMs),
    },
    tools: {
      ...DEFAULT_TOOL_LIMITS,
      commandTimeoutMs,
      commandMaxTimeoutMs: Math.max(commandTimeoutMs, DEFAULT_TOOL_LIMITS.commandMaxTimeoutMs),
    },
    systemPrompt: DEFAULT_SYSTEM_PROMPT,
  });
}

/** The conversation sent to the model: the system prompt, earlier turns as text, then the new message. */
export function conversation(systemPrompt: string, transcript: readonly TranscriptEntry[], text: string): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: systemPrompt }];
  const add = (role: 'user' | 'assistant', content: string) => {
    if (!content.trim()) return; // a turn that failed before any answer
    const last = messages[messages.length - 1]!;
    // Endpoints expect user and assistant to alternate: merge a run of one role.
    if (last.role === role) last.content = `${last.content}\n\n${content}`;
    else messages.push({ role, content });
  };
  for (const entry of transcript) add(entry.role, entry.text);
  add('user', text);
  return messages;
}

/**
 * A coding agent against any OpenAI-compatible chat completions endpoint (OpenAI, OpenRouter,
 * Ollama, LM Studio, vLLM…): streams the answer, runs the tools the model calls in the
 * workspace, and loops until the model answers without tools or a limit is reached.
 *
 * The turn counts as started (io.started) only once the endpoint accepted its first request,
 * after retries: a turn whose first request fails for good is reported as an error and never
 * started, so the server does not call the prompt accepted.
 */
export class LlmDriver implements AgentDriver {
  readonly name = 'llm';
  private client: LlmClient;
  private readonly specs: ToolSpec[] = toolSpecs();

  constructor(private options: LlmDriverOptions) {
    this.client = this.makeClient();
  }

  private makeClient(): LlmClient {
    const { baseUrl, model, apiKey, requestTimeoutMs } = this.options;
    return new LlmClient({ baseUrl, model, apiKey, requestTimeoutMs });
  }

  configure(secrets: HostSecrets): void {
    if (secrets.llmApiKey === undefined) return;
    this.options = { ...this.options, apiKey: secrets.llmApiKey };
    this.client = this.makeClient();
  }

  async runTurn(input: TurnInput, io: TurnIO, signal: AbortSignal): Promise<TurnOutcome> {
    const turn = new AbortController();
    let timedOut = false;
    const onAbort = () => turn.abort(signal.reason);
    if (signal.aborted) return { status: 'interrupted' };
    signal.addEventListener('abort', onAbort, { once: true });
    const wallTimer = setTimeout(() => {
      timedOut = true;
      turn.abort(new Error('turn time limit'));
    }, this.options.maxTurnMs);
    const spent: { usage?: TokenUsage } = {};
    const withUsage = (outcome: TurnOutcome): TurnOutcome => (spent.usage ? { ...outcome, usage: spent.usage } : outcome);
    try {
      return withUsage(await this.loop(input, io, turn.signal, () => (signal.aborted ? 'interrupted' : timedOut ? 'timeout' : null), spent));
    } catch (err) {
      if (signal.aborted) return withUsage({ status: 'interrupted' });
      if (timedOut) return withUsage(this.timeLimit(io));
      if (err instanceof LlmError) {
        io.error(err.code, this.client.scrub(err.message));
        return withUsage({ status: 'failed' });
      }
      throw new Error(this.client.scrub(err instanceof Error ? err.message : String(err)));
    } finally {
      clearTimeout(wallTimer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private timeLimit(io: TurnIO): TurnOutcome {
    io.error('turn_timeout', `the turn was stopped after ${Math.round(this.options.maxTurnMs / 1000)} s, the time limit of a turn`);
    return { status: 'failed' };
  }

  private async loop(
    input: TurnInput,
    io: TurnIO,
    signal: AbortSignal,
    stopped: () => 'interrupted' | 'timeout' | null,
    spent: { usage?: TokenUsage },
  ): Promise<TurnOutcome> {
    const messages = conversation(this.options.systemPrompt, input.transcript, input.text);
    let started = false;
    let answered = '';
    for (let round = 0; ; round++) {
      const open = await withRetries(
        this.options.retry,
        signal,
        () => this.client.open(messages, this.specs, signal),
        (err, delayMs, retry) =>
          io.log('warn', `${this.client.scrub(err.message)}; retrying in ${(delayMs / 1000).toFixed(1)} s (retry ${retry} of ${this.options.retry.maxRetries})`),
      );
      if (!started) {
        started = true;
        io.started();
      }
      let separated = round === 0 || answered === '' || answered.endsWith('\n\n');
      const completion: Completion = await open.read((delta) => {
        if (!separated) {
          // Text of a later round starts a new paragraph of the answer.
          separated = true;
          const sep = answered.endsWith('\n') ? '\n' : '\n\n';
          answered += sep;
          io.output(sep);
        }
        answered += delta;
        io.output(delta);
      });
      if (completion.usage) spent.usage = addUsage(spent.usage, completion.usage);
      if (completion.toolCalls.length === 0) {
        if (completion.finishReason === 'length') io.log('warn', 'the answer was cut at the model\'s output limit');
        return { status: 'completed' };
      }
      if (round >= this.options.maxToolRounds) {
        io.error(
          'turn_limit',
          `the agent stopped after ${this.options.maxToolRounds} rounds of tool calls in one turn (the limit); send a message to let it continue`,
        );
        return { status: 'failed' };
      }
      messages.push({ role: 'assistant', content: completion.text || null, tool_calls: completion.toolCalls });
      for (const call of completion.toolCalls) {
        if (signal.aborted) break; // interrupted or out of time: no further tools
        const name = call.function.name;
        let args: unknown;
        let parseError: string | null = null;
        try {
          args = call.function.arguments.trim() ? JSON.parse(call.function.arguments) : {};
        } catch (err) {
          args = call.function.arguments;
          parseError = `the arguments are not valid JSON (${(err as Error).message}); call the tool again with a JSON object`;
        }
        io.toolCall(call.id, name, args);
        const result = parseError
          ? { ok: false, output: parseError }
          : await runTool(name, args, { workspace: input.workspace, signal, limits: this.options.tools });
        io.toolResult(call.id, result.ok, result.output);
        messages.push({ role: 'tool', tool_call_id: call.id, content: result.ok ? result.output : `error: ${result.output}` });
      }
      const why = stopped();
      if (why === 'interrupted') return { status: 'interrupted' };
      if (why === 'timeout') return this.timeLimit(io);
    }
  }
}

/** The tokens of a turn's requests, added up. */
function addUsage(total: TokenUsage | undefined, more: TokenUsage): TokenUsage {
  return total ? { promptTokens: total.promptTokens + more.promptTokens, completionTokens: total.completionTokens + more.completionTokens } : more;
}
