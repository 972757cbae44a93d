// `npm run bench`: figures for the fast path, printed, never asserted (targets in the README).
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DiagnosticsResponse, frameText, type StreamEvent } from '@berth/protocol';
import { ApiClient, makeRepo, spawnCli, tempDir, type StreamRecorder } from '../test/helpers';
import { changesBench } from './changes';
// @ts-expect-error: a plain .mjs script without types
import { findPgBin, startThrowaway } from '../../scripts/pg-throwaway.mjs';

const TOKEN = 'tok_bench_0123456789abcdef';

interface Server {
  child: ChildProcess;
  port: number;
  dataDir: string;
}

async function startServer(extra: string[] = []): Promise<Server> {
  const dataDir = tempDir('berth-bench-');
  // An explicit store: the bench never follows the test matrix's BERTH_TEST_PG_URL.
  const store = extra.includes('--store') ? [] : ['--store', ''];
  const { child, port } = await spawnCli(dataDir, ['--allow-local-repos', '--agent-command', 'cat', ...store, ...extra], `bench:${TOKEN}`);
  return { child, port, dataDir };
}

async function stopServer(s: Server): Promise<void> {
  s.child.kill('SIGTERM');
  await new Promise((r) => s.child.once('exit', r));
  rmSync(s.dataDir, { recursive: true, force: true });
}

function post(agent: http.Agent, port: number, path: string, body: unknown): Promise<{ status: number; body: any; ms: number }> {
  const payload = JSON.stringify(body);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), ms: performance.now() - started }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

async function sequentialStarts(port: number, repo: string, count: number, setup: string[]): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  for (let i = 0; i < count + 10; i++) {
    const r = await post(agent, port, '/v1/sessions', { repo: { url: repo }, prompt: `task ${i}`, autoInitiate: true, setup });
    if (r.status !== 202) throw new Error(`start ${i}: ${r.status} ${JSON.stringify(r.body)}`);
    if (i >= 10) times.push(r.ms); // the first few warm up the connection and the JIT
  }
  agent.destroy();
  return times.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const repo = makeRepo({ 'README.md': '# bench\n', 'src/index.js': 'console.log(1)\n' });
  if (process.env.BENCH_ONLY === 'cluster') return cluster(repo);
  if (process.env.BENCH_ONLY === 'changes') return changesBench();
  if (process.env.BENCH_ONLY === 'fastpath') return fastPathIdleAndLoaded(repo);
  console.log('Berth benchmark (loopback, real berth-server process, SQLite, local provider)\n');
  await fastPathIdleAndLoaded(repo);

  {
    const server = await startServer(['--max-preparations', '2']);
    const times = await sequentialStarts(server.port, repo, 200, []);
    console.log(`fast path, 200 sequential starts on one keep-alive connection:`);
    console.log(`  p50 ${fmt(pct(times, 50))}   p99 ${fmt(pct(times, 99))}   max ${fmt(times[times.length - 1]!)}   (target p99 < 10 ms)`);

    const agents = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const started = performance.now();
    const burst = await Promise.all(
      Array.from({ length: 100 }, (_, i) => post(agents, server.port, '/v1/sessions', { repo: { url: repo }, prompt: `burst ${i}`, autoInitiate: true })),
    );
    const total = performance.now() - started;
    agents.destroy();
    const errors = burst.filter((r) => r.status !== 202).length;
    const burstTimes = burst.map((r) => r.ms).sort((a, b) => a - b);
    console.log(`burst of 100 concurrent starts: all answered in ${fmt(total)} (target < 1000 ms); p50 ${fmt(pct(burstTimes, 50))} p99 ${fmt(pct(burstTimes, 99))}; errors ${errors}`);
    await stopServer(server);
  }

  {
    const server = await startServer(['--max-preparations', '4']);
    const setup = ['sleep 2'];
    const fast = await sequentialStarts(server.port, repo, 20, setup);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const syncTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await post(agent, server.port, '/v1/sessions', { repo: { url: repo }, prompt: 'sync', setup });
      if (r.status !== 201) throw new Error(`sync start: ${r.status} ${JSON.stringify(r.body)}`);
      syncTimes.push(r.ms);
    }
    agent.destroy();
    syncTimes.sort((a, b) => a - b);
    const fastP50 = pct(fast, 50);
    const syncP50 = pct(syncTimes, 50);
    console.log(`same repo with a 2 s setup command:`);
    console.log(`  synchronous path p50 ${fmt(syncP50)}; fast path p50 ${fmt(fastP50)} p99 ${fmt(pct(fast, 99))}`);
    console.log(`  ratio synchronous / fast = ${(syncP50 / fastP50).toFixed(0)}x (the fast path does not wait for preparation)`);
    await stopServer(server);
  }

  await changesBench();
  await cluster(repo);
}

function get(port: number, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(JSON.parse(text)));
      })
      .on('error', reject);
  });
}

/**
 * The fast path idle (every preparation held back: one slot, taken by a session whose setup sleeps)
 * and while 4 preparations run all the time (each start queues one: clone, a setup command, agent
 * start), with the server's own event-loop delay over the same 200 starts.
 */
async function fastPathIdleAndLoaded(repo: string): Promise<void> {
  const measure = async (extra: string[], setup: string[], before?: (port: number) => Promise<void>) => {
    const server = await startServer(extra);
    try {
      await before?.(server.port);
      await get(server.port, '/v1/diagnostics?reset=true');
      const times = await sequentialStarts(server.port, repo, 200, setup);
      const diag = DiagnosticsResponse.parse(await get(server.port, '/v1/diagnostics?reset=true'));
      return { p50: pct(times, 50), p99: pct(times, 99), loopP99: diag.eventLoopDelay.p99Ms, loopMax: diag.eventLoopDelay.maxMs };
    } finally {
      await stopServer(server);
    }
  };
  const idle = await measure(['--max-preparations', '1'], ['true'], async (port) => {
    const agent = new http.Agent({ keepAlive: false });
    await post(agent, port, '/v1/sessions', { repo: { url: repo }, prompt: 'hold the only slot', autoInitiate: true, setup: ['sleep 600'] });
    agent.destroy();
  });
  const loaded = await measure(['--max-preparations', '4'], ['true']);
  console.log('fast path, 200 sequential starts, idle vs while 4 preparations run (clone + setup command + agent start):');
  console.log(`  idle     p50 ${fmt(idle.p50)}   p99 ${fmt(idle.p99)}   event-loop delay p99 ${fmt(idle.loopP99)} (max ${fmt(idle.loopMax)})`);
  console.log(`  loaded   p50 ${fmt(loaded.p50)}   p99 ${fmt(loaded.p99)}   event-loop delay p99 ${fmt(loaded.loopP99)} (max ${fmt(loaded.loopMax)})`);
  console.log(`  loaded p99 / idle p99 = ${(loaded.p99 / idle.p99).toFixed(1)}x   (target: loaded p99 < 5 ms and ≤ 2x idle)\n`);
}

/** Starts fired `concurrency` at a time, round-robin over the instances: throughput and latency. */
async function throughput(ports: number[], repo: string, total: number, concurrency: number): Promise<{ perSecond: number; p50: number; p99: number }> {
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const k = i % ports.length;
        const r = await post(agents[k]!, ports[k]!, '/v1/sessions', { repo: { url: repo }, prompt: `load ${i}`, autoInitiate: true });
        if (r.status !== 202) throw new Error(`start ${i}: ${r.status} ${JSON.stringify(r.body)}`);
        times.push(r.ms);
      }
    }),
  );
  const elapsed = performance.now() - started;
  for (const a of agents) a.destroy();
  times.sort((a, b) => a - b);
  return { perSecond: (total / elapsed) * 1000, p50: pct(times, 50), p99: pct(times, 99) };
}

/** Arrival times of each persisted event on a stream, by id. */
function arrivals(stream: StreamRecorder): Map<number, number> {
  const times = new Map<number, number>();
  stream.ws.on('message', (raw) => {
    const e = JSON.parse(frameText(raw)) as StreamEvent;
    if (e.id > 0 && !times.has(e.id)) times.set(e.id, performance.now());
  });
  return times;
}

/** Several instances on one PostgreSQL against one on SQLite; cross-instance event latency. */
async function cluster(repo: string): Promise<void> {
  if (!findPgBin()) {
    console.log('\n(no PostgreSQL in /usr/lib/postgresql/*/bin: the several-instances figures are skipped)');
    return;
  }
  const cluster = await startThrowaway();
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  const database = async () => {
    const name = `bench_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(cluster.url);
    url.pathname = `/${name}`;
    return url.toString();
  };
  const TOTAL = 600;
  const CONCURRENCY = 16;
  try {
    console.log(`\nfast path under load: ${TOTAL} starts, ${CONCURRENCY} in flight, round-robin over the instances (each --max-preparations 1):`);
    const rows: [string, Awaited<ReturnType<typeof throughput>>][] = [];
    {
      const server = await startServer(['--max-preparations', '1']);
      rows.push(['1 instance, SQLite', await throughput([server.port], repo, TOTAL, CONCURRENCY)]);
      await stopServer(server);
    }
    for (const n of [1, 2, 3]) {
      const store = await database();
      const servers: Server[] = [];
      for (let i = 0; i < n; i++) servers.push(await startServer(['--max-preparations', '1', '--store', store, '--instance-id', `bench_${i}`]));
      rows.push([`${n} instance${n > 1 ? 's' : ''}, PostgreSQL`, await throughput(servers.map((s) => s.port), repo, TOTAL, CONCURRENCY)]);
      await Promise.all(servers.map(stopServer));
    }
    for (const [name, r] of rows) {
      console.log(`  ${name.padEnd(24)} ${r.perSecond.toFixed(0).padStart(5)} starts/s   p50 ${fmt(r.p50)}   p99 ${fmt(r.p99)}`);
    }

    // Cross-instance latency: one session, a stream on the instance that holds its sandbox and one on
    // another; each persisted event's arrival on the second minus its arrival on the first.
    const store = await database();
    const servers = [
      await startServer(['--store', store, '--instance-id', 'lat_a']),
      await startServer(['--store', store, '--instance-id', 'lat_b']),
    ];
    try {
      await latency(servers, store, repo);
    } finally {
      await Promise.all(servers.map(stopServer));
    }
  } finally {
    await admin.end();
    cluster.stop();
  }
}

async function latency(servers: Server[], store: string, repo: string): Promise<void> {
  const apis = servers.map((s) => new ApiClient(`http://127.0.0.1:${s.port}`, TOKEN));
  const { body } = await apis[0]!.start({ repo: { url: repo }, prompt: 'warm up', autoInitiate: true });
  const id = body.sessionId as string;
  await apis[0]!.waitFor(id, (s) => s.status === 'ready', 30_000);
  const db = new pg.Client({ connectionString: store });
  await db.connect();
  const placed = (await db.query<{ instance: string }>('SELECT instance FROM sessions WHERE id = $1', [id])).rows[0]!.instance;
  await db.end();
  const local = placed === 'lat_a' ? 0 : 1;
  const near = await apis[local]!.stream(id);
  const far = await apis[1 - local]!.stream(id);
  const nearTimes = arrivals(near);
  const farTimes = arrivals(far);
  const TURNS = 60;
  for (let i = 0; i < TURNS; i++) {
    const sent = await apis[local]!.message(id, `message ${i}`);
    if (sent.status !== 202) throw new Error(`message ${i}: ${sent.status} ${JSON.stringify(sent.body)}`);
    const turnId = sent.body.turnId as string;
    await far.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === turnId, 20_000);
    await near.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === turnId, 20_000);
    await apis[local]!.waitFor(id, (s) => s.status === 'ready'); // set just after turn_complete
  }
  const delays = [...farTimes].filter(([eid]) => nearTimes.has(eid)).map(([eid, t]) => t - nearTimes.get(eid)!).sort((a, b) => a - b);
  console.log(`cross-instance event latency (${delays.length} persisted events over ${TURNS} turns, stream on another instance vs on the sandbox's):`);
  console.log(`  p50 ${fmt(pct(delays, 50))}   p99 ${fmt(pct(delays, 99))}   max ${fmt(delays[delays.length - 1]!)}`);
  await Promise.all([near.close(), far.close()]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
