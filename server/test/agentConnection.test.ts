// The server's end of the agent host pipe: waiting on a host that is already gone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launch } from '../src/util/launcher';
import { AgentConnection } from '../src/agent/connection';
import { BerthError } from '../src/util/errors';

describe('agent connection', () => {
  it('waiting on a host that already exited rejects with its exit, not a ReferenceError', async () => {
    const child = launch(process.execPath, ['-e', 'process.exit(3)']);
    const connection = new AgentConnection(child, () => {});
    await new Promise<void>((resolve) => connection.onExit(() => resolve()));
    assert.equal(connection.alive, false);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // The exit listener runs at once here: before the fix it called cleanup() while offExit was
      // still in its temporal dead zone.
      const err = await connection.handshake(5_000).then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BerthError, `got ${String(err)}`);
      assert.equal(err.code, 'agent_exited');
      assert.match(err.message, /code 3/);
      const aborted = new AbortController();
      aborted.abort();
      const started = Date.now();
      await assert.rejects(connection.waitFor(() => undefined, 5_000, 'answer', aborted.signal), /exited|cancelled/);
      assert.ok(Date.now() - started < 1_000, 'answered at once, not after the timeout');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
