// `npm run bench`: figures for the fast path, printed, never asserted (targets in the README).
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { makeRepo, spawnCli, tempDir } from '../test/helpers';

const TOKEN = 'tok_bench_0123456789abcdef';

interface Server {
  child: ChildProcess;
  port: number;
  dataDir: string;
}

async function startServer(extra: string[] = []): Promise<Server> {
  const dataDir = tempDir('berth-bench-');
  const { child, port } = await spawnCli(dataDir, ['--allow-local-repos', '--agent-command', 'cat', ...extra], `bench:${TOKEN}`);
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
  console.log('Berth benchmark (loopback, real berth-server process, SQLite, local provider)\n');

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
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
