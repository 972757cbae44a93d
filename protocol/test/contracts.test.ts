// The typed contracts every part shares: failure codes, the API error, the backoff, the redactor.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMessage, ApiError, ErrorInfo, FAILURE_CODES, REDACTED, Redactor, ShownError, StreamEvent, backoffDelay } from '../src/index';

describe('failure codes', () => {
  it('a known code parses as itself; one a newer server invented reads as internal, its message kept', () => {
    for (const code of FAILURE_CODES) assert.equal(ErrorInfo.parse({ code, message: 'm' }).code, code);
    assert.deepEqual(ErrorInfo.parse({ code: 'quantum_flux', message: 'what happened' }), { code: 'internal', message: 'what happened' });
  });

  it('an error event and an agent error are typed by the same enum', () => {
    const event = StreamEvent.parse({ id: 3, sessionId: 's', ts: new Date(0).toISOString(), type: 'error', data: { code: 'llm_auth', message: 'bad key' } });
    assert.ok(event.type === 'error' && event.data.code === 'llm_auth');
    const agent = AgentMessage.parse({ type: 'error', code: 'not_a_code', message: 'x' });
    assert.ok(agent.type === 'error' && agent.code === 'internal');
  });

  it('what the chat shows also takes API and client codes', () => {
    assert.equal(ShownError.parse({ code: 'network', message: 'offline' }).code, 'network');
    assert.equal(ShownError.parse({ code: 'push_rejected', message: 'x' }).code, 'push_rejected');
    assert.equal(ShownError.parse({ code: 'disk_full', message: 'x' }).code, 'disk_full');
    assert.equal(ShownError.parse({ code: '??', message: 'x' }).code, 'internal');
  });
});

describe('ApiError', () => {
  it('carries status, code, message and details; permanent only for 401/403/404', () => {
    const err = new ApiError(409, 'conflict', 'busy', { field: 'x' });
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'ApiError');
    assert.deepEqual([err.status, err.code, err.message, err.details], [409, 'conflict', 'busy', { field: 'x' }]);
    assert.equal(err.isPermanent, false);
    assert.deepEqual([401, 403, 404, 500, 0].map((s) => new ApiError(s, 'internal', '').isPermanent), [true, true, true, false, false]);
  });
});

describe('backoffDelay', () => {
  it('starts at initialMs, doubles, caps, and randomises only the jitter share', () => {
    const options = { initialMs: 100, maxMs: 1000, jitter: 0.25 };
    assert.deepEqual([0, 1, 2, 3, 4, 50].map((a) => backoffDelay(a, options, () => 1)), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoffDelay(2, options, () => 0), 300);
    assert.equal(backoffDelay(-1, options, () => 1), 100, 'a negative attempt is the first');
  });
});

describe('Redactor', () => {
  it('ignores values too short to be secrets and redacts URL passwords', () => {
    const r = new Redactor(['short', undefined, null, 'long-enough-secret']);
    assert.deepEqual(r.secretsList(), ['long-enough-secret']);
    assert.equal(r.redact('short long-enough-secret https://u:p@h/'), `short ${REDACTED} https://u:${REDACTED}@h/`);
  });
});
