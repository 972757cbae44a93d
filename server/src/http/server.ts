import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { ApiErrorBody, ErrorCode } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { SessionService } from '../sessions/service';
import { ApiError } from '../util/errors';
import type { TokenAuthenticator } from './auth';
import { RateLimiter } from './rateLimit';
import { registerRoutes } from './routes';
import { StreamServer } from './stream';
import type { TicketIssuer } from './tickets';

const BODY_LIMIT_BYTES = 1024 * 1024;

function errorBody(code: ErrorCode, message: string, details?: unknown): ApiErrorBody {
  return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
}

/** Maps the framework's own 4xx errors (bad JSON, too large, wrong content type) to our codes. */
function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 413) return 'payload_too_large';
  if (status === 415) return 'unsupported_media_type';
  if (status === 429) return 'rate_limited';
  return 'bad_request';
}

export interface HttpServer {
  app: FastifyInstance;
  streams: StreamServer;
}

export function buildHttpServer(
  ctx: ServerContext,
  sessions: SessionService,
  auth: TokenAuthenticator,
  tickets: TicketIssuer,
): HttpServer {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
    // Query strings and ids come from untrusted clients: keep the parser strict and small.
    routerOptions: { maxParamLength: 200 },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    keepAliveTimeout: 65_000,
  });
  const streams = new StreamServer(ctx, tickets);
  app.server.on('upgrade', (request, socket, head) => streams.handleUpgrade(request, socket, head));

  app.decorateRequest('user', '');
  app.addHook('onRequest', async (request) => {
    if (request.url === '/healthz') return;
    const user = auth.authenticate(request.headers.authorization);
    if (!user) throw new ApiError(401, 'unauthorized', 'a valid "Authorization: Bearer <token>" header is required');
    request.user = user;
  });

  app.get('/healthz', async () => ({ ok: true }));
  const startLimit = ctx.config.startRate ? new RateLimiter(ctx.config.startRate, ctx.clock) : null;
  registerRoutes(app, sessions, tickets, startLimit);

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`));
  });

  app.setErrorHandler((err: FastifyError | ApiError | Error, request, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.status).send(errorBody(err.code, err.message, err.details));
    }
    const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send(errorBody(codeForStatus(status), err.message));
    }
    ctx.logger.error({ err, method: request.method, route: request.routeOptions.url }, 'request failed');
    return reply.code(500).send(errorBody('internal', 'internal server error'));
  });

  return { app, streams };
}
