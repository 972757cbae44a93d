// Turns the CLI's stderr (NDJSON events mixed with plain lines) into
// - short user-facing progress messages ("running postCreateCommand (npm ci)"),
// - a readable, redacted per-session log (one call per line),
// - the last lines of the failing lifecycle command, so an error can say WHY.
import { REDACTED, Redactor } from '@berth/protocol';
import { parseLogLine, type CliLogEvent } from './schemas.js';

const TAIL_LINES = 20;
const LOG_WINDOW_LINES = 300;
const DETAIL_MAX = 200;
const COMMAND_MAX = 80;
// The only channel the CLI uses: every lifecycle hook (onCreate … postAttach) reports on it.
const LIFECYCLE_CHANNEL = 'postCreate';

const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Hides environment values: explicit secrets (the shared Redactor), `-e NAME=value` arguments of
 * docker commands, env maps inside the devcontainer.metadata label, and the CLI's user-env probe dumps.
 */
export function createRedactor(secrets: Iterable<string>): (text: string) => string {
  const redactor = new Redactor(secrets);
  return (text) => {
    const out = redactor.redact(text);
    if (out.includes('\u0000')) return '[environment redacted]';
    if (out.startsWith('userEnvProbe parsed:')) return 'userEnvProbe parsed: [environment redacted]';
    return out
      .replace(/(\s-e\s+)([A-Za-z_][A-Za-z0-9_.]*)=(\S*)/g, `$1$2=${REDACTED}`)
      .replace(/("(?:containerEnv|remoteEnv)":)\{[^}]*\}/g, '$1{…}');
  };
}

/** "Running postCreateCommand..." → "postCreateCommand". */
function hookName(progressName: string): string {
  const match = /^Running (\S+?)(?:\.\.\.)?$/.exec(progressName);
  return match?.[1] ?? progressName.replace(/\.\.\.$/, '');
}

/** Maps the start of a CLI step to a user-facing message, or null when it is an internal detail. */
function messageForStart(text: string): string | null {
  if (text === 'Starting container') return 'starting container';
  if (/^Run: docker (buildx )?build\b/.test(text)) return 'building image';
  const pull = /^Run: docker pull (\S+)/.exec(text);
  if (pull) return `pulling image ${pull[1]}`;
  if (/^Run: docker(-compose| compose)\b.*\bup\b/.test(text)) return 'starting compose services';
  return null;
}

export interface LifecycleFailure {
  /** e.g. "postCreateCommand". */
  hook: string;
  /** The command as the CLI reported it (redacted). */
  command: string | undefined;
  /** Its last output lines (ANSI stripped, redacted). */
  outputTail: string[];
}

export interface UpLogInterpreterOptions {
  onProgress?(message: string, detail?: string): void;
  onLog?(line: string): void;
  secrets?: readonly string[];
  /** Minimum interval between two detail-only progress updates (noisy commands like `npm ci`). */
  detailIntervalMs?: number;
}

export class UpLogInterpreter {
  private readonly redact: (text: string) => string;
  private readonly detailIntervalMs: number;
  private currentMessage: string | undefined;
  private lastDetailAt = 0;
  private currentHook: { hook: string; command: string | undefined; lines: string[] } | undefined;
  private failedHook: LifecycleFailure | undefined;
  private readonly errorLines: string[] = [];
  private readonly recentLines: string[] = [];
  /** The log's last lines (redacted), for telling one failure from another. */
  private readonly logWindow: string[] = [];

  constructor(private readonly options: UpLogInterpreterOptions) {
    this.redact = createRedactor(options.secrets ?? []);
    this.detailIntervalMs = options.detailIntervalMs ?? 250;
  }

  /** The last log lines (redacted). */
  recentLog(): string[] {
    return [...this.logWindow];
  }

  /** The lifecycle command that failed, if any. */
  get lifecycleFailure(): LifecycleFailure | undefined {
    return this.failedHook;
  }

  /** The last message reported to the user (for timeout errors: where it hung). */
  get lastMessage(): string | undefined {
    return this.currentMessage;
  }

  /** The lines that best explain a failure: the failing command's output, else error-level log lines, else the last lines. */
  failureTail(): string[] {
    if (this.failedHook && this.failedHook.outputTail.length > 0) return [...this.failedHook.outputTail];
    if (this.errorLines.length > 0) return [...this.errorLines];
    return [...this.recentLines];
  }

  progress(message: string, detail?: string): void {
    this.currentMessage = message;
    this.options.onProgress?.(message, detail);
  }

  /** Logs a line of Berth's own (redacted like the CLI's). */
  log(text: string): void {
    this.emitLogLines(this.redact(text));
  }

  redactText(text: string): string {
    return this.redact(stripAnsi(text));
  }

  /** Feeds one stderr line. */
  handleLine(rawLine: string): void {
    if (rawLine.trim() === '') return;
    const event = parseLogLine(rawLine);
    if (!event) {
      // Plain text: stack traces of the CLI, docker warnings.
      const line = this.redact(stripAnsi(rawLine)).trimEnd();
      this.emitLogLines(line);
      this.remember(this.recentLines, line);
      return;
    }
    this.handleEvent(event);
  }

  private handleEvent(event: CliLogEvent): void {
    switch (event.type) {
      case 'start': {
        this.emitLogLines(`> ${this.redact(stripAnsi(event.text))}`);
        const message = messageForStart(event.text);
        if (message && message !== this.currentMessage) this.progress(message);
        return;
      }
      case 'stop': {
        const ms = event.timestamp && event.startTimestamp ? ` (${event.timestamp - event.startTimestamp} ms)` : '';
        this.emitLogLines(`< ${this.redact(stripAnsi(event.text))}${ms}`);
        return;
      }
      case 'progress': {
        const detail = event.stepDetail ? this.redact(stripAnsi(event.stepDetail)) : undefined;
        this.emitLogLines(`[${event.name}] ${event.status}${detail ? `: ${detail}` : ''}`);
        this.handleProgress(hookName(event.name), event.status, detail);
        return;
      }
      case 'text':
      case 'raw': {
        const text = this.redact(stripAnsi(event.text));
        const lines = this.emitLogLines(text);
        const isLifecycleOutput = event.channel === LIFECYCLE_CHANNEL;
        for (const line of lines) {
          this.remember(this.recentLines, line);
          if ((event.level ?? 0) >= 5 && !isLifecycleOutput) this.remember(this.errorLines, line);
        }
        if (isLifecycleOutput) this.handleLifecycleOutput(lines);
        return;
      }
    }
  }

  private handleProgress(hook: string, status: 'running' | 'succeeded' | 'failed', detail: string | undefined): void {
    if (hook === 'Installing Dotfiles') {
      if (status === 'running') this.progress('installing dotfiles');
      return;
    }
    if (status === 'running') {
      // A hook reports `running` again for each of its commands (object form) and for `::step::` markers.
      if (!this.currentHook || this.currentHook.hook !== hook) this.currentHook = { hook, command: detail, lines: [] };
      else if (detail) this.currentHook.command = detail;
      this.progress(detail ? `running ${hook} (${truncate(detail, COMMAND_MAX)})` : `running ${hook}`);
    } else if (status === 'failed') {
      const current = this.currentHook?.hook === hook ? this.currentHook : undefined;
      this.failedHook = { hook, command: current?.command, outputTail: [...(current?.lines ?? [])] };
      this.progress(`${hook} failed`);
    }
  }

  private handleLifecycleOutput(lines: string[]): void {
    // The CLI's own banner ("Running the postCreateCommand from devcontainer.json...") is not command output.
    const output = lines.filter((l) => !/^Running the \S+ from .*\.\.\.$/.test(l));
    if (output.length === 0) return;
    if (this.currentHook) for (const line of output) this.remember(this.currentHook.lines, line);
    const now = Date.now();
    if (this.currentMessage && now - this.lastDetailAt >= this.detailIntervalMs) {
      this.lastDetailAt = now;
      this.options.onProgress?.(this.currentMessage, truncate(output[output.length - 1]!, DETAIL_MAX));
    }
  }

  /** Splits into non-empty lines, hands each to onLog, returns them. */
  private emitLogLines(text: string): string[] {
    const lines = text
      .split(/\r?\n|\r/)
      .map((l) => l.trimEnd())
      .filter((l) => l.length > 0);
    for (const line of lines) this.options.onLog?.(line);
    this.logWindow.push(...lines);
    if (this.logWindow.length > LOG_WINDOW_LINES) this.logWindow.splice(0, this.logWindow.length - LOG_WINDOW_LINES);
    return lines;
  }

  private remember(buffer: string[], line: string): void {
    buffer.push(line);
    if (buffer.length > TAIL_LINES) buffer.splice(0, buffer.length - TAIL_LINES);
  }
}
