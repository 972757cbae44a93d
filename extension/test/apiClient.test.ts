import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiClient, ApiError } from '../src/session/apiClient';
import { startRealServer, type RealServer } from './helpers/realServer';

describe('ApiClient (real server on loopback)', () => {
  let real: RealServer;
  before(async () => {
    real = await startRealServer({ agentCommand: 'cat' });
  });
  after(async () => {
    await real?.close();
  });

  it('parses responses with the protocol schemas', async () => {
    const started = await real.api.startSession({ repo: { url: real.repoUrl }, prompt: 'x', autoInitiate: true });
    assert.match(started.sessionId, /^ses_/);
    assert.equal(started.status, 'preparing');
    const list = await real.api.listSessions();
    assert.ok(list.some((s) => s.id === started.sessionId));
    const ticket = await real.api.streamTicket(started.sessionId);
    assert.ok(ticket.ticket.length > 10);
    const url = new URL(real.api.streamUrl(started.sessionId, ticket.ticket, 7));
    assert.equal(url.protocol, 'ws:');
    assert.equal(url.pathname, `/v1/sessions/${started.sessionId}/stream`);
    assert.equal(url.searchParams.get('after'), '7');
    assert.equal(url.searchParams.get('ticket'), ticket.ticket);
    assert.equal(typeof (await real.api.preparationLog(started.sessionId)), 'string');
    assert.deepEqual(await real.api.models(), { models: [], default: null }, 'a command agent offers no model');
    await assert.rejects(real.api.startSession({ repo: { url: real.repoUrl }, prompt: 'x', autoInitiate: true, model: 'gpt-x' }), /no model to choose/);
  });

  it('turns server errors into ApiError with the server code', async () => {
    const err = await real.api.getSession('ses_doesnotexistdoesnotexist').catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 404);
    assert.equal(err.code, 'not_found');
    assert.equal(err.isPermanent, true);
  });

  it('a wrong token is 401 and the error does not contain it', async () => {
    const secret = 'berth_wrong_token_that_must_not_leak_123';
    const bad = new ApiClient({ baseUrl: real.server.baseUrl, token: secret });
    const err = await bad.listSessions().catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 401);
    assert.ok(!JSON.stringify({ ...err, message: err.message, stack: err.stack }).includes(secret));
  });

  it('an unreachable server is a network ApiError without the token or headers', async () => {
    const secret = 'berth_secret_token_for_a_dead_server_456';
    const dead = new ApiClient({ baseUrl: 'http://127.0.0.1:9', token: secret }, { timeoutMs: 2000 });
    const err = await dead.listSessions().catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.code, 'network');
    assert.equal(err.status, 0);
    assert.equal(err.isPermanent, false);
    const everything = JSON.stringify({ ...err, message: err.message, stack: err.stack });
    assert.ok(!everything.includes(secret));
    assert.ok(!/authorization/i.test(everything));
  });
});
