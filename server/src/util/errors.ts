import type { ErrorCode, ProgressStep } from '@berth/protocol';

/** An error with a code and a message meant for the user (already free of secrets). */
export class BerthError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly step?: ProgressStep,
  ) {
    super(message);
    this.name = 'BerthError';
  }
}

/** An error the HTTP layer turns into `{error:{code,message,details}}` with its status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
