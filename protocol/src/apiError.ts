import type { ClientErrorCode, ErrorCode } from './api';

/**
 * The one API error. The server throws it and its HTTP layer answers `{error:{code,message,details}}`
 * with its status; the extension's client turns every such answer (or a failure to get one) back
 * into it. Its message never carries a token or request headers.
 */
export class ApiError extends Error {
  constructor(
    /** HTTP status, or 0 when no response arrived. */
    readonly status: number,
    /** The server's error code, or the client's for failures before a valid answer. */
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Errors no retry can fix (the session is gone or the credentials are wrong). */
  get isPermanent(): boolean {
    return this.status === 401 || this.status === 403 || this.status === 404;
  }
}
