import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { answerOf, isReady, makeRepo, sandboxPids, sleep, startTestServer, turnComplete, type TestServer } from './helpers';

// The agent answers with the number of earlier turns it was given and the last earlier user message.
const TRANSCRIPT_AGENT = `node -e '
const t = JSON.parse(require("fs").readFileSync(process.env.BERTH_TRANSCRIPT_FILE, "utf8"));
const users = t.filter((e) => e.role === "user").map((e) => e.text);
let input = ""; process.stdin.on("data", (d) => input += d).on("end", () =>
  process.stdout.write("earlier=" + users.length + " last=" + (users.at(-1) ?? "-") + " now=" + input));'`;

describe('resume: a reaped sandbox comes back with its conversation', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ agentCommand: TRANSCRIPT_AGENT, idleTimeoutMs: 400 });
  });
  after(() => t.close());

  it('reaps an idle sandbox, then a message re-creates it with the same steps and the transcript', async () => {
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'my name is Ada', autoInitiate: true, setup: ['echo setup > s.txt'] });
    const id = body.sessionId;
    const stream = await alice.stream(id);
    await stream.waitFor(turnComplete);
    assert.equal(answerOf(stream.events), 'earlier=0 last=- now=my name is Ada');
    await alice.waitFor(id, (s) => s.status === 'sleeping', 10_000);
    await sleep(100);
    assert.deepEqual(sandboxPids(id), [], 'the reaper stopped the agent host');

    const sent = await alice.message(id, 'what is my name?');
    assert.equal(sent.status, 202);
    assert.equal(sent.body.status, 'preparing');
    const turnId = sent.body.turnId as string;
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === turnId, 20_000);
    const resumeSteps = stream.events.filter((e) => e.type === 'preparing' && e.data.resume === true);
    const stepNames = resumeSteps.map((e) => (e.type === 'preparing' ? e.data.step : ''));
    for (const step of ['disk_check', 'sandbox', 'agent_start', 'session_import', 'initiate', 'ready']) {
      assert.ok(stepNames.includes(step as never), `resume announced ${step}: ${stepNames}`);
    }
    assert.equal(answerOf(stream.events, turnId), 'earlier=1 last=my name is Ada now=what is my name?');
    // The message was persisted once, before its answer.
    const persisted = stream.persisted();
    const userIdx = persisted.findIndex((e) => e.type === 'user_message' && e.data.turnId === turnId);
    const answerIdx = persisted.findIndex((e) => e.type === 'assistant_output' && e.data.turnId === turnId);
    assert.ok(userIdx >= 0 && userIdx < answerIdx);
    assert.equal(persisted.filter((e) => e.type === 'user_message').length, 2);
    await stream.close();
  });

  it('when the agent host dies mid-turn: a persisted error, and the next message resumes', async () => {
    const slow = await startTestServer({ agentCommand: 'echo started; sleep 30' });
    try {
      const alice = slow.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'long job', autoInitiate: true });
      const id = body.sessionId;
      const stream = await alice.stream(id);
      await stream.waitFor((e) => e.type === 'assistant_output');
      const host = slow.server.ctx.runtimes.get(id)?.agent.pid;
      assert.ok(host);
      process.kill(host, 'SIGKILL');
      const error = await stream.waitFor((e) => e.type === 'error', 10_000);
      assert.ok(error.type === 'error' && error.data.code === 'agent_exited');
      const done = await stream.waitFor(turnComplete);
      assert.ok(done.type === 'turn_complete' && done.data.status === 'failed');
      await alice.waitFor(id, (s) => s.status === 'sleeping');
      const before = stream.persisted().length;

      assert.equal((await alice.message(id, 'again')).status, 202);
      await stream.waitFor((e) => isReady(e) && stream.events.indexOf(e) > stream.events.indexOf(done), 20_000);
      assert.ok(stream.persisted().length > before, 'nothing earlier was lost and the new turn is recorded');
      assert.equal(stream.persisted()[0]?.type, 'user_message');
      await stream.close();
    } finally {
      await slow.close();
    }
  });
});
