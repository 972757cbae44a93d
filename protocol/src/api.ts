import { z } from 'zod';
import { ChangedFile, CommitSha, SessionStatus, SessionView } from './events';

/** Limits shared by the server's validation and the clients' forms. */
export const LIMITS = {
  urlLength: 2048,
  branchLength: 255,
  promptLength: 100_000,
  messageLength: 100_000,
  setupCommands: 32,
  setupCommandLength: 4096,
  /** Messages a session holds while its agent is busy. */
  queuedMessages: 20,
} as const;

/** A dev container config's path in a repository: `devcontainer.json` or `.devcontainer.json`, relative. */
export const DEVCONTAINER_CONFIG_PATH = /^(?!\/)(?:[^\0/]+\/)*\.?devcontainer\.json$/;

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
    /** One of the models the server offers (`GET /v1/models`); the first one when absent. */
    model: z.string().min(1).max(200).optional(),
    /**
     * The dev container config to use, by its path in the repository (e.g.
     * `.devcontainer/python/devcontainer.json`); needed when the repository has several.
     */
    devcontainer: z
      .string()
      .max(LIMITS.urlLength)
      .refine((p) => DEVCONTAINER_CONFIG_PATH.test(p) && !p.split('/').some((part) => part === '..' || part === '.'), 'not a dev container config path (…/devcontainer.json or .devcontainer.json, relative to the repository)')
      .optional(),
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

/** `GET /v1/models`: what a start may choose (`model`); empty for a server whose agent is a command. */
export const ModelsResponse = z.object({ models: z.array(z.string()), default: z.string().nullable() });
export type ModelsResponse = z.infer<typeof ModelsResponse>;

export const SendMessageRequest = z.strictObject({
  text: z.string().max(LIMITS.messageLength).refine((t) => t.trim().length > 0, 'text must not be empty'),
});
export type SendMessageRequest = z.infer<typeof SendMessageRequest>;

/** `queued`: the agent is busy; the message runs after the `position - 1` queued before it. */
export const SendMessageResponse = z.union([
  z.object({ turnId: z.string(), status: SessionStatus }),
  z.object({ turnId: z.string(), status: z.literal('queued'), position: z.number().int().positive() }),
]);
export type SendMessageResponse = z.infer<typeof SendMessageResponse>;

export const StreamTicketResponse = z.object({ ticket: z.string(), expiresAt: z.string() });
export type StreamTicketResponse = z.infer<typeof StreamTicketResponse>;

/** Query of `GET /v1/sessions/:id/stream`. */
export const StreamQuery = z.object({
  ticket: z.string().min(1).max(1024),
  after: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).default(0),
});

// ---- the session's work: changes, diff, content, bundle, push, stop ----

/** Repository paths as clients name them: relative, no `..`, no NUL (the server checks again). */
export const RepoPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0') && !p.startsWith('/') && !p.split('/').some((part) => part === '..' || part === '.' || part === ''), 'not a relative path in the repository');

/** `GET /v1/sessions/:id/changes?from&to` (defaults: base → head). */
export const ChangesQuery = z.strictObject({ from: CommitSha.optional(), to: CommitSha.optional() });
/** `GET /v1/sessions/:id/diff?from&to&path`. */
export const DiffQuery = ChangesQuery.extend({ path: RepoPath.optional() });
/** `GET /v1/sessions/:id/content?ref&path`. */
export const ContentQuery = z.strictObject({ ref: CommitSha, path: RepoPath });

export const CheckpointInfo = z.object({
  sha: CommitSha,
  /** The turn that made it; null for a checkpoint taken when the sandbox stopped. */
  turnId: z.string().nullable(),
  createdAt: z.string(),
  /** Files changed from the previous checkpoint (or the base). */
  files: z.number().int().nonnegative(),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
});
export type CheckpointInfo = z.infer<typeof CheckpointInfo>;

export const ChangesResponse = z.object({
  base: CommitSha,
  head: CommitSha,
  branch: z.string(),
  /** The range these files describe (`from` → `to`). */
  from: CommitSha,
  to: CommitSha,
  files: z.array(ChangedFile),
  additions: z.number().int().nonnegative(),
  deletions: z.number().int().nonnegative(),
  checkpoints: z.array(CheckpointInfo),
});
export type ChangesResponse = z.infer<typeof ChangesResponse>;

export const PushRequest = z.strictObject({ branch: z.string().trim().min(1).max(LIMITS.branchLength).optional() });
export type PushRequest = z.infer<typeof PushRequest>;

export const PushResponse = z.object({
  /** The remote, credentials masked. */
  remote: z.string(),
  branch: z.string(),
  head: CommitSha,
  /** The "open a pull request" page (GitHub, GitLab, Bitbucket remotes). */
  compareUrl: z.string().optional(),
});
export type PushResponse = z.infer<typeof PushResponse>;

export const StopSessionResponse = z.object({ sessionId: SessionId, status: SessionStatus });
export type StopSessionResponse = z.infer<typeof StopSessionResponse>;

// ---- diagnostics ----

/** `GET /v1/diagnostics?reset=true|false`: how responsive this instance's event loop has been. */
export const DiagnosticsQuery = z.strictObject({ reset: z.enum(['true', 'false']).default('false') });
export const DiagnosticsResponse = z.object({
  /** Event-loop delay since the last reset (or the start): what any request may have waited. */
  eventLoopDelay: z.object({ p50Ms: z.number(), p99Ms: z.number(), maxMs: z.number(), meanMs: z.number(), sinceMs: z.number() }),
  /** Sessions with a live sandbox on this instance. */
  liveSessions: z.number().int().nonnegative(),
  /** The warm pool of this instance, per repository (empty: none configured). */
  warmPool: z.array(
    z.object({
      repo: z.string(),
      branch: z.string().nullable(),
      size: z.number().int(),
      ready: z.number().int().nonnegative(),
      building: z.number().int().nonnegative(),
    }),
  ),
});
export type DiagnosticsResponse = z.infer<typeof DiagnosticsResponse>;

// ---- per-user git credentials and session secrets ----

/** Shorter values are refused: every one of them is redacted everywhere, and short ones would hide ordinary text. */
export const MIN_SECRET_LENGTH = 8;

/** A host as in a repository URL: `host` or `host:port` (lower case). */
export const CredentialHost = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$/, 'not a host (host or host:port, lower case)');

/** `PUT /v1/credentials/:host`. */
export const PutCredentialRequest = z.strictObject({
  /** Default `x-access-token` (GitHub, Gitea and most token logins accept any name). */
  username: z.string().min(1).max(256).regex(/^[^\s:]+$/, 'a user name without spaces or ":"').optional(),
  token: z.string().min(MIN_SECRET_LENGTH, `a token has at least ${MIN_SECRET_LENGTH} characters`).max(4096).regex(/^[^\s]+$/, 'a token without spaces or line breaks'),
});
export type PutCredentialRequest = z.infer<typeof PutCredentialRequest>;

export const CredentialView = z.object({ host: z.string(), username: z.string(), createdAt: z.string(), updatedAt: z.string() });
export type CredentialView = z.infer<typeof CredentialView>;
export const CredentialListResponse = z.object({ credentials: z.array(CredentialView) });
export type CredentialListResponse = z.infer<typeof CredentialListResponse>;

/** An environment variable name. */
export const SecretName = z.string().min(1).max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name (letters, digits, _)');

/** Who sees a secret: setup commands and lifecycle commands only, or also the agent's tools. */
export const SecretExposure = z.enum(['setup', 'agent']);
export type SecretExposure = z.infer<typeof SecretExposure>;

/** `PUT /v1/secrets/:name`. */
export const PutSecretRequest = z.strictObject({
  value: z.string().min(MIN_SECRET_LENGTH, `a secret has at least ${MIN_SECRET_LENGTH} characters`).max(65_536),
  /** Only sessions of this repository (its URL) get it; none: all of the user's sessions. */
  repo: z.string().trim().min(1).max(LIMITS.urlLength).optional(),
  exposeTo: SecretExposure,
});
export type PutSecretRequest = z.infer<typeof PutSecretRequest>;

export const SecretView = z.object({
  name: z.string(),
  repo: z.string().nullable(),
  exposeTo: SecretExposure,
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type SecretView = z.infer<typeof SecretView>;
export const SecretListResponse = z.object({ secrets: z.array(SecretView) });
export type SecretListResponse = z.infer<typeof SecretListResponse>;

export const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'not_found',
  'not_ready',
  'turn_in_progress',
  'queue_full',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'preparation_failed',
  'push_rejected',
  'push_failed',
  'internal',
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** Failures a client meets before it has a valid answer from the server. */
export const CLIENT_ERROR_CODES = ['network', 'invalid_response', 'http_error', 'client_error'] as const;
export const ClientErrorCode = z.enum(CLIENT_ERROR_CODES);
export type ClientErrorCode = z.infer<typeof ClientErrorCode>;

export const ApiErrorBody = z.object({
  error: z.object({
    code: ErrorCode,
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;
