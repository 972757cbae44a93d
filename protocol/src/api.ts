import { z } from 'zod';
import { SessionStatus, SessionView } from './events';

/** Limits shared by the server's validation and the clients' forms. */
export const LIMITS = {
  urlLength: 2048,
  branchLength: 255,
  promptLength: 100_000,
  messageLength: 100_000,
  setupCommands: 32,
  setupCommandLength: 4096,
} as const;

export const SESSION_ID_PATTERN = /^ses_[A-Za-z0-9]{20,40}$/;
export const SessionId = z.string().regex(SESSION_ID_PATTERN, 'not a session id');

export const RepoSpec = z.strictObject({
  url: z.string().trim().min(1, 'repo.url is required').max(LIMITS.urlLength),
  branch: z.string().trim().min(1).max(LIMITS.branchLength).optional(),
});
export type RepoSpec = z.infer<typeof RepoSpec>;

export const StartSessionRequest = z
  .strictObject({
    repo: RepoSpec,
    prompt: z.string().max(LIMITS.promptLength).optional(),
    setup: z
      .array(z.string().min(1).max(LIMITS.setupCommandLength))
      .max(LIMITS.setupCommands)
      .optional(),
    autoInitiate: z.boolean().optional(),
  })
  .refine((r) => !r.autoInitiate || (r.prompt !== undefined && r.prompt.trim().length > 0), {
    message: 'prompt is required when autoInitiate is true',
    path: ['prompt'],
  });
export type StartSessionRequest = z.infer<typeof StartSessionRequest>;

export const StartSessionResponse = z.object({ sessionId: SessionId, status: SessionStatus });
export type StartSessionResponse = z.infer<typeof StartSessionResponse>;

export const SessionListResponse = z.object({ sessions: z.array(SessionView) });
export type SessionListResponse = z.infer<typeof SessionListResponse>;

export const SendMessageRequest = z.strictObject({
  text: z.string().max(LIMITS.messageLength).refine((t) => t.trim().length > 0, 'text must not be empty'),
});
export type SendMessageRequest = z.infer<typeof SendMessageRequest>;

export const SendMessageResponse = z.object({ turnId: z.string(), status: SessionStatus });
export type SendMessageResponse = z.infer<typeof SendMessageResponse>;

export const StreamTicketResponse = z.object({ ticket: z.string(), expiresAt: z.string() });
export type StreamTicketResponse = z.infer<typeof StreamTicketResponse>;

/** Query of `GET /v1/sessions/:id/stream`. */
export const StreamQuery = z.object({
  ticket: z.string().min(1).max(1024),
  after: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).default(0),
});

export const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'not_found',
  'not_ready',
  'turn_in_progress',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'preparation_failed',
  'internal',
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ApiErrorBody = z.object({
  error: z.object({
    code: ErrorCode,
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;
