import { numberArg, stringArg, ToolError } from './guard';
import { workspaceRoot } from './guard';
import type { Tool } from './types';
import { runProcess } from '../../util/process';
import { spawnHere } from '../../util/launcher';

const KILL_GRACE_MS = 2000;
/** After the shell exits, output still in the pipes is collected for at most this long. */
const DRAIN_MS = 300;

/** Variables a command run for the model never sees (the agent host's own secrets). */
export const HIDDEN_ENV = ['BERTH_LLM_API_KEY'];

export function commandEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of HIDDEN_ENV) delete env[name];
  return env;
}

/** Keeps the head and the tail of a long output, with a note on what was left out. */
class CappedOutput {
  private head = '';
  private tail = '';
  private dropped = 0;

  constructor(private readonly cap: number) {}

  push(text: string): void {
    const half = Math.floor(this.cap / 2);
    if (this.head.length < half) {
      const room = half - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    if (!text) return;
    this.tail += text;
    if (this.tail.length > this.cap - half) {
      const cut = this.tail.length - (this.cap - half);
      this.dropped += cut;
      this.tail = this.tail.slice(cut);
    }
  }

  toString(): string {
    return this.dropped ? `${this.head}\n[… ${this.dropped} characters of output left out …]\n${this.tail}` : this.head + this.tail;
  }
}

export const runCommand: Tool = {
  name: 'run_command',
  description:
    'Run a shell command (/bin/sh -c) in the workspace root and return its exit code and output (stdout and stderr ' +
    'together; long output keeps its beginning and end). It has no input and a time limit; processes it leaves in the ' +
    'background are stopped when it ends.',
  parameters: {
    type: 'object',
    properties: {
      command: { type: 'string', description: 'The shell command' },
      timeout_seconds: { type: 'number', description: 'Time limit in seconds (default 120)' },
    },
    required: ['command'],
    additionalProperties: false,
  },
  async run(args, ctx) {
    const command = stringArg(args, 'command', true);
    if (!command.trim()) throw new ToolError('the command is empty');
    const requested = numberArg(args, 'timeout_seconds');
    const timeoutMs = Math.min(
      ctx.limits.commandMaxTimeoutMs,
      requested !== undefined && requested > 0 ? requested * 1000 : ctx.limits.commandTimeoutMs,
    );
    const cwd = await workspaceRoot(ctx.workspace);
    if (ctx.signal.aborted) return { ok: false, output: 'interrupted before the command started' };
    const output = new CappedOutput(ctx.limits.commandOutputChars);
    const result = await runProcess('/bin/sh', ['-c', command], {
      spawner: spawnHere,
      cwd,
      env: commandEnv(),
      timeoutMs,
      signal: ctx.signal,
      killGraceMs: KILL_GRACE_MS,
      // A background process may hold the pipes open after the shell is gone: do not wait for it.
      drainMs: DRAIN_MS,
      onText: (text) => output.push(text),
    });
    const text = output.toString();
    const body = text ? `\n${text}` : '\n(no output)';
    if (result.spawnError) return { ok: false, output: `the command could not start: ${result.spawnError.message}` };
    if (result.timedOut) return { ok: false, output: `stopped after the time limit of ${Math.round(timeoutMs / 1000)} s${body}` };
    if (result.aborted) return { ok: false, output: `interrupted${body}` };
    if (result.exitCode === null) return { ok: false, output: `killed by signal ${result.signal}${body}` };
    return { ok: result.exitCode === 0, output: `exit code ${result.exitCode}${body}` };
  },
};
