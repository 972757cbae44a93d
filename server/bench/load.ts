// `npm run load`: a bounded load test of a real berth-server process on loopback.
//   1. a burst of concurrent fast-path starts from several users: latency, throughput, and proof
//      that preparations queue (never more than --max-preparations at once, "queued: N ahead"
//      announced to watching clients) instead of exhausting the machine;
//   2. a reconnect storm: hundreds of WebSocket clients that drop and reconnect with their `after`
//      cursor while turns produce events: every client must see every persisted event exactly
//      once, in order, identical to a fresh replay (no duplicate, no gap).
// Prints throughput, p50/p99 latency, errors and the server's RSS; exits non-zero on any error.
import http from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { frameText, StreamEvent, type SessionView } from '@berth/protocol';
import { makeRepo, spawnCli, tempDir } from '../test/helpers';

const { values: opts } = parseArgs({
  options: {
    starts: { type: 'string', default: '300' },
    users: { type: 'string', default: '10' },
    clients: { type: 'string', default: '300' },
    'storm-sessions': { type: 'string', default: '30' },
    'storm-seconds': { type: 'string', default: '15' },
    'max-preparations': { type: 'string', default: '4' },
    'max-seconds': { type: 'string', default: '240' },
  },
});
const num = (name: keyof typeof opts) => {
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const STARTS = num('starts');
const USERS = num('users');
const CLIENTS = num('clients');
const STORM_SESSIONS = Math.min(num('storm-sessions'), STARTS);
const STORM_MS = num('storm-seconds') * 1000;
const MAX_PREPARATIONS = num('max-preparations');
const DEADLINE_MS = num('max-seconds') * 1000;

const tokens = Array.from({ length: USERS }, (_, i) => ({ user: `user${i}`, token: `tok_load_user${i}_0123456789` }));
const errors: string[] = [];
const fail = (what: string) => {
  if (errors.length < 1000) errors.push(what);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const ms = (n: number) => `${n.toFixed(2)} ms`;
const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

let port = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; ms: number }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms: performance.now() - started });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The server's resident memory, sampled throughout. */
class RssSampler {
  peakKb = 0;
  lastKb = 0;
  private timer: NodeJS.Timeout;
  constructor(pid: number) {
    const sample = () => {
      try {
        const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
        this.lastKb = kb;
        this.peakKb = Math.max(this.peakKb, kb);
      } catch {
        /* exited */
      }
    };
    sample();
    this.timer = setInterval(sample, 100);
  }
  stop() {
    clearInterval(this.timer);
  }
}

interface Session {
  id: string;
  token: string;
}

/** Opens a stream; calls onEvent for each event; resolves once open. */
function openStream(s: Session, after: number, onEvent: (e: StreamEvent) => void): Promise<WebSocket> {
  return call(s.token, 'POST', `/v1/sessions/${s.id}/stream-ticket`).then(
    (t) =>
      new Promise<WebSocket>((resolve, reject) => {
        if (t.status !== 200) return reject(new Error(`ticket: ${t.status} ${JSON.stringify(t.body)}`));
        const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/sessions/${s.id}/stream?ticket=${encodeURIComponent(t.body.ticket)}&after=${after}`);
        ws.on('message', (raw) => onEvent(StreamEvent.parse(JSON.parse(frameText(raw)))));
        ws.once('open', () => resolve(ws));
        ws.once('unexpected-response', (_req, res) => reject(new Error(`stream refused: ${res.statusCode}`)));
        ws.once('error', reject);
      }),
  );
}

async function burst(repo: string): Promise<Session[]> {
  const queuedMessages: string[] = [];
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: STARTS }, (_, i) => {
      const { token } = tokens[i % USERS]!;
      return call(token, 'POST', '/v1/sessions', { repo: { url: repo }, prompt: `load task ${i}`, autoInitiate: true }).then((r) => ({ r, token }));
    }),
  );
  const totalMs = performance.now() - started;
  const sessions: Session[] = [];
  for (const { r, token } of results) {
    if (r.status === 202) sessions.push({ id: r.body.sessionId, token });
    else fail(`start: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const times = results.map(({ r }) => r.ms).sort((a, b) => a - b);
  console.log(`burst of ${STARTS} concurrent fast-path starts from ${USERS} users (max ${MAX_PREPARATIONS} preparations at once):`);
  console.log(`  all answered in ${ms(totalMs)}: ${(STARTS / (totalMs / 1000)).toFixed(0)} starts/s; p50 ${ms(pct(times, 50))} p99 ${ms(pct(times, 99))} max ${ms(times.at(-1)!)}`);

  // Watch the last sessions (the back of the queue) to see their queue position announced.
  const watchers = await Promise.all(
    sessions.slice(-10).map((s) =>
      openStream(s, 0, (e) => {
        if (e.type === 'preparing' && e.data.step === 'queued') queuedMessages.push(e.data.message);
      }).catch((err: Error) => void fail(`watch: ${err.message}`)),
    ),
  );

  // Until every session is ready: how many preparations ran at once, at most.
  let maxRunning = 0;
  let maxQueued = 0;
  const readyAt = performance.now();
  for (;;) {
    if (performance.now() - readyAt > DEADLINE_MS / 2) {
      fail('preparations did not all finish in time');
      break;
    }
    const views: SessionView[] = (await Promise.all(tokens.map((t) => call(t.token, 'GET', '/v1/sessions')))).flatMap((r) => r.body.sessions);
    const preparing = views.filter((v) => v.status === 'preparing');
    const running = preparing.filter((v) => v.step !== null && v.step !== 'queued').length;
    maxRunning = Math.max(maxRunning, running);
    maxQueued = Math.max(maxQueued, preparing.length - running);
    const failed = views.filter((v) => v.status === 'failed');
    if (failed.length) {
      for (const f of failed) fail(`session ${f.id} failed: ${f.lastError?.message}`);
      break;
    }
    if (preparing.length === 0) break;
    await sleep(100);
  }
  const prepMs = performance.now() - readyAt;
  for (const w of watchers) w?.terminate();
  console.log(
    `  ${sessions.length} sessions prepared in ${(prepMs / 1000).toFixed(1)} s; at most ${maxRunning} preparations ran at once, ${maxQueued} waited in the queue`,
  );
  const positions = queuedMessages.map((m) => Number(/^queued: (\d+) ahead$/.exec(m)?.[1] ?? NaN));
  console.log(`  watchers of the last 10 sessions saw ${queuedMessages.length} queue announcements, e.g. "${queuedMessages[0] ?? '-'}" … "${queuedMessages.at(-1) ?? '-'}"`);
  if (maxRunning > MAX_PREPARATIONS) fail(`${maxRunning} preparations ran at once, over the limit of ${MAX_PREPARATIONS}`);
  if (STARTS > MAX_PREPARATIONS * 2 && maxQueued === 0) fail('the burst never queued');
  if (STARTS > MAX_PREPARATIONS * 2 && queuedMessages.length === 0) fail('no "queued: N ahead" announcement reached the watchers');
  if (positions.some((p) => !Number.isInteger(p) || p < 0)) fail(`malformed queue announcements: ${queuedMessages.slice(0, 3).join(' | ')}`);
  return sessions;
}

/** One storm client: connects, reads a little, drops, reconnects with its cursor; checks order. */
class StormClient {
  cursor = 0;
  received = 0;
  reconnects = 0;
  readonly seen: StreamEvent[] = [];
  private ws: WebSocket | null = null;

  constructor(
    readonly session: Session,
    private readonly name: string,
  ) {}

  private onEvent = (e: StreamEvent) => {
    if (e.id === 0) return;
    this.received++;
    if (e.id !== this.cursor + 1) fail(`${this.name}: got event ${e.id} after ${this.cursor} (${e.id <= this.cursor ? 'duplicate' : 'gap'})`);
    if (e.id > this.cursor) {
      this.cursor = e.id;
      this.seen.push(e);
    }
  };

  async connect(): Promise<void> {
    this.ws = await openStream(this.session, this.cursor, this.onEvent);
  }

  /** Drops the connection the hard way or the polite way, then comes back with the cursor. */
  async cycle(): Promise<void> {
    const ws = this.ws;
    if (ws) {
      // Whatever the old connection still has buffered is not this client's business any more:
      // the new one resumes from the cursor as it is now.
      ws.removeAllListeners('message');
      if (Math.random() < 0.5) ws.terminate();
      else ws.close();
    }
    this.ws = null;
    this.reconnects++;
    await this.connect();
  }

  close(): void {
    this.ws?.terminate();
  }
}

async function storm(sessions: Session[]): Promise<void> {
  const targets = sessions.slice(0, STORM_SESSIONS);
  const clients = Array.from({ length: CLIENTS }, (_, i) => new StormClient(targets[i % targets.length]!, `client ${i}`));
  const connectStart = performance.now();
  const connectTimes: number[] = [];
  await Promise.all(
    clients.map(async (c) => {
      const t0 = performance.now();
      await c.connect().catch((err: Error) => fail(`connect: ${err.message}`));
      connectTimes.push(performance.now() - t0);
    }),
  );
  connectTimes.sort((a, b) => a - b);
  console.log(`\nreconnect storm: ${CLIENTS} WebSocket clients on ${targets.length} sessions for ${STORM_MS / 1000} s, turns running meanwhile`);
  console.log(`  ${CLIENTS} connected in ${ms(performance.now() - connectStart)}; connect p50 ${ms(pct(connectTimes, 50))} p99 ${ms(pct(connectTimes, 99))}`);

  const stopAt = performance.now() + STORM_MS;
  let turns = 0;
  let busy = 0;
  const messageTimes: number[] = [];
  // Every session gets turn after turn; a 409 (a turn still running) is waited out, not an error.
  const drivers = targets.map(async (s, i) => {
    for (let n = 0; performance.now() < stopAt; n++) {
      const r = await call(s.token, 'POST', `/v1/sessions/${s.id}/messages`, { text: `storm message ${i}.${n} ${'x'.repeat(n % 7 === 0 ? 2000 : 20)}` });
      if (r.status === 202) {
        turns++;
        messageTimes.push(r.ms);
      } else if (r.status === 409 && r.body?.error?.code === 'turn_in_progress') busy++;
      else fail(`message: ${r.status} ${JSON.stringify(r.body)}`);
      await sleep(50 + Math.random() * 100);
    }
  });
  const storms = clients.map(async (c) => {
    while (performance.now() < stopAt) {
      await sleep(50 + Math.random() * 450);
      await c.cycle().catch((err: Error) => fail(`reconnect: ${err.message}`));
    }
  });
  await Promise.all([...drivers, ...storms]);

  // Let the last turns finish, then every client must catch up to the session's last event.
  const settle = performance.now() + 20_000;
  for (const s of targets) {
    while (performance.now() < settle) {
      const v = await call(s.token, 'GET', `/v1/sessions/${s.id}`);
      if (v.body?.status === 'ready') break;
      await sleep(50);
    }
  }
  const expected = new Map<string, StreamEvent[]>();
  for (const s of targets) {
    const view = await call(s.token, 'GET', `/v1/sessions/${s.id}`);
    const reference: StreamEvent[] = [];
    const ws = await openStream(s, 0, (e) => {
      if (e.id > 0) reference.push(e);
    });
    const deadline = performance.now() + 10_000;
    while (reference.length < view.body.lastEventId && performance.now() < deadline) await sleep(20);
    ws.terminate();
    expected.set(s.id, reference);
  }
  const catchUp = performance.now() + 15_000;
  await Promise.all(
    clients.map(async (c) => {
      const last = expected.get(c.session.id)!.length;
      while (c.cursor < last && performance.now() < catchUp) await sleep(20);
    }),
  );
  let events = 0;
  let reconnects = 0;
  for (const c of clients) {
    const reference = expected.get(c.session.id)!;
    events += c.received;
    reconnects += c.reconnects;
    c.close();
    if (c.seen.length !== reference.length) {
      fail(`a client of ${c.session.id} saw ${c.seen.length} of ${reference.length} events`);
      continue;
    }
    for (let i = 0; i < reference.length; i++) {
      if (JSON.stringify(c.seen[i]) !== JSON.stringify(reference[i])) {
        fail(`a client of ${c.session.id} saw a different event ${i + 1} than a fresh replay`);
        break;
      }
    }
  }
  messageTimes.sort((a, b) => a - b);
  const persisted = [...expected.values()].reduce((n, list) => n + list.length, 0);
  console.log(`  ${turns} turns (${busy} sends waited for a running turn); message p50 ${ms(pct(messageTimes, 50))} p99 ${ms(pct(messageTimes, 99))}`);
  console.log(
    `  ${reconnects} reconnects (${(reconnects / (STORM_MS / 1000)).toFixed(0)}/s), ${events} persisted events delivered; ` +
      `every client matched a fresh replay of its session (${persisted} events in all): no duplicate, no gap`,
  );
}

async function main(): Promise<void> {
  const overall = setTimeout(() => {
    console.error(`load: not done within ${DEADLINE_MS / 1000} s`);
    process.exit(1);
  }, DEADLINE_MS);
  overall.unref();
  const repo = makeRepo({ 'README.md': '# load\n' });
  const dataDir = tempDir('berth-load-');
  const server = await spawnCli(
    dataDir,
    ['--allow-local-repos', '--agent-command', 'cat', '--max-preparations', String(MAX_PREPARATIONS)],
    tokens.map((t) => `${t.user}:${t.token}`).join(','),
  );
  port = server.port;
  const rss = new RssSampler(server.child.pid!);
  console.log(`Berth load test (loopback, a real berth-server process, SQLite, local provider, agent "cat")\n`);
  try {
    const sessions = await burst(repo);
    if (sessions.length) await storm(sessions);
  } catch (err) {
    fail(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    rss.stop();
    agent.destroy();
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(dirname(repo), { recursive: true, force: true });
  }
  console.log(`\nserver RSS: peak ${mib(rss.peakKb)}, at the end ${mib(rss.lastKb)}`);
  console.log(`errors: ${errors.length}`);
  for (const e of errors.slice(0, 20)) console.log(`  ${e}`);
  process.exit(errors.length ? 1 : 0);
}

void main();
