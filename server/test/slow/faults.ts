// Shared pieces of the fault tests (issue 7): a real server process to kill, remotes that hang,
// and the checks every fault ends with (events intact, nothing left behind).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { PersistedEvent, SessionView } from '@berth/protocol';
import { ApiClient, spawnCli, tempDir } from '../helpers';

export const FAULT_TOKEN = 'tok_fault_test_0123456789';

export interface CliServer {
  child: ChildProcess;
  api: ApiClient;
  url: string;
}

export async function startCli(dataDir: string, args: string[]): Promise<CliServer> {
  const { child, url } = await spawnCli(dataDir, ['--allow-local-repos', ...args], `alice:${FAULT_TOKEN}`);
  return { child, url, api: new ApiClient(url, FAULT_TOKEN) };
}

async function signalAndWait(server: CliServer, signal: NodeJS.Signals): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return; // already gone: no exit event to wait for
  const exited = new Promise((res) => child.once('exit', res));
  child.kill(signal);
  await exited;
}

export const kill9 = (server: CliServer) => signalAndWait(server, 'SIGKILL');
export const stop = (server: CliServer) => signalAndWait(server, 'SIGTERM');

/** Every persisted event of a session, read through a fresh stream (replay from 0). */
export async function persistedEvents(api: ApiClient, id: string, atLeast = 0): Promise<PersistedEvent[]> {
  const s = await api.get(id);
  const last = s.body.lastEventId ?? 0;
  const stream = await api.stream(id);
  try {
    const want = Math.max(last, atLeast);
    if (want > 0) await stream.waitFor((e) => e.id >= want, 10_000, `event ${want}`);
    return stream.persisted() as PersistedEvent[];
  } finally {
    await stream.close();
  }
}

/** What was persisted before the fault is still there, unchanged and first; ids have no gaps. */
export function assertIntact(before: PersistedEvent[], after: PersistedEvent[]): void {
  assert.deepEqual(after.map((e) => e.id), after.map((_, i) => i + 1), 'ids strictly increasing, no gaps');
  assert.ok(after.length >= before.length, `events lost: ${before.length} before, ${after.length} after`);
  assert.deepEqual(after.slice(0, before.length), before, 'earlier events unchanged and in order');
}

/** An agent command whose first turn writes some output and then hangs; later turns answer at once. */
export function firstTurnHangs(): string {
  const marker = join(tempDir('berth-marker-'), 'first-turn');
  return `if [ -f ${marker} ]; then cat; else touch ${marker}; echo partial answer; sleep 60; fi`;
}

export const SETTLED = ['ready', 'running', 'failed', 'sleeping'];

export async function waitSettled(api: ApiClient, id: string, timeoutMs = 30_000): Promise<SessionView> {
  return api.waitFor(id, (s) => SETTLED.includes(s.status), timeoutMs);
}

/** Pids of live processes (other than `except`) whose command line or environment mentions `needle`. */
export function processesMentioning(needle: string, except: number[] = []): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || except.includes(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie holds nothing
      if (cmd.includes(needle) || env.includes(needle)) found.push({ pid, cmd });
    } catch {
      /* gone, or not ours to read */
    }
  }
  return found;
}

export function alive(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  });
}

/** Temp files a preparation may leave: session import files, half-fetched packs in mirrors. */
export function leftoverTempFiles(dataDir: string, sessionId: string): string[] {
  const out: string[] = [];
  const shared = join(dataDir, 'shared', sessionId);
  if (existsSync(shared)) out.push(...readdirSync(shared).filter((f) => f.startsWith('import-')).map((f) => join(shared, f)));
  const mirrors = join(dataDir, 'mirrors');
  if (existsSync(mirrors)) {
    for (const m of readdirSync(mirrors)) {
      const objects = join(mirrors, m, 'objects');
      if (!existsSync(objects)) continue;
      out.push(...readdirSync(objects).filter((f) => f.startsWith('incoming-')).map((f) => join(objects, f)));
      const pack = join(objects, 'pack');
      if (existsSync(pack)) out.push(...readdirSync(pack).filter((f) => f.startsWith('tmp_')).map((f) => join(pack, f)));
    }
  }
  return out;
}

/**
 * A git:// remote that can be switched between hanging (accepts, never answers) and serving (a
 * real `git daemon` behind a TCP proxy). `url(bare)` names a bare repo made by makeRepo.
 */
export class SwitchableGitRemote {
  hang = true;
  private readonly held = new Set<Socket>();
  private readonly piped = new Set<Socket>();
  private constructor(
    private readonly basePath: string,
    private readonly proxy: Server,
    private readonly daemon: ChildProcess,
    readonly port: number,
  ) {}

  static async start(basePath = tmpdir()): Promise<SwitchableGitRemote> {
    const daemonPort = await freePort();
    // Own process group: `git daemon` runs git-daemon as a child, killed together with it.
    const daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${basePath}`, '--listen=127.0.0.1', `--port=${daemonPort}`, basePath], {
      stdio: 'ignore',
      detached: true,
    });
    await waitListening(daemonPort);
    let self: SwitchableGitRemote | undefined;
    const proxy = createServer((client) => {
      client.on('error', () => client.destroy());
      if (!self || self.hang) {
        self?.held.add(client);
        client.on('close', () => self?.held.delete(client));
        return;
      }
      self.piped.add(client);
      client.on('close', () => self?.piped.delete(client));
      const upstream = connect(daemonPort, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    self = new SwitchableGitRemote(basePath, proxy, daemon, (proxy.address() as { port: number }).port);
    return self;
  }

  /** The git:// URL of a bare repo under the base path (makeRepo's live under the temp dir). */
  url(bareRepo: string): string {
    return `git://127.0.0.1:${this.port}/${relative(this.basePath, bareRepo)}`;
  }

  /** Connections held open right now (a hanging clone or fetch is one). */
  heldCount(): number {
    return this.held.size;
  }

  async close(): Promise<void> {
    for (const s of [...this.held, ...this.piped]) s.destroy();
    if (this.daemon.pid) process.kill(-this.daemon.pid, 'SIGKILL');
    await new Promise((r) => this.proxy.close(r));
  }
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
