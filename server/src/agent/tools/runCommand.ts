import { spawn } from 'node:child_process';
import { numberArg, stringArg, ToolError } from './guard';
import { workspaceRoot } from './guard';
import type { Tool } from './types';
import { killGroup } from '../../util/process';

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
    return new Promise((resolve) => {
      const output = new CappedOutput(ctx.limits.commandOutputChars);
      const child = spawn('/bin/sh', ['-c', command], { cwd, env: commandEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let stopped: 'timeout' | 'interrupted' | null = null;
      let killTimer: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;
      const stop = (why: 'timeout' | 'interrupted') => {
        if (stopped) return;
        stopped = why;
        killGroup(child, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
      };
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      const onAbort = () => stop('interrupted');
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (t: string) => output.push(t));
      child.stderr.on('data', (t: string) => output.push(t));
      let settled = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(killTimer);
        clearTimeout(drainTimer);
        ctx.signal.removeEventListener('abort', onAbort);
        killGroup(child, 'SIGKILL'); // whatever the command left running
        child.stdout.destroy();
        child.stderr.destroy();
        const text = output.toString();
        const body = text ? `\n${text}` : '\n(no output)';
        if (spawnError) resolve({ ok: false, output: `the command could not start: ${spawnError.message}` });
        else if (stopped === 'timeout') resolve({ ok: false, output: `stopped after the time limit of ${Math.round(timeoutMs / 1000)} s${body}` });
        else if (stopped === 'interrupted') resolve({ ok: false, output: `interrupted${body}` });
        else if (code === null) resolve({ ok: false, output: `killed by signal ${signal}${body}` });
        else resolve({ ok: code === 0, output: `exit code ${code}${body}` });
      };
      child.on('error', (err) => finish(null, null, err));
      child.on('close', (code, signal) => finish(code, signal));
      // A background process may hold the pipes open after the shell is gone: do not wait for it.
      child.on('exit', (code, signal) => {
        drainTimer = setTimeout(() => finish(code, signal), DRAIN_MS);
      });
    });
  },
};
