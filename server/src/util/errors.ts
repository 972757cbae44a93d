import type { FailureCode, ProgressStep } from '@berth/protocol';

/** An error with a code and a message meant for the user (already free of secrets). */
export class BerthError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly step?: ProgressStep,
  ) {
    super(message);
    this.name = 'BerthError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
