import type { Args } from './guard';

export interface ToolLimits {
  /** read_file returns at most this many bytes of a file. */
  readMaxBytes: number;
  /** run_command: default and maximum run time. */
  commandTimeoutMs: number;
  commandMaxTimeoutMs: number;
  /** run_command: the output (stdout and stderr together) kept, head and tail. */
  commandOutputChars: number;
  /** list_files: entries listed at most. */
  listMaxEntries: number;
}

export const DEFAULT_TOOL_LIMITS: ToolLimits = {
  readMaxBytes: 128 * 1024,
  commandTimeoutMs: 120_000,
  commandMaxTimeoutMs: 600_000,
  commandOutputChars: 32 * 1024,
  listMaxEntries: 1000,
};

export interface ToolContext {
  workspace: string;
  signal: AbortSignal;
  limits: ToolLimits;
}

export interface ToolResult {
  ok: boolean;
  output: string;
}

/** One tool the model can call: its JSON schema and what it does. */
export interface Tool {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  run(args: Args, ctx: ToolContext): Promise<ToolResult>;
}
