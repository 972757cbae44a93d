import { backoffDelay } from '@berth/protocol';
import { LlmError } from './types';

export interface RetryPolicy {
  /** Attempts after the first one, for 429, 5xx and reset connections. */
  maxRetries: number;
  /** The first backoff; doubled on every attempt (with jitter). */
  baseDelayMs: number;
  /** No wait is longer; an endpoint asking for a longer Retry-After is not retried. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 3, baseDelayMs: 1000, maxDelayMs: 20_000 };

/** Reads `retry-after-ms` (OpenAI) or `retry-after` (seconds or an HTTP date) as milliseconds. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | null {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.max(0, Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** The wait before retry number `attempt` (1-based): Retry-After when given, else jittered exponential backoff. */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfter: number | null): number {
  if (retryAfter !== null) return Math.min(retryAfter, policy.maxDelayMs);
  return backoffDelay(attempt - 1, { initialMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: 0.25 });
}

/**
 * The signal's reason, which in the agent is always an Error: an abort without a reason carries a
 * DOMException (an Error), the driver's own aborts pass that on or an Error. Anything else, which
 * no caller here produces, is wrapped in an Error, the reason kept as its cause.
 */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(String(reason), { cause: reason });
}

/** Waits, or rejects with the signal's reason (see abortReason) as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or the retries run out.
 * The last error is thrown as is, with a note on how often it was tried.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  signal: AbortSignal,
  attempt: () => Promise<T>,
  onRetry: (error: LlmError, delayMs: number, retry: number) => void,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof LlmError) || !err.retryable || signal.aborted) throw err;
      if (err.retryAfterMs !== null && err.retryAfterMs > policy.maxDelayMs) {
        throw new LlmError(
          err.code,
          `${err.message}; the endpoint asks to wait ${Math.ceil(err.retryAfterMs / 1000)} s before retrying, longer than the ${Math.round(policy.maxDelayMs / 1000)} s this agent waits`,
          false,
          err.retryAfterMs,
          err.status,
        );
      }
      if (retry >= policy.maxRetries) {
        throw retry === 0
          ? err
          : new LlmError(err.code, `${err.message} (gave up after ${retry + 1} attempts)`, false, err.retryAfterMs, err.status);
      }
      const delay = backoffMs(policy, retry + 1, err.retryAfterMs);
      onRetry(err, delay, retry + 1);
      await sleep(delay, signal);
    }
  }
}
