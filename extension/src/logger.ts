import { Redactor } from '@berth/protocol';

// A logger interface that vscode's LogOutputChannel satisfies, so vscode-free modules can log too,
// and a wrapper that blanks out secrets (the server token) before anything is written.

export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string | Error): void;
}

export const silentLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** The message of anything thrown. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export { REDACTED } from '@berth/protocol';

/** Every line goes through the shared Redactor with the secrets registered so far. */
export class RedactingLogger implements Logger {
  private readonly redactor = new Redactor();

  constructor(private readonly target: Logger) {}

  addSecret(secret: string): void {
    this.redactor.add(secret);
  }

  removeSecret(secret: string): void {
    this.redactor.remove(secret);
  }

  /** `text` with every registered secret blanked out: for what is shown rather than logged (notifications). */
  redactText(text: string): string {
    return this.redactor.redact(text);
  }

  trace(message: string): void {
    this.target.trace(this.redactor.redact(message));
  }
  debug(message: string): void {
    this.target.debug(this.redactor.redact(message));
  }
  info(message: string): void {
    this.target.info(this.redactor.redact(message));
  }
  warn(message: string): void {
    this.target.warn(this.redactor.redact(message));
  }
  error(message: string | Error): void {
    const text = message instanceof Error ? `${message.name}: ${message.message}` : message;
    this.target.error(this.redactor.redact(text));
  }
}
