// Invariant 6 and the durable job table: leases, reclaim after a crash, queueing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CLI, makeRepo, queryTestDb, sleep, startTestServer, tempDir, testDatabase, TEST_PG_URL } from './helpers';
import { spawnSync } from 'node:child_process';
import { describeStore, openStore } from '../src/store/open';
import type { SessionRecord, Store } from '../src/store/store';
import { eventHistory } from '../src/events/history';
import { statSync } from 'node:fs';
import { SqliteStore } from '../src/store/sqlite/sqliteStore';
import { EventBus } from '../src/events/bus';
import { EventLog } from '../src/events/log';
import { SessionLifecycle } from '../src/sessions/lifecycle';
import { FencedError } from '../src/store/store';
import { transcriptFrom } from '../src/preparation/steps/sessionImport';

/** The store under test: SQLite, or a fresh PostgreSQL database in the matrix's second run. */
async function freshStore(): Promise<Store> {
  const url = TEST_PG_URL ? await testDatabase(`berth_store_${randomBytes(6).toString('hex')}`) : null;
  return openStore(url, join(tempDir(), 'db'), 'test');
}

function session(id: string): SessionRecord {
  const now = new Date().toISOString();
  return {
    id, owner: 'alice', repoUrl: '/r', repoBranch: null, prompt: null, setup: [], autoInitiate: false,
    status: 'preparing', step: null, createdAt: now, updatedAt: now, preparedAt: null, initiatedAt: null,
    lastError: null, lastEventId: 0, sandbox: null, initialTurnId: null, lastActivityAt: now,
  };
}

describe('job store', () => {
  it('shares one ticket secret (the first stored) and spends a ticket nonce once until it is pruned', async () => {
    const store = await freshStore();
    try {
      const secrets = await Promise.all(['first', 'second', 'third'].map((c) => store.settingOnce('ticket_secret', c)));
      assert.equal(new Set(secrets).size, 1, 'racing creators all get the same secret');
      assert.equal(await store.settingOnce('ticket_secret', 'later'), secrets[0]);
      const spends = await Promise.all([1, 2, 3].map(() => store.spendTicket('nonce_a', 2000)));
      assert.deepEqual(spends.filter(Boolean), [true], 'spent exactly once among concurrent redeemers');
      assert.equal(await store.spendTicket('nonce_b', 5000), true);
      assert.equal(await store.pruneSpentTickets(1999), 0, 'nothing expired yet');
      assert.equal(await store.pruneSpentTickets(2000), 1);
      assert.equal(await store.spendTicket('nonce_b', 5000), false, 'a live nonce survives pruning');
      await store.ping();
    } finally {
      await store.close();
    }
  });

  it('claims due jobs once, reclaims them after the lease expires, and keeps event ids per session', async () => {
    const store = await freshStore();
    await store.createSession(session('ses_a'), { sessionId: 'ses_a', kind: 'prepare', payload: { mode: 'async' }, runAt: 1000 });
    assert.equal(await store.claimJob('A', 999, 100, 'i'), null, 'not due yet');
    const job = await store.claimJob('A', 1000, 100, 'i');
    assert.equal(job?.attempts, 1);
    assert.equal(await store.claimJob('B', 1050, 100, 'i'), null, 'leased to A');
    const reclaimed = await store.claimJob('B', 1101, 100, 'i');
    assert.equal(reclaimed?.id, job?.id, 'the lease expired: B takes it over');
    assert.equal(reclaimed?.attempts, 2);
    assert.equal(await store.renewLease(job.id, 'A', 5000), false, 'A lost the lease');
    assert.equal(await store.claimJob('B', 1300, 100, 'i'), null, 'an owner never reclaims a job it still runs');
    assert.equal((await store.claimJob('C', 1300, 100, 'i'))?.attempts, 3);

    await store.createSession(session('ses_b'));
    const e1 = await store.appendEvent('ses_a', 'user_message', { turnId: 't', text: 'x' });
    const e2 = await store.appendEvent('ses_b', 'user_message', { turnId: 't', text: 'y' });
    const e3 = await store.appendEvent('ses_a', 'turn_complete', { turnId: 't', status: 'completed', durationMs: 1 });
    assert.deepEqual([e1.id, e2.id, e3.id], [1, 1, 2]);
    assert.equal(await store.deleteSessionIfEmpty('ses_a'), false, 'holds events');
    await store.createSession(session('ses_c'));
    assert.equal(await store.deleteSessionIfEmpty('ses_c'), true);
    assert.equal(await store.integrityCheck(), 'ok');
    await store.close();
  });

  it('hands concurrent claimers different jobs and releases only its own instance\'s leases', async () => {
    const store = await freshStore();
    try {
      for (const id of ['ses_1', 'ses_2', 'ses_3', 'ses_4']) {
        await store.createSession(session(id), { sessionId: id, kind: 'prepare', payload: { mode: 'async' }, runAt: 0 });
      }
      const claims = await Promise.all(['x:1', 'x:2', 'y:1', 'y:2', 'y:3'].map((owner) => store.claimJob(owner, 10, 1000, 'i')));
      const taken = claims.filter((j) => j !== null);
      assert.equal(taken.length, 4, 'four jobs, five claimers: one comes away empty');
      assert.equal(new Set(taken.map((j) => j.id)).size, 4, 'no job was claimed twice');
      const ofX = claims.slice(0, 2).filter((j) => j !== null).length;
      assert.equal(await store.releaseLeases('x:'), ofX, 'only the leases of owners x:…');
      assert.equal((await store.claimJob('z', 20, 1000, 'i')) !== null, ofX > 0, 'released jobs are claimable again');
    } finally {
      await store.close();
    }
  });

  it('runs a job addressed to an instance only there, until that instance is declared dead', async () => {
    const store = await freshStore();
    try {
      await store.createSession(session('ses_t'));
      await store.enqueueJob({ sessionId: 'ses_t', kind: 'message', payload: { mode: 'async' }, runAt: 0, target: 'inst_a' });
      await store.heartbeat('inst_a', 1000);
      await store.heartbeat('inst_b', 5000);
      assert.equal(await store.claimJob('runner_b', 10, 1000, 'inst_b'), null, 'addressed to inst_a');
      assert.equal(await store.instanceAlive('inst_a', 900), true);
      assert.equal(await store.instanceAlive('inst_a', 1001), false);
      assert.deepEqual(await store.takeDeadInstances(2000), ['inst_a']);
      assert.deepEqual(await store.takeDeadInstances(2000), [], 'a death is handed out once');
      assert.equal(await store.claimJob('runner_b', 10, 1000, 'inst_b'), null, 'still addressed until freed');
      await store.freeJobsOf('inst_a');
      const job = await store.claimJob('runner_b', 10, 1000, 'inst_b');
      assert.equal(job?.kind, 'message', 'freed for anyone once its instance died');
      assert.equal(job?.target, null);
      await store.updateSession('ses_t', { instance: 'inst_b', status: 'ready' });
      assert.deepEqual((await store.sessionsOn('inst_b', ['ready'])).map((s) => s.id), ['ses_t']);
      assert.deepEqual(await store.sessionsOn('inst_a', ['ready']), []);
    } finally {
      await store.close();
    }
  });

  it('numbers events per session without gaps or repeats under concurrent appends', async () => {
    const store = await freshStore();
    try {
      await store.createSession(session('ses_n'));
      const appended = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store.appendEvent('ses_n', 'user_message', { turnId: 't', text: String(i) })),
      );
      assert.deepEqual(appended.map((e) => e.id).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));
      const read = await store.readEvents('ses_n', 10, 5);
      assert.deepEqual(read.map((e) => e.id), [11, 12, 13, 14, 15], 'after=10 starts right after the cursor');
      assert.equal((await store.getSession('ses_n'))?.lastEventId, 40);
    } finally {
      await store.close();
    }
  });
});

describe('store selection', () => {
  it('refuses what is not a postgres:// URL, and never prints the database password', () => {
    const serve = (store: string) =>
      spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', tempDir(), '--store', store], {
        encoding: 'utf8',
        env: { ...process.env, BERTH_TOKENS: 'alice:tok_alice_0123456789' },
        timeout: 20_000,
      });
    const wrong = serve('mysql://x@y/z');
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /--store must be a postgres:\/\/ URL/);
    // Nothing listens on port 1: the connection fails, and the error names no password.
    const unreachable = serve('postgres://berth:s3cr3t-pw@127.0.0.1:1/berth');
    assert.equal(unreachable.status, 1);
    assert.ok(unreachable.stderr.length > 0, 'it says why it stopped');
    assert.ok(!`${unreachable.stdout}${unreachable.stderr}`.includes('s3cr3t-pw'), unreachable.stderr);
    assert.equal(describeStore('postgres://berth:s3cr3t-pw@db:5432/berth'), 'postgres://db:5432/berth');
  });
});

describe('invariant 6: rescheduling reads the clock when it reschedules', () => {
  it('renews leases from the current clock, not the one captured when the job started', async () => {
    let now = 1_000_000;
    const t = await startTestServer({ jobLeaseMs: 900, agentCommand: 'cat', preparationBudgetMs: 10 * 3_600_000 }, { clock: () => now });
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true, setup: ['sleep 2'] });
      await alice.waitFor(body.sessionId, (s) => s.step === 'setup');
      now += 3_600_000; // an hour passes while the job runs
      await sleep(700); // at least one renewal (every lease/3 = 300 ms)
      const [row] = await queryTestDb<{ lease_until: number }>(t.dataDir, 'SELECT lease_until FROM jobs WHERE session_id = ?', [body.sessionId]);
      assert.equal(row?.lease_until, now + 900, 'lease runs from the clock at renewal time');
      await alice.waitFor(body.sessionId, (s) => s.status === 'ready' || s.status === 'running');
    } finally {
      await t.close();
    }
  });

  it('a shutdown requeues a running job at the time of the shutdown', async () => {
    let now = 5_000_000;
    const dataDir = tempDir();
    const t = await startTestServer({ dataDir }, { clock: () => now });
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true, setup: ['sleep 20'] });
    await alice.waitFor(body.sessionId, (s) => s.step === 'setup');
    now += 42_000;
    await t.close();
    const [row] = await queryTestDb<{ state: string; run_at: number }>(dataDir, 'SELECT state, run_at FROM jobs WHERE session_id = ?', [body.sessionId]);
    assert.deepEqual(row, { state: 'queued', run_at: 5_042_000 });
  });
});

describe('concurrency limit', () => {
  it('queues a burst beyond the limit and tells each session its place', async () => {
    const t = await startTestServer({ maxConcurrentPreparations: 1, agentCommand: 'cat' });
    try {
      const alice = t.api('alice');
      const repo = makeRepo();
      const first = await alice.start({ repo: { url: repo }, prompt: 'a', autoInitiate: true, setup: ['sleep 1'] });
      await alice.waitFor(first.body.sessionId, (s) => s.step === 'setup');
      const second = await alice.start({ repo: { url: repo }, prompt: 'b', autoInitiate: true });
      const stream = await alice.stream(second.body.sessionId);
      const queued = await stream.waitFor((e) => e.type === 'preparing' && e.data.step === 'queued', 5000);
      assert.ok(queued.type === 'preparing' && /queued: \d+ ahead/.test(queued.data.message));
      await alice.waitFor(second.body.sessionId, (s) => s.status === 'ready', 20_000);
      await stream.close();
    } finally {
      await t.close();
    }
  });
});

describe('reaper', () => {
  it('fails a preparation that overruns its budget, cleanly and with a clear message', async () => {
    let now = 9_000_000;
    const t = await startTestServer({ preparationBudgetMs: 60_000 }, { clock: () => now });
    try {
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'x', autoInitiate: true, setup: ['sleep 30'] });
      await alice.waitFor(body.sessionId, (s) => s.step === 'setup');
      now += 61_000;
      const failed = await alice.waitFor(body.sessionId, (s) => s.status === 'failed', 5000);
      assert.match(failed.lastError!.message, /exceeded its time budget of 60 s/);
      assert.equal(failed.lastError!.step, 'setup');
    } finally {
      await t.close();
    }
  });
});

describe('a long history', () => {
  it('is read a page at a time, whole and in order: the transcript a resume imports sees every turn', async () => {
    const store = await freshStore();
    try {
      await store.createSession(session('ses_long'));
      const turns = 700; // 1400 events: more than one page of the default size
      for (let i = 0; i < turns; i++) {
        await store.appendEvent('ses_long', 'user_message', { turnId: `t${i}`, text: `question ${i}` });
        await store.appendEvent('ses_long', 'assistant_output', { turnId: `t${i}`, text: `answer ${i}` });
      }
      const ids: number[] = [];
      for await (const e of eventHistory(store, 'ses_long', 0, 64)) ids.push(e.id);
      assert.deepEqual(ids, Array.from({ length: turns * 2 }, (_, i) => i + 1), 'every event once, in order, across pages');
      const tail: number[] = [];
      for await (const e of eventHistory(store, 'ses_long', 1395, 2)) tail.push(e.id);
      assert.deepEqual(tail, [1396, 1397, 1398, 1399, 1400], 'starts after the cursor');

      const transcript = await transcriptFrom(eventHistory(store, 'ses_long'), 't699');
      assert.equal(transcript.length, (turns - 1) * 2, 'the excluded turn is left out, no other');
      assert.deepEqual(transcript.at(-1), { role: 'assistant', text: 'answer 698' });
      assert.deepEqual(transcript[0], { role: 'user', text: 'question 0' });
    } finally {
      await store.close();
    }
  });
});

describe('the session lifecycle', () => {
  it('applies only the transitions of its table, each as one compare-and-set announced by one status event', async () => {
    const store = await freshStore();
    try {
      const bus = new EventBus();
      const lifecycle = new SessionLifecycle({ store, events: new EventLog(store, bus) });
      await store.createSession({ ...session('ses_life'), instance: 'me' });
      const statuses: string[] = [];
      bus.subscribe('ses_life', (e) => e.type === 'status' && statuses.push(e.data.status));

      assert.equal(await lifecycle.transition('ses_life', 'sleeping'), false, 'preparing → sleeping is not in the table');
      assert.equal((await store.getSession('ses_life'))?.status, 'preparing');
      assert.deepEqual(statuses, [], 'a refused transition says nothing');

      assert.equal(await lifecycle.transition('ses_life', 'ready'), true);
      const racers = await Promise.all(Array.from({ length: 10 }, () => lifecycle.transition('ses_life', 'running', { from: ['ready'] })));
      assert.equal(racers.filter(Boolean).length, 1, 'one of ten concurrent ready → running wins');
      assert.deepEqual(statuses, ['ready', 'running'], 'one status event per applied transition');

      assert.equal(await lifecycle.transition('ses_life', 'ready', { fence: 'someone-else' }), false, 'an instance the session is not placed on writes nothing');
      await assert.rejects(store.appendEvent('ses_life', 'user_message', { turnId: 't', text: 'x' }, 'someone-else'), FencedError);
      assert.equal((await store.getSession('ses_life'))?.status, 'running');
      assert.equal(await lifecycle.transition('ses_life', 'ready', { fence: 'me' }), true);
      const failure = { code: 'internal' as const, message: 'boom' };
      assert.equal(await lifecycle.transition('ses_life', 'failed', { error: failure }), false, 'failed is reached from preparing only');
      assert.deepEqual(statuses, ['ready', 'running', 'ready']);
    } finally {
      await store.close();
    }
  });
});

describe('SQLite WAL checkpoints', () => {
  it('never run on the server connection: a worker thread checkpoints the WAL in the background', async (t) => {
    if (TEST_PG_URL) return t.skip('SQLite only');
    const dir = tempDir();
    // No background tick during the test: it runs the one checkpoint itself.
    const store = new SqliteStore(join(dir, 'db'), undefined, 3_600_000);
    try {
      const checkpointer = store.checkpointer!;
      // ~6 MB of commits: past SQLite's default threshold (1000 pages, 4 MB), at which the
      // committing connection would checkpoint and start the WAL over.
      for (let i = 0; i < 300; i++) await store.createSession({ ...session(`ses_wal_${i}`), prompt: 'x'.repeat(20_000) });
      const walBytes = statSync(join(dir, 'db-wal')).size;
      assert.ok(walBytes > 5_000_000, `no commit checkpointed: the WAL holds them all (${walBytes} bytes)`);
      const result = await checkpointer.checkpoint();
      assert.equal(result.ok, true);
      assert.ok((result.log ?? 0) > 0 && result.checkpointed === result.log, 'every frame copied into the database');
      assert.equal((await store.getSession('ses_wal_299'))?.id, 'ses_wal_299');
    } finally {
      await store.close();
    }
  });
});
