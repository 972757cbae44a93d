import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApiErrorBody, ErrorCode } from '@berth/protocol';

/** The one error shape of the API: `{error:{code,message,details?}}`. */
export function errorBody(code: ErrorCode, message: string, details?: unknown): ApiErrorBody {
  return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
}

/** Maps the framework's own 4xx errors (bad JSON, too large, wrong content type) to our codes. */
export function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 413) return 'payload_too_large';
  if (status === 415) return 'unsupported_media_type';
  if (status === 429) return 'rate_limited';
  return 'bad_request';
}

/**
 * Answers on a raw socket (no request object: a refused WebSocket upgrade, HTTP the parser could
 * not read) with the standard error body, then closes it.
 */
export function refuseSocket(socket: Duplex, status: number, code: ErrorCode, message: string, head = false): void {
  if (socket.destroyed) return;
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify(errorBody(code, message));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      // The answer to a HEAD request has the headers of the body, never the body itself.
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`,
    () => socket.destroy(),
  );
}

/** Node's HTTP parser gave up on a request (malformed, headers too large, too slow). */
export function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const raw: unknown = (err as { rawPacket?: unknown }).rawPacket;
  const head = Buffer.isBuffer(raw) && raw.toString('latin1', 0, 5) === 'HEAD ';
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return refuseSocket(socket, 408, 'bad_request', 'the request took too long to arrive', head);
  if (err.code === 'HPE_HEADER_OVERFLOW') return refuseSocket(socket, 431, 'bad_request', 'the request headers are too large', head);
  refuseSocket(socket, 400, 'bad_request', 'malformed HTTP request', head);
}
