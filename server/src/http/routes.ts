import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SendMessageRequest, SESSION_ID_PATTERN, StartSessionRequest } from '@berth/protocol';
import type { SessionService } from '../sessions/service';
import { ApiError } from '@berth/protocol';
import type { RateLimiter } from './rateLimit';
import { USER_SCOPE, type TicketIssuer } from './tickets';

const QueuedMessageParams = z.object({ id: z.string(), turnId: z.string().regex(/^turn_[A-Za-z0-9]{8,40}$/) });

declare module 'fastify' {
  interface FastifyRequest {
    user: string;
  }
}

/** Parses a body with a protocol schema; every failure is a 400 with the offending fields. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
    const first = issues[0];
    throw new ApiError(400, 'bad_request', first ? `${first.path || 'body'}: ${first.message}` : 'invalid request body', { issues });
  }
  return result.data;
}

export function sessionIdOf(request: FastifyRequest): string {
  const id = (request.params as { id?: string }).id ?? '';
  // An id that cannot exist is simply not found (and never reaches the store).
  if (!SESSION_ID_PATTERN.test(id)) throw new ApiError(404, 'not_found', 'no such session');
  return id;
}

export function registerRoutes(
  app: FastifyInstance,
  sessions: SessionService,
  tickets: TicketIssuer,
  startLimit: RateLimiter | null,
): void {
  app.post('/v1/sessions', async (request, reply) => {
    const body = parseBody(StartSessionRequest, request.body);
    // Only well-formed starts cost a token: they are the ones that create work.
    const waitMs = startLimit?.take(request.user) ?? 0;
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      void reply.header('retry-after', String(seconds));
      throw new ApiError(429, 'rate_limited', `too many session starts; retry in ${seconds} s`, { retryAfterSeconds: seconds });
    }
    const { status, body: response } = await sessions.start(request.user, body);
    return reply.code(status).send(response);
  });

  app.get('/v1/sessions', async (request) => ({ sessions: await sessions.list(request.user) }));

  app.get('/v1/models', async () => sessions.models());

  app.get('/v1/sessions/:id', async (request) => sessions.get(request.user, sessionIdOf(request)));

  app.post('/v1/sessions/:id/messages', async (request, reply) => {
    const id = sessionIdOf(request);
    const body = parseBody(SendMessageRequest, request.body);
    return reply.code(202).send(await sessions.sendMessage(request.user, id, body.text));
  });

  app.delete('/v1/sessions/:id/messages/:turnId', async (request, reply) => {
    const { turnId } = parseBody(QueuedMessageParams, request.params);
    await sessions.cancelQueued(request.user, sessionIdOf(request), turnId);
    return reply.code(204).send();
  });

  app.post('/v1/sessions/:id/retry', async (request, reply) => {
    return reply.code(202).send(await sessions.retry(request.user, sessionIdOf(request)));
  });

  app.post('/v1/sessions/:id/interrupt', async (request, reply) => {
    await sessions.interrupt(request.user, sessionIdOf(request));
    return reply.code(202).send({ interrupted: true });
  });

  app.post('/v1/sessions/:id/stop', async (request) => sessions.stop(request.user, sessionIdOf(request)));

  app.delete('/v1/sessions/:id', async (request, reply) => {
    await sessions.delete(request.user, sessionIdOf(request));
    return reply.code(204).send();
  });

  app.get('/v1/sessions/:id/log', async (request, reply) => {
    const text = await sessions.log(request.user, sessionIdOf(request));
    return reply.type('text/plain; charset=utf-8').send(text);
  });

  for (const purpose of ['stream', 'terminal'] as const) {
    app.post(`/v1/sessions/:id/${purpose}-ticket`, async (request) => {
      const id = sessionIdOf(request);
      if (!(await sessions.exists(request.user, id))) throw new ApiError(404, 'not_found', 'no such session');
      const { ticket, expiresAt } = await tickets.issue(request.user, id, purpose);
      return { ticket, expiresAt: new Date(expiresAt).toISOString() };
    });
  }

  // The user's own stream (every session's status): the ticket names no session.
  app.post('/v1/stream-ticket', async (request) => {
    const { ticket, expiresAt } = await tickets.issue(request.user, USER_SCOPE, 'user');
    return { ticket, expiresAt: new Date(expiresAt).toISOString() };
  });

  app.post('/v1/sessions/:id/wake', async (request, reply) => {
    const woken = await sessions.wake(request.user, sessionIdOf(request));
    return reply.code(woken.status === 'preparing' ? 202 : 200).send(woken);
  });
}
