import type { PipedChild } from '../util/launcher';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ChangesQuery, ContentQuery, DiffQuery, PushRequest } from '@berth/protocol';
import type { ChangesService } from '../changes/service';
import { killGroup } from '../util/process';
import { parseBody, sessionIdOf } from './routes';

/** Streams a git process's stdout as the response; the process ends with the request. */
function streamOut(reply: FastifyReply, child: PipedChild, type: string): FastifyReply {
  reply.raw.once('close', () => killGroup(child));
  child.stderr.resume();
  return reply.type(type).send(child.stdout);
}

/** The session's work: changes, diff, content, bundle and push (see ChangesService). */
export function registerChangesRoutes(app: FastifyInstance, changes: ChangesService): void {
  app.get('/v1/sessions/:id/changes', async (request) => {
    const id = sessionIdOf(request);
    return changes.changes(request.user, id, parseBody(ChangesQuery, request.query));
  });

  app.get('/v1/sessions/:id/diff', async (request, reply) => {
    const id = sessionIdOf(request);
    const child = await changes.diff(request.user, id, parseBody(DiffQuery, request.query));
    return streamOut(reply, child, 'text/x-diff; charset=utf-8');
  });

  app.get('/v1/sessions/:id/content', async (request, reply) => {
    const id = sessionIdOf(request);
    const child = await changes.content(request.user, id, parseBody(ContentQuery, request.query));
    return streamOut(reply.header('cache-control', 'private, max-age=31536000, immutable'), child, 'application/octet-stream');
  });

  app.get('/v1/sessions/:id/bundle', async (request, reply) => {
    const id = sessionIdOf(request);
    const { stream, head, branch } = await changes.bundle(request.user, id);
    void reply.header('x-berth-head', head).header('x-berth-branch', branch);
    void reply.header('content-disposition', `attachment; filename="${id}.bundle"`);
    return streamOut(reply, stream, 'application/x-git-bundle');
  });

  app.post('/v1/sessions/:id/push', async (request) => {
    const id = sessionIdOf(request);
    const body = parseBody(PushRequest, request.body ?? {});
    return changes.push(request.user, id, body.branch);
  });
}
