import type { FailureCode, HostSecrets, TokenUsage, TranscriptEntry } from '@berth/protocol';

export interface TurnInput {
  turnId: string;
  text: string;
  /** The conversation before this turn (restored from the session import, then kept up to date). */
  transcript: readonly TranscriptEntry[];
  workspace: string;
}

export interface TurnIO {
  /** The turn has really begun (the process or request is under way): the server may call it accepted. */
  started(): void;
  output(text: string): void;
  toolCall(callId: string, name: string, args: unknown): void;
  toolResult(callId: string, ok: boolean, output: string): void;
  error(code: FailureCode, message: string): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void;
}

export interface TurnOutcome {
  status: 'completed' | 'failed' | 'interrupted';
  exitCode?: number | null;
  /** Tokens the model endpoint reported for the turn's requests (absent: it reported none). */
  usage?: TokenUsage;
}

/** A way of running one agent turn: a user-chosen command, a built-in echo, an LLM. */
export interface AgentDriver {
  readonly name: string;
  runTurn(input: TurnInput, io: TurnIO, signal: AbortSignal): Promise<TurnOutcome>;
  /** Receives the secrets the server sent on stdin (`init`); drivers that need none ignore them. */
  configure?(secrets: HostSecrets): void;
}
