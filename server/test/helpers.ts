import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { frameText, StreamEvent, type SessionView } from '@berth/protocol';
import { defaultConfig, type ServerConfig } from '../src/config';
import { startServer, type BerthServer, type ServerOptions } from '../src/app';
import pino from 'pino';
import pg from 'pg';
import Database from 'better-sqlite3';
import { pgConfig } from '../src/store/postgres/pgStore';
import { EXIT_WITH_PARENT } from '../../extension/src/server/embedded';

export const ROOT = resolve(import.meta.dirname, '../..');
export const AGENT_HOST = join(ROOT, 'dist/agent/agent-host.mjs');
export const CLI = join(ROOT, 'dist/server/cli.js');
export const TOKENS = { alice: 'tok_alice_0123456789', bob: 'tok_bob_0123456789' } as const;
export type User = keyof typeof TOKENS;

export function tempDir(prefix = 'berth-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

/** A real bare repository with one commit on `main` (plus any extra branches), in a temp dir. */
export function makeRepo(files: Record<string, string> = { 'README.md': '# test repo\n' }, branches: string[] = []): string {
  const dir = tempDir('berth-repo-');
  const bare = join(dir, 'repo.git');
  const work = join(dir, 'work');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(work, name, '..'), { recursive: true });
    writeFileSync(join(work, name), content);
  }
  execFileSync('git', ['-C', work, 'add', '-A']);
  execFileSync('git', ['-C', work, 'commit', '-qm', 'initial'], { env: gitEnv });
  execFileSync('git', ['-C', work, 'push', '-q', bare, 'main'], { env: gitEnv });
  for (const b of branches) execFileSync('git', ['-C', work, 'push', '-q', bare, `main:${b}`], { env: gitEnv });
  return bare;
}

/**
 * The PostgreSQL server of the test matrix's second run (scripts/test.mjs sets it); unset = SQLite.
 * Everything below picks the store from it, so the same tests run against both.
 */
export const TEST_PG_URL = process.env.BERTH_TEST_PG_URL || null;

/** The secret key of test servers on PostgreSQL (every instance of one database needs the same one). */
export const TEST_SECRET_KEY = 'b'.repeat(64);

/** A fresh database on the test PostgreSQL (one per name), created on first use. */
export async function testDatabase(name: string): Promise<string> {
  if (!TEST_PG_URL) throw new Error('BERTH_TEST_PG_URL is not set');
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount) break;
      try {
        await admin.query(`CREATE DATABASE "${name}"`);
        break;
      } catch (err) {
        // Concurrent CREATE DATABASEs can trip over each other on the template: try again.
        if (attempt >= 5) throw err;
        await sleep(100 * (attempt + 1));
      }
    }
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The store of a server on `dataDir`: null (SQLite in the dir), or under the matrix's PostgreSQL
 * run a database of its own per data dir, so that a restart on the same dir finds its data.
 */
export async function testStoreFor(dataDir: string): Promise<string | null> {
  if (!TEST_PG_URL) return null;
  return testDatabase(`berth_${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16)}`);
}

/** Runs SQL (`?` placeholders) against the store of the server on `dataDir`, whichever it is. */
export async function queryTestDb<R = Record<string, unknown>>(dataDir: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const url = await testStoreFor(dataDir);
  if (!url) {
    const db = new Database(join(dataDir, 'berth.db'), { readonly: true });
    try {
      return db.prepare(sql).all(...params) as R[];
    } finally {
      db.close();
    }
  }
  let n = 0;
  const client = new pg.Client(pgConfig(url));
  await client.connect();
  try {
    return (await client.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows as R[];
  } finally {
    await client.end();
  }
}

export interface TestServer {
  server: BerthServer;
  url: string;
  dataDir: string;
  api: (user: User) => ApiClient;
  close(): Promise<void>;
}

export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  options: ServerOptions = {},
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tempDir('berth-data-');
  const base = defaultConfig({ dataDir, agentHostScript: AGENT_HOST });
  const config: ServerConfig = {
    ...base,
    store: await testStoreFor(dataDir),
    secretKey: TEST_PG_URL ? TEST_SECRET_KEY : null,
    port: 0,
    allowLocalRepos: true,
    tokens: new Map(Object.entries(TOKENS)),
    minFreeBytes: 1024 * 1024,
    reaperIntervalMs: 200,
    jobPollMs: 100,
    ...overrides,
    timeouts: { ...base.timeouts, ...overrides.timeouts },
  };
  const server = await startServer(config, { logger: pino({ level: process.env.BERTH_TEST_LOG ?? 'silent' }), ...options });
  return {
    server,
    url: server.url,
    dataDir,
    api: (user) => new ApiClient(server.url, TOKENS[user]),
    close: () => server.close(),
  };
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  async request<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* plain text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  start(body: unknown) {
    return this.request('POST', '/v1/sessions', body);
  }
  get(id: string) {
    return this.request<SessionView>('GET', `/v1/sessions/${id}`);
  }
  message(id: string, text: string) {
    return this.request('POST', `/v1/sessions/${id}/messages`, { text });
  }
  async ticket(id: string): Promise<string> {
    const r = await this.request<{ ticket: string }>('POST', `/v1/sessions/${id}/stream-ticket`);
    if (r.status !== 200) throw new Error(`ticket: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.ticket;
  }

  /** Polls the session until `pred` holds. */
  async waitFor(id: string, pred: (s: SessionView) => boolean, timeoutMs = 20_000): Promise<SessionView> {
    const deadline = Date.now() + timeoutMs;
    let last: SessionView | undefined;
    while (Date.now() < deadline) {
      const r = await this.get(id);
      if (r.status === 200) {
        last = r.body;
        if (pred(r.body)) return r.body;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error(`timed out waiting on ${id}; last: ${JSON.stringify(last)}`);
  }

  async stream(id: string, after = 0): Promise<StreamRecorder> {
    const ticket = await this.ticket(id);
    const wsUrl = `${this.baseUrl.replace(/^http/, 'ws')}/v1/sessions/${id}/stream?ticket=${encodeURIComponent(ticket)}&after=${after}`;
    return StreamRecorder.open(wsUrl);
  }
}

/** The HTTP status a WebSocket upgrade got: 101 when the stream opened (then closed at once). */
export function wsStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: 10_000 });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.close();
    });
    ws.once('error', (err) => (String(err).includes('Unexpected server response') ? undefined : reject(err)));
  });
}

/** A real WebSocket client that records every event and can wait for one. */
export class StreamRecorder {
  readonly events: StreamEvent[] = [];
  private waiters: { pred: (e: StreamEvent) => boolean; resolve: (e: StreamEvent) => void }[] = [];
  closed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw, isBinary) => {
      // Events are JSON in text frames (a browser would get a Blob for a binary one): a binary
      // frame is not an event, and the test waiting for it times out.
      if (isBinary) return;
      const event = StreamEvent.parse(JSON.parse(frameText(raw)));
      this.events.push(event);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(event)) return true;
        w.resolve(event);
        return false;
      });
    });
    ws.on('close', () => (this.closed = true));
  }

  static open(url: string): Promise<StreamRecorder> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const recorder = new StreamRecorder(ws);
      ws.once('open', () => resolve(recorder));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`stream refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  waitFor(pred: (e: StreamEvent) => boolean, timeoutMs = 20_000, what = 'event'): Promise<StreamEvent> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${what}; got: ${this.events.map((e) => `${e.type}${e.type === 'preparing' ? ':' + e.data.step + ':' + e.data.state : ''}`).join(', ')}`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  persisted() {
    return this.events.filter((e) => e.id > 0);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

export const isReady = (e: StreamEvent) => e.type === 'preparing' && e.data.step === 'ready';
export const isFailed = (e: StreamEvent) => e.type === 'preparing' && e.data.step === 'failed';
export const turnComplete = (e: StreamEvent) => e.type === 'turn_complete';

/** The full text the agent answered in a turn. */
export function answerOf(events: StreamEvent[], turnId?: string): string {
  return events
    .filter((e): e is Extract<StreamEvent, { type: 'assistant_output' }> => e.type === 'assistant_output')
    .filter((e) => !turnId || e.data.turnId === turnId)
    .map((e) => e.data.text)
    .join('');
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes an agent host script that runs the fake host with the given behaviour. */
export function fakeAgentHost(env: Record<string, string>): string {
  const dir = tempDir('berth-fake-');
  const file = join(dir, 'fake-host.mjs');
  const sets = Object.entries(env).map(([k, v]) => `process.env[${JSON.stringify(k)}] = ${JSON.stringify(v)};`).join('\n');
  writeFileSync(file, `${sets}\nawait import(${JSON.stringify(join(ROOT, 'server/test/fixtures/fake-agent-host.mjs'))});\n`);
  return file;
}

/** Live processes that belong to a session's sandbox (tagged through their environment). */
export function sandboxPids(sessionId: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'utf8');
      if (env.split('\0').includes(`BERTH_SESSION_ID=${sessionId}`)) pids.push(Number(name));
    } catch {
      /* gone or not ours */
    }
  }
  return pids;
}

/** Starts the real bundled `berth-server serve` as a child process; resolves once it listens. */
export async function spawnCli(
  dataDir: string,
  args: string[],
  tokens: string,
  extraEnv: Record<string, string | undefined> = {},
  /** A command the server runs under (e.g. `faketime -f +5m`). */
  wrapper: string[] = [],
): Promise<{ child: import('node:child_process').ChildProcess; url: string; port: number }> {
  const { spawn } = await import('node:child_process');
  const storeUrl = args.includes('--store') ? null : await testStoreFor(dataDir);
  const store = storeUrl ? ['--store', storeUrl] : [];
  // The server ends with the test process (its stdin closes, as for the extension's embedded server),
  // even when a timed-out test file is killed before its after() hooks run.
  const child = spawn(wrapper[0] ?? process.execPath, [...wrapper.slice(1), ...(wrapper.length ? [process.execPath] : []), '--import', EXIT_WITH_PARENT, CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...store, ...args], {
    env: { ...process.env, BERTH_TOKENS: tokens, BERTH_LOG_LEVEL: 'warn', ...(storeUrl || args.includes('--store') ? { BERTH_SECRET_KEY: TEST_SECRET_KEY } : {}), ...extraEnv },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`berth-server exited with ${code}: ${out}`)));
  });
  return { child, url, port: Number(new URL(url).port) };
}
