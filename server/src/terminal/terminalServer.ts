// Terminals into live sandboxes: one WebSocket per terminal, a real PTY on the server (node-pty)
// running the sandbox's shell (`docker exec -it …` for a container). Output is paused while the
// client lags; what the user types is never logged.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type * as NodePty from 'node-pty';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { frameText, TERMINAL_INPUT_MAX, TerminalClientMessage, TerminalQuery, type TerminalServerMessage } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { Sandbox } from '../sandbox/provider';
import { refuseSocket as refuse } from '../http/errors';
import type { TicketIssuer } from '../http/tickets';
import { authorizeUpgrade } from '../http/upgradeAuth';
import { errorMessage } from '../util/errors';

const TERMINAL_PATH = /^\/v1\/sessions\/([^/]+)\/terminal$/;
/** Output is paused above this much unsent to the client, resumed below the low mark. */
const HIGH_WATER_BYTES = 1024 * 1024;
const LOW_WATER_BYTES = 256 * 1024;
const MAX_TERMINALS_PER_SESSION = 8;

// A native module, loaded on the first terminal: a server whose node-pty did not build still serves
// everything else, and each terminal says why it cannot open.
let ptyModule: Promise<typeof NodePty> | null = null;
const loadPty = () => (ptyModule ??= import('node-pty'));

interface OpenTerminal {
  stop(reason: string): void;
}

export class TerminalServer {
  // An input message is JSON around at most TERMINAL_INPUT_MAX characters, each escaped to at most 6.
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: TERMINAL_INPUT_MAX * 6 + 1024 });
  private readonly open = new Map<string, Set<OpenTerminal>>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly tickets: TicketIssuer,
  ) {
    this.wss.on('wsClientError', (err: Error, socket: Duplex) => refuse(socket, 400, 'bad_request', err.message));
  }

  static serves(request: IncomingMessage): boolean {
    return TERMINAL_PATH.test((request.url ?? '').split('?')[0] ?? '');
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    void authorizeUpgrade(this.ctx, this.tickets, request, TERMINAL_PATH, 'terminal', TerminalQuery, 'a terminal needs ?ticket=… and optional numeric cols=… and rows=…').then(
      (result) => {
        if ('refuse' in result) return refuse(socket, ...result.refuse);
        const runtime = this.ctx.runtimes.get(result.sessionId);
        if (!runtime) return refuse(socket, 409, 'not_ready', 'the session has no running sandbox here: wake it first (POST /v1/sessions/:id/wake)');
        if ((this.open.get(result.sessionId)?.size ?? 0) >= MAX_TERMINALS_PER_SESSION) {
          return refuse(socket, 409, 'conflict', `at most ${MAX_TERMINALS_PER_SESSION} terminals per session`);
        }
        // Work in a terminal is activity: the reaper does not stop a sandbox someone is typing in.
        const touch = () => {
          runtime.lastActivity = this.ctx.clock();
        };
        return loadPty().then(
          (pty) => this.wss.handleUpgrade(request, socket, head, (ws) => this.attach(pty, ws, result.sessionId, runtime.sandbox, result.query, touch)),
          (err: unknown) => {
            this.ctx.logger.error({ err: errorMessage(err) }, 'terminals are unavailable: node-pty did not load');
            refuse(socket, 503, 'internal', `terminals are unavailable on this server (node-pty did not load: ${errorMessage(err)})`);
          },
        );
      },
      () => refuse(socket, 400, 'bad_request', 'could not open the terminal'),
    );
  }

  private attach(pty: typeof NodePty, ws: WebSocket, sessionId: string, sandbox: Sandbox, size: TerminalQuery, touch: () => void): void {
    const send = (message: TerminalServerMessage, sent?: () => void) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message), sent);
    };
    const spec = sandbox.terminal();
    let term: NodePty.IPty;
    try {
      term = pty.spawn(spec.command, spec.args, { name: 'xterm-256color', cols: size.cols, rows: size.rows, cwd: spec.cwd ?? process.cwd(), env: spec.env });
    } catch (err) {
      send({ type: 'exit', code: null, reason: `the shell could not start: ${errorMessage(err)}` });
      ws.close(1011, 'no shell');
      return;
    }
    let stopReason: string | null = null;
    let paused = false;
    const entry: OpenTerminal = {
      stop: (reason) => {
        stopReason ??= reason;
        term.kill();
      },
    };
    const mine = this.open.get(sessionId) ?? new Set();
    mine.add(entry);
    this.open.set(sessionId, mine);
    // The sandbox going away (stop, reaper, failure, delete) ends its terminals, saying so.
    const unsubscribe = this.ctx.bus.subscribe(sessionId, (event) => {
      if (event.type === 'status' && event.data.status !== 'ready' && event.data.status !== 'running') entry.stop(`the sandbox stopped (the session is ${event.data.status})`);
    });
    const cleanup = () => {
      unsubscribe();
      mine.delete(entry);
      if (mine.size === 0) this.open.delete(sessionId);
    };

    term.onData((data) => {
      touch();
      send({ type: 'output', data }, () => {
        if (paused && ws.bufferedAmount < LOW_WATER_BYTES) {
          paused = false;
          term.resume();
        }
      });
      if (!paused && ws.bufferedAmount > HIGH_WATER_BYTES) {
        paused = true;
        term.pause();
      }
    });
    term.onExit(({ exitCode, signal }) => {
      cleanup();
      // A runtime leaves the registry before its sandbox is destroyed: a shell ended by that is no exit of its own.
      if (this.ctx.runtimes.get(sessionId)?.sandbox !== sandbox) stopReason ??= 'the sandbox stopped';
      const reason = stopReason ?? (signal ? `the shell ended (signal ${signal})` : `the shell exited with code ${exitCode}`);
      send({ type: 'exit', code: stopReason ? null : exitCode, reason });
      ws.close(1000, 'terminal ended');
    });
    ws.on('message', (raw: RawData) => {
      const parsed = TerminalClientMessage.safeParse(parseJson(raw));
      if (!parsed.success) {
        ws.close(1008, 'not a terminal message');
        return;
      }
      const message = parsed.data;
      touch();
      if (message.type === 'input') term.write(message.data);
      else term.resize(message.cols, message.rows);
    });
    ws.on('close', () => entry.stop('the terminal was closed'));
    ws.on('error', () => ws.terminate());
  }

  /** Ends every terminal (shutdown). */
  close(): void {
    for (const terminals of this.open.values()) for (const t of terminals) t.stop('the server is shutting down');
    this.wss.close();
  }
}

function parseJson(raw: RawData): unknown {
  try {
    return JSON.parse(frameText(raw));
  } catch {
    return null;
  }
}
