// Every process the server starts is started by a small helper process, not by the server itself.
// Linux's fork() copies the page tables of the process that forks: measured here, a spawn from a
// 50 MB process blocks its thread ~1.5 ms, from a 260 MB one ~12 ms — on the server that is the
// event loop serving every request and stream. The helper stays small, so its forks are cheap, and
// they happen on its thread. The server gets a `Child`: stdio as streams, exit and close events,
// the pid, and kills (sent by the server straight to the pid or the process group).
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable, type Readable } from 'node:stream';

export type StdioMode = 'pipe' | 'ignore';

export interface LaunchOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** In a process group of its own (so a group kill reaches what it starts). */
  detached?: boolean;
  stdio?: [StdioMode, StdioMode, StdioMode];
}

/** The server's handle on a process the helper started: what Berth uses of a ChildProcess. */
export interface Child extends EventEmitter {
  /** Known once the process started (`spawn`); undefined before, and when it could not start. */
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  kill(signal?: NodeJS.Signals): boolean;
  /** Signals the process group (see `detached`); sent as soon as the process started if not yet. */
  killGroup(signal?: NodeJS.Signals): void;
  on(event: 'spawn', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'exit' | 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'spawn', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'exit' | 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

type ToHelper =
  | { op: 'spawn'; id: number; command: string; args: string[]; cwd?: string; env: NodeJS.ProcessEnv; detached: boolean; stdio: StdioMode[] }
  | { op: 'stdin'; id: number; data: Buffer }
  | { op: 'stdinEnd'; id: number };

type FromHelper =
  | { ev: 'spawn'; id: number; pid: number }
  | { ev: 'error'; id: number; message: string; code?: string }
  | { ev: 'data'; id: number; fd: 1 | 2; data: Uint8Array }
  | { ev: 'end'; id: number; fd: 1 | 2 }
  | { ev: 'stdinError'; id: number; message: string }
  | { ev: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { ev: 'close'; id: number; code: number | null; signal: NodeJS.Signals | null };

// The helper (CommonJS, run with `node -e`): spawns on request and relays stdio and events. It
// exits when the server goes (its IPC channel closes); what it started lives on in its own groups
// (found by their environment tags and killed by the next server, as before).
const HELPER_SOURCE = `
const { spawn } = require('node:child_process');
const children = new Map();
const send = (m) => { try { process.send(m); } catch {} };
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  if (m.op === 'spawn') {
    let child;
    try {
      child = spawn(m.command, m.args, { cwd: m.cwd, env: m.env, detached: m.detached, stdio: m.stdio });
    } catch (err) {
      send({ ev: 'error', id: m.id, message: String(err && err.message || err), code: err && err.code });
      send({ ev: 'close', id: m.id, code: null, signal: null });
      return;
    }
    children.set(m.id, child);
    child.once('spawn', () => send({ ev: 'spawn', id: m.id, pid: child.pid }));
    child.on('error', (err) => send({ ev: 'error', id: m.id, message: err.message, code: err.code }));
    for (const fd of [1, 2]) {
      const stream = fd === 1 ? child.stdout : child.stderr;
      if (!stream) continue;
      stream.on('data', (data) => send({ ev: 'data', id: m.id, fd, data }));
      stream.on('end', () => send({ ev: 'end', id: m.id, fd }));
    }
    if (child.stdin) child.stdin.on('error', (err) => send({ ev: 'stdinError', id: m.id, message: err.message }));
    child.on('exit', (code, signal) => send({ ev: 'exit', id: m.id, code, signal }));
    child.on('close', (code, signal) => { children.delete(m.id); send({ ev: 'close', id: m.id, code, signal }); });
  } else if (m.op === 'stdin') {
    children.get(m.id)?.stdin?.write(Buffer.from(m.data));
  } else if (m.op === 'stdinEnd') {
    children.get(m.id)?.stdin?.end();
  }
});
`;

class RemoteChild extends EventEmitter implements Child {
  pid: number | undefined = undefined;
  exitCode: number | null = null;
  readonly stdin: Writable | null;
  readonly stdout: PassThrough | null;
  readonly stderr: PassThrough | null;
  private pendingGroupKill: NodeJS.Signals | null = null;
  private closed = false;

  constructor(
    private readonly id: number,
    stdio: StdioMode[],
    private readonly post: (message: ToHelper) => void,
  ) {
    super();
    this.stdin =
      stdio[0] === 'pipe'
        ? new Writable({
            write: (chunk: Buffer, _encoding, callback) => {
              this.post({ op: 'stdin', id: this.id, data: chunk });
              callback();
            },
            final: (callback) => {
              this.post({ op: 'stdinEnd', id: this.id });
              callback();
            },
          })
        : null;
    this.stdout = stdio[1] === 'pipe' ? new PassThrough() : null;
    this.stderr = stdio[2] === 'pipe' ? new PassThrough() : null;
  }

  receive(message: FromHelper): void {
    switch (message.ev) {
      case 'spawn':
        this.pid = message.pid;
        if (this.pendingGroupKill) this.killGroup(this.pendingGroupKill);
        this.emit('spawn');
        break;
      case 'error': {
        const err = Object.assign(new Error(message.message), message.code ? { code: message.code } : {});
        this.emit('error', err);
        break;
      }
      case 'data': {
        const stream = message.fd === 1 ? this.stdout : this.stderr;
        if (stream && !stream.writableEnded) stream.write(Buffer.from(message.data));
        break;
      }
      case 'end':
        (message.fd === 1 ? this.stdout : this.stderr)?.end();
        break;
      case 'stdinError':
        this.stdin?.destroy(new Error(message.message));
        break;
      case 'exit':
        this.exitCode = message.code;
        this.emit('exit', message.code, message.signal);
        break;
      case 'close':
        if (this.closed) return;
        this.closed = true;
        // Streams the helper never ended (the process could not start) end now; like a
        // ChildProcess, `close` follows the streams' `end` (which readers get on the next tick).
        this.stdout?.end();
        this.stderr?.end();
        setImmediate(() => this.emit('close', message.code, message.signal));
        break;
    }
  }

  /** The helper is gone: the process is lost to us (its group is killed if we know it). */
  orphaned(): void {
    this.killGroup('SIGKILL');
    this.emit('error', new Error('the process launcher exited'));
    this.receive({ ev: 'close', id: this.id, code: null, signal: 'SIGKILL' });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.pid === undefined) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  killGroup(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.pid === undefined) {
      this.pendingGroupKill = signal;
      return;
    }
    try {
      process.kill(-this.pid, signal);
    } catch {
      this.kill(signal);
    }
  }
}

class Launcher {
  private helper: ChildProcess | null = null;
  private nextId = 1;
  private readonly children = new Map<number, RemoteChild>();

  private ensureHelper(): ChildProcess {
    if (this.helper) return this.helper;
    // The helper is the one process the server forks itself.
    const helper = spawn(process.execPath, ['-e', HELPER_SOURCE], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    helper.on('message', (message: FromHelper) => {
      const child = this.children.get(message.id);
      if (!child) return;
      if (message.ev === 'close') this.children.delete(message.id);
      child.receive(message);
      this.refHelper();
    });
    helper.on('exit', () => {
      if (this.helper === helper) this.helper = null;
      const lost = [...this.children.values()];
      this.children.clear();
      for (const child of lost) child.orphaned();
    });
    helper.on('error', () => {}); // reported through 'exit'
    this.helper = helper;
    return helper;
  }

  /** The helper keeps the server alive only while a process it started is running. */
  private refHelper(): void {
    const helper = this.helper;
    if (!helper) return;
    if (this.children.size > 0) {
      helper.ref();
      helper.channel?.ref();
    } else {
      helper.unref();
      helper.channel?.unref();
    }
  }

  launch(command: string, args: string[], options: LaunchOptions = {}): Child {
    const helper = this.ensureHelper();
    const id = this.nextId++;
    const stdio = options.stdio ?? ['pipe', 'pipe', 'pipe'];
    const child = new RemoteChild(id, stdio, (message) => {
      if (helper.connected) helper.send(message);
    });
    this.children.set(id, child);
    this.refHelper();
    helper.send({
      op: 'spawn',
      id,
      command,
      args,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      env: options.env ?? process.env,
      detached: options.detached ?? false,
      stdio,
    } satisfies ToHelper);
    return child;
  }
}

const launcher = new Launcher();

/**
 * Starts a process from this process itself, as a `Child`: for the agent host, which runs in the
 * sandbox, is small, and whose commands must be its own children.
 */
export function spawnHere(command: string, args: string[], options: LaunchOptions = {}): Child {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: options.detached ?? false, stdio: options.stdio ?? ['pipe', 'pipe', 'pipe'] });
  return Object.assign(child, {
    killGroup(signal: NodeJS.Signals = 'SIGKILL'): void {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        child.kill(signal);
      }
    },
  });
}

/** A child with all three stdio streams piped. */
export type PipedChild = Child & { readonly stdin: Writable; readonly stdout: Readable; readonly stderr: Readable };

/** Starts a process through the launcher helper (see the top of this file). */
export function launch(command: string, args: string[], options?: Omit<LaunchOptions, 'stdio'>): PipedChild;
export function launch(command: string, args: string[], options: LaunchOptions): Child;
export function launch(command: string, args: string[], options: LaunchOptions = {}): Child {
  return launcher.launch(command, args, options);
}
