import type { FailureCode, TokenUsage } from '@berth/protocol';
// The subset of the OpenAI-compatible chat completions wire format the llm driver speaks.

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

export interface ToolSpec {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

/** One assistant answer, assembled from the stream. */
export interface Completion {
  text: string;
  toolCalls: ToolCall[];
  finishReason: string | null;
  /** As the endpoint reported it; absent when it did not. */
  usage?: TokenUsage;
}

/**
 * A failure talking to the model endpoint. `message` is meant for the user (it becomes an `error`
 * event) and never contains the API key; `retryable` failures (429, 5xx, a reset connection) are
 * tried again with backoff.
 */
export type LlmErrorCode = Extract<FailureCode, `llm_${string}`>;

export class LlmError extends Error {
  constructor(
    readonly code: LlmErrorCode,
    message: string,
    readonly retryable = false,
    /** What the endpoint asked for (Retry-After), in ms. */
    readonly retryAfterMs: number | null = null,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'LlmError';
  }
}
