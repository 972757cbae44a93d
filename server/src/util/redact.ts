/** What a known secret becomes in text. */
export const REDACTED = '[redacted]';

/** Replaces every known secret in text: no token or key ever reaches a log, event or error. */
export class Redactor {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined | null): void {
    // Very short strings would redact ordinary words; real secrets are long.
    if (secret && secret.length >= 6) this.secrets.add(secret);
  }

  secretsList(): string[] {
    return [...this.secrets];
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) {
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
    pass ? `${scheme}${user}:***@` : `${scheme}***@`,
  );
}
