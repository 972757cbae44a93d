import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ServerContext } from '../context';
import type { SessionService } from '../sessions/service';
import { ApiError, ErrorCode } from '@berth/protocol';
import type { TokenAuthenticator } from './auth';
import { codeForStatus, errorBody, onClientError } from './errors';
import { RateLimiter } from './rateLimit';
import { registerRoutes } from './routes';
import { registerChangesRoutes } from './changesRoutes';
import { registerVaultRoutes } from './vaultRoutes';
import { ChangesService } from '../changes/service';
import { StreamServer } from './stream';
import { EventLoopMonitor, registerDiagnosticsRoute } from './diagnostics';
import type { TicketIssuer } from './tickets';
import { TerminalServer } from '../terminal/terminalServer';
import { UserStreamServer } from './userStream';

const BODY_LIMIT_BYTES = 1024 * 1024;
/** Below the usual load-balancer check timeout, so the check answers 503 rather than timing out. */
const HEALTH_TIMEOUT_MS = 2000;

/** One cheap round trip to the store, bounded in time (a blackholed database host never errors). */
async function storeAnswers(ctx: ServerContext, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([ctx.store.ping().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface HttpServer {
  app: FastifyInstance;
  streams: StreamServer;
  terminals: TerminalServer;
  userStreams: UserStreamServer;
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
    // HTTP the parser cannot read, and URLs the router cannot decode, get the standard error body too.
    clientErrorHandler: onClientError,
    frameworkErrors: (err, _request, reply) => {
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      const message = err.code === 'FST_ERR_BAD_URL' ? 'malformed URL' : err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long' : 'bad request';
      void (reply as FastifyReply).code(status).send(errorBody(codeForStatus(status), message));
    },
  });
  acceptBodylessPosts(app);
  const streams = new StreamServer(ctx, tickets);
  const terminals = new TerminalServer(ctx, tickets);
  const userStreams = new UserStreamServer(ctx, tickets);
  app.server.on('upgrade', (request, socket, head) => {
    if (TerminalServer.serves(request)) terminals.handleUpgrade(request, socket, head);
    else if (UserStreamServer.serves(request)) userStreams.handleUpgrade(request, socket, head);
    else streams.handleUpgrade(request, socket, head);
  });

  app.decorateRequest('user', '');
  app.addHook('onRequest', async (request) => {
    if (request.url === '/healthz') return;
    const user = auth.authenticate(request.headers.authorization);
    if (!user) throw new ApiError(401, 'unauthorized', 'a valid "Authorization: Bearer <token>" header is required');
    request.user = user;
  });

  // The load balancer's check: an instance that cannot reach its database serves nothing useful.
  app.get('/healthz', async (_request, reply) => {
    if (await storeAnswers(ctx, HEALTH_TIMEOUT_MS)) return { ok: true };
    return reply.code(503).send(errorBody('internal', `the database did not answer within ${HEALTH_TIMEOUT_MS} ms`));
  });
  const startLimit = ctx.config.startRate ? new RateLimiter(ctx.config.startRate, ctx.clock) : null;
  registerRoutes(app, sessions, tickets, startLimit);
  registerChangesRoutes(app, new ChangesService(ctx, sessions));
  registerVaultRoutes(app, ctx.vault);
  const loop = new EventLoopMonitor();
  registerDiagnosticsRoute(app, ctx, loop);
  app.addHook('onClose', async () => loop.stop());

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody('not_found', `no route for ${request.method} ${request.url.split('?')[0]}`));
  });

  app.setErrorHandler((err: FastifyError | ApiError | Error, request, reply) => {
    if (err instanceof ApiError) {
      // A client-side code never comes from the server's own throws; should one, it is the server's fault.
      const code = ErrorCode.safeParse(err.code);
      return reply.code(err.status).send(errorBody(code.success ? code.data : 'internal', err.message, err.details));
    }
    const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send(errorBody(codeForStatus(status), err.message));
    }
    ctx.logger.error({ err, method: request.method, route: request.routeOptions.url }, 'request failed');
    return reply.code(500).send(errorBody('internal', 'internal server error'));
  });

  return { app, streams, terminals, userStreams };
}

/**
 * Retry, interrupt and stream-ticket are bodyless POSTs: accept them whatever content type the
 * client names (axios labels them a form, curl may say JSON). A body of an unknown type is still
 * refused with 415, and JSON bodies keep the safe default parser.
 */
function acceptBodylessPosts(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text === '') done(null, undefined);
    else void json(request, text, done);
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    if ((body as Buffer).length === 0) done(null, undefined);
    else done(new ApiError(415, 'unsupported_media_type', 'send the body as JSON (content-type: application/json)'), undefined);
  });
}
