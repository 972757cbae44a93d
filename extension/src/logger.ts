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

export const REDACTED = '‹redacted›';

export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    // Short strings would blank out ordinary words; tokens are long.
    if (secret.length >= 8) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** Every line goes through `redact` with the secrets registered so far. */
export class RedactingLogger implements Logger {
  private readonly secrets = new Set<string>();

  constructor(private readonly target: Logger) {}

  addSecret(secret: string): void {
    this.secrets.add(secret);
  }

  removeSecret(secret: string): void {
    this.secrets.delete(secret);
  }

  /** `text` with every registered secret blanked out: for what is shown rather than logged (notifications). */
  redactText(text: string): string {
    return redact(text, this.secrets);
  }

  trace(message: string): void {
    this.target.trace(redact(message, this.secrets));
  }
  debug(message: string): void {
    this.target.debug(redact(message, this.secrets));
  }
  info(message: string): void {
    this.target.info(redact(message, this.secrets));
  }
  warn(message: string): void {
    this.target.warn(redact(message, this.secrets));
  }
  error(message: string | Error): void {
    const text = message instanceof Error ? `${message.name}: ${message.message}` : message;
    this.target.error(redact(text, this.secrets));
  }
}
