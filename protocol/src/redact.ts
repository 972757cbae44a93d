// The one redactor: server logs, events and errors, the agent host's LLM errors, the Dev Containers
// CLI's output and the extension's log all blank secrets out the same way, with the same marker.

/** What a known secret becomes in text. */
export const REDACTED = '[redacted]';

/** Shorter values are not redacted (nor accepted as secrets): they would hide ordinary words. */
export const MIN_REDACTED_LENGTH = 6;

/** Replaces every registered secret in text, and the password part of any URL. */
export class Redactor {
  private readonly secrets = new Set<string>();
  // Longest first, so a secret that contains another is replaced whole.
  private ordered: string[] = [];

  constructor(secrets: Iterable<string | undefined | null> = []) {
    for (const secret of secrets) this.add(secret);
  }

  add(secret: string | undefined | null): void {
    if (!secret || secret.length < MIN_REDACTED_LENGTH || this.secrets.has(secret)) return;
    this.secrets.add(secret);
    this.ordered = [...this.secrets].sort((a, b) => b.length - a.length);
  }

  remove(secret: string): void {
    if (this.secrets.delete(secret)) this.ordered = [...this.secrets].sort((a, b) => b.length - a.length);
  }

  secretsList(): string[] {
    return [...this.ordered];
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.ordered) {
      if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    }
    return redactUrlCredentials(out);
  }
}

/**
 * Hides the password (or token) part of any `scheme://user:secret@host` in text. The lookbehind
 * makes a scheme start only where a run of scheme characters starts: without it a long line of
 * letters (minified code, base64 in an agent's output) took quadratic time (64 KiB: 3 s).
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]+)(:[^\s/@]*)?@/gi, (_m, scheme: string, user: string, pass?: string) =>
    pass ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`,
  );
}
