// The one backoff: the extension's stream reconnects and the agent host's LLM retries wait alike.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** 0..1: the share of each delay that is randomised (spreads clients that failed together). */
  jitter: number;
}

/** Delay before retry `attempt` (0-based): exponential from `initialMs`, capped at `maxMs`, part of it random. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(base * (1 - options.jitter) + base * options.jitter * random());
}
