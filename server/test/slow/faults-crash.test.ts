// Issue 7: `kill -9` of the real server at each preparation step in turn, and during a turn. After
// the restart every session settles within 30 s, the persisted events are intact (count and order)
// and nothing of the killed server is left: no process, no temp file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_PROTOCOL_VERSION, type PersistedEvent } from '@berth/protocol';
import { DEFAULT_IMAGE, listLabelledContainers } from '../../src/sandbox/devcontainer/cli';
import { AGENT_HOST, answerOf, fakeAgentHost, makeRepo, tempDir, sleep } from '../helpers';
import { dockerOrSkip, dockerReadiness } from './docker';
import {
  alive,
  assertIntact,
  firstTurnHangs,
  kill9,
  leftoverTempFiles,
  persistedEvents,
  processesMentioning,
  startCli,
  stop,
  SwitchableGitRemote,
  waitSettled,
  type CliServer,
} from './faults';

/** An agent host that takes `ms` to come up (a slow `agent_start`), then is the real one. */
function slowAgentHost(ms: number): string {
  const file = join(tempDir('berth-slowhost-'), 'slow-host.mjs');
  writeFileSync(file, `await new Promise((r) => setTimeout(r, ${ms}));\nawait import(${JSON.stringify(AGENT_HOST)});\n`);
  return file;
}

interface CrashCase {
  step: 'clone' | 'setup' | 'agent_start' | 'initiate';
  args: () => string[];
  repo: () => string;
  setup?: string[];
  /** Extra condition before the kill (the step is really under way). */
  underWay?: () => boolean;
  beforeRestart?: () => void;
}

/** Kills the server, restarts it, and checks what must hold after any crash; returns the new server. */
async function crashAndRestart(
  dataDir: string,
  first: CliServer,
  id: string,
  args: string[],
  beforeRestart?: () => void,
): Promise<{ second: CliServer; before: PersistedEvent[]; killed: number[] }> {
  const before = await persistedEvents(first.api, id);
  // Everything the server started for this session or in its data dir (git, setup, agent host).
  const killed = [...processesMentioning(id, [first.child.pid!]), ...processesMentioning(dataDir, [first.child.pid!])].map((p) => p.pid);
  await kill9(first);
  beforeRestart?.();
  const restartedAt = Date.now();
  const second = await startCli(dataDir, args);
  const settled = await waitSettled(second.api, id, 30_000);
  assert.ok(Date.now() - restartedAt < 30_000, `settled (${settled.status}) ${Date.now() - restartedAt} ms after the restart`);
  const left = alive(killed);
  assert.deepEqual(
    processesMentioning(id).concat(processesMentioning(dataDir)).filter((p) => left.includes(p.pid)),
    [],
    'the killed server left processes running',
  );
  return { second, before, killed };
}

describe('faults: kill -9 of the server at each preparation step', { concurrency: false }, () => {
  let remote: SwitchableGitRemote;
  before(async () => {
    remote = await SwitchableGitRemote.start();
  });
  after(async () => {
    await remote?.close();
  });

  const cases: CrashCase[] = [
    {
      step: 'clone',
      args: () => ['--agent-command', 'cat'],
      // Served by a git daemon behind a proxy that first holds every connection (a stalled clone).
      repo: () => {
        remote.hang = true;
        return remote.url(makeRepo());
      },
      underWay: () => remote.heldCount() > 0,
      beforeRestart: () => {
        remote.hang = false;
      },
    },
    { step: 'setup', args: () => ['--agent-command', 'cat'], repo: () => makeRepo(), setup: ['sleep 4'] },
    { step: 'agent_start', args: () => ['--agent-command', 'cat', '--agent-host', slowAgentHost(3000)], repo: () => makeRepo() },
    {
      step: 'initiate',
      args: () => ['--agent-host', fakeAgentHost({ FAKE_TURN_DELAY_MS: '3000', FAKE_REAL_VERSION: AGENT_PROTOCOL_VERSION })],
      repo: () => makeRepo(),
    },
  ];

  for (const c of cases) {
    it(`during ${c.step}: resumed to ready after the restart, the prompt answered once, nothing left behind`, async () => {
      const dataDir = tempDir();
      const args = c.args();
      const first = await startCli(dataDir, args);
      let second: CliServer | undefined;
      try {
        const r = await first.api.start({ repo: { url: c.repo() }, prompt: `crash at ${c.step}`, autoInitiate: true, setup: c.setup ?? [] });
        assert.equal(r.status, 202);
        const id = r.body.sessionId as string;
        await first.api.waitFor(id, (s) => s.step === c.step && (c.underWay?.() ?? true), 20_000);
        await sleep(300);
        const crash = await crashAndRestart(dataDir, first, id, args, c.beforeRestart);
        second = crash.second;
        const done = await second.api.waitFor(id, (s) => s.status === 'ready' || s.status === 'failed', 30_000);
        assert.equal(done.status, 'ready', JSON.stringify(done.lastError));
        const after = await persistedEvents(second.api, id);
        assertIntact(crash.before, after);
        assert.equal(after.filter((e) => e.type === 'user_message').length, 1, 'the prompt was not duplicated');
        assert.match(answerOf(after), new RegExp(`crash at ${c.step}`));
        assert.deepEqual(leftoverTempFiles(dataDir, id), []);
      } finally {
        await kill9(first);
        if (second) await stop(second);
      }
    });
  }

  it('during a turn: a persisted error, the session sleeps, the next message resumes it; nothing earlier lost', async () => {
    const dataDir = tempDir();
    const args = ['--agent-command', firstTurnHangs()];
    const first = await startCli(dataDir, args);
    let second: CliServer | undefined;
    try {
      const r = await first.api.start({ repo: { url: makeRepo() }, prompt: 'long job', autoInitiate: true });
      const id = r.body.sessionId as string;
      const stream = await first.api.stream(id);
      await stream.waitFor((e) => e.type === 'assistant_output', 20_000, 'output of the first turn');
      await stream.close();
      const crash = await crashAndRestart(dataDir, first, id, args);
      second = crash.second;
      const slept = await second.api.waitFor(id, (s) => s.status === 'sleeping', 10_000);
      assert.equal(slept.status, 'sleeping');
      const afterRestart = await persistedEvents(second.api, id);
      assertIntact(crash.before, afterRestart);
      const tail = afterRestart.slice(crash.before.length).map((e) => e.type);
      assert.ok(tail.includes('error') && tail.includes('turn_complete'), `persisted error and failed turn: ${tail}`);
      const sent = await second.api.message(id, 'are you back?');
      assert.equal(sent.status, 202);
      await second.api.waitFor(id, (s) => s.status === 'ready', 30_000);
      const final = await persistedEvents(second.api, id);
      assertIntact(afterRestart, final);
      assert.match(answerOf(final, sent.body.turnId), /are you back\?/);
      assert.deepEqual(leftoverTempFiles(dataDir, id), []);
    } finally {
      await kill9(first);
      if (second) await stop(second);
    }
  });
});

describe('faults: kill -9 of the server during the sandbox step (real Docker)', () => {
  it('after the restart: ready within 30 s, one container for the session, no CLI or config folder left', async (ctx) => {
    if (!dockerOrSkip(ctx, await dockerReadiness())) return;
    const dataDir = tempDir();
    const args = ['--provider', 'devcontainer', '--agent-command', 'cat'];
    const repo = makeRepo({ '.devcontainer/devcontainer.json': JSON.stringify({ image: DEFAULT_IMAGE, postCreateCommand: 'sleep 6' }) });
    const first = await startCli(dataDir, args);
    let second: CliServer | undefined;
    try {
      const r = await first.api.start({ repo: { url: repo }, prompt: 'crash at sandbox', autoInitiate: true });
      const id = r.body.sessionId as string;
      await first.api.waitFor(id, (s) => s.step === 'sandbox', 20_000);
      await sleep(2500); // the container exists; postCreateCommand is running
      const firstPid = first.child.pid!;
      const crash = await crashAndRestart(dataDir, first, id, args);
      second = crash.second;
      const done = await second.api.waitFor(id, (s) => s.status === 'ready' || s.status === 'failed', 40_000);
      assert.equal(done.status, 'ready', JSON.stringify(done.lastError));
      assertIntact(crash.before, await persistedEvents(second.api, id));
      const containers = (await listLabelledContainers()).filter((c) => c.sessionId === id);
      assert.equal(containers.length, 1, 'only the new container of the session');
      const configRoot = join(tmpdir(), 'berth-devcontainer');
      const stale = existsSync(configRoot) ? readdirSync(configRoot).filter((n) => n.startsWith(`${id}-${firstPid}-`)) : [];
      assert.deepEqual(stale, [], 'the killed server\'s override config folder was removed');
      assert.deepEqual(leftoverTempFiles(dataDir, id), []);
      await second.api.request('DELETE', `/v1/sessions/${id}`);
    } finally {
      await kill9(first);
      if (second) await stop(second);
    }
  });
});
