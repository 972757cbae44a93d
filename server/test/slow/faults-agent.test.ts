// Issue 7: the agent host dies (kill -9) in the middle of a turn. A persisted `error` ends the turn,
// the next message resumes the session (a new agent host, the conversation restored), and nothing
// persisted earlier is lost.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { answerOf, sandboxPids, startTestServer, makeRepo } from '../helpers';
import { assertIntact, firstTurnHangs, persistedEvents } from './faults';

describe('faults: the agent host dies mid-turn', () => {
  it('persists an error, the next message resumes the session, earlier events intact', async () => {
    const t = await startTestServer({ agentCommand: firstTurnHangs() });
    try {
      const alice = t.api('alice');
      const r = await alice.start({ repo: { url: makeRepo() }, prompt: 'first', autoInitiate: true });
      const id = r.body.sessionId as string;
      const stream = await alice.stream(id);
      await stream.waitFor((e) => e.type === 'assistant_output', 20_000, 'partial output');
      const before = await persistedEvents(alice, id);
      const host = sandboxPids(id).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('agent-host'));
      assert.equal(host.length, 1, 'one agent host runs the session');
      process.kill(host[0]!, 'SIGKILL');

      const error = await stream.waitFor((e) => e.type === 'error', 10_000, 'persisted error');
      assert.ok(error.id > 0, 'the error is persisted');
      await stream.waitFor((e) => e.type === 'turn_complete', 10_000, 'the turn ends');
      const settled = await alice.waitFor(id, (s) => s.status !== 'running', 10_000);
      assert.notEqual(settled.status, 'failed', 'the session is not failed: a message can resume it');
      const afterDeath = await persistedEvents(alice, id);
      assertIntact(before, afterDeath);
      assert.match(answerOf(afterDeath), /partial answer/, 'the partial output is kept');

      const sent = await alice.message(id, 'second');
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
      await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === sent.body.turnId, 30_000, 'second turn');
      const final = await persistedEvents(alice, id);
      assertIntact(afterDeath, final);
      assert.match(answerOf(final, sent.body.turnId), /second/);
      assert.deepEqual(sandboxPids(id).filter((pid) => pid === host[0]), []);
      await stream.close();
    } finally {
      await t.close();
    }
  });
});
