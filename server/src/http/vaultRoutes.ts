import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CredentialHost, PutCredentialRequest, PutSecretRequest, SecretName } from '@berth/protocol';
import { z } from 'zod';
import type { Vault } from '../vault/vault';
import { parseBody } from './routes';

/** A path parameter checked with its schema; a bad one is a 400 naming it. */
function param<T extends z.ZodType>(request: FastifyRequest, name: string, schema: T): z.infer<T> {
  return parseBody(z.object({ [name]: schema }), request.params)[name] as z.infer<T>;
}

const SecretScope = z.strictObject({ repo: z.string().trim().min(1).max(2048).optional() });

/** A user's git credentials and secrets: values go in, names and scopes come out, never values. */
export function registerVaultRoutes(app: FastifyInstance, vault: Vault): void {
  app.put('/v1/credentials/:host', async (request) => {
    const host = param(request, 'host', CredentialHost);
    const body = parseBody(PutCredentialRequest, request.body);
    return vault.putCredential(request.user, host, body.username, body.token);
  });

  app.get('/v1/credentials', async (request) => ({ credentials: await vault.listCredentials(request.user) }));

  app.delete('/v1/credentials/:host', async (request, reply) => {
    await vault.deleteCredential(request.user, param(request, 'host', CredentialHost));
    return reply.code(204).send();
  });

  app.put('/v1/secrets/:name', async (request) => {
    const name = param(request, 'name', SecretName);
    const body = parseBody(PutSecretRequest, request.body);
    return vault.putSecret(request.user, name, body.value, body.repo, body.exposeTo);
  });

  app.get('/v1/secrets', async (request) => ({ secrets: await vault.listSecrets(request.user) }));

  app.delete('/v1/secrets/:name', async (request, reply) => {
    const name = param(request, 'name', SecretName);
    const { repo } = parseBody(SecretScope, request.query);
    await vault.deleteSecret(request.user, name, repo);
    return reply.code(204).send();
  });
}
