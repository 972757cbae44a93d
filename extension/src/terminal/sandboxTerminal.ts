// A VS Code terminal whose shell runs in a session's sandbox: a Pseudoterminal over the server's
// terminal WebSocket (typed messages both ways, the server's PTY does the terminal work).
import * as vscode from 'vscode';
import WebSocket from 'ws';
import { frameText, TERMINAL_INPUT_MAX, TerminalServerMessage, type TerminalClientMessage } from '@berth/protocol';
import { errorMessage } from '../logger';

/** Opens the socket for a terminal of this size (a fresh ticket each time). */
export type TerminalConnector = (size: { cols: number; rows: number }) => Promise<string>;

const dim = (text: string) => `\r\n\x1b[2m[${text}]\x1b[0m\r\n`;

export class SandboxTerminal implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  readonly onDidWrite = this.writeEmitter.event;
  private socket: WebSocket | null = null;
  private ended = false;

  constructor(
    private readonly connect: TerminalConnector,
    private readonly onEnded: (reason: string) => void = () => {},
  ) {}

  open(initialDimensions: vscode.TerminalDimensions | undefined): void {
    const size = { cols: initialDimensions?.columns ?? 80, rows: initialDimensions?.rows ?? 24 };
    void this.connect(size).then(
      (url) => this.attach(new WebSocket(url, { handshakeTimeout: 15_000 })),
      (err: unknown) => this.end(`could not open the terminal: ${errorMessage(err)}`),
    );
  }

  private attach(socket: WebSocket): void {
    if (this.ended) return socket.close();
    this.socket = socket;
    socket.on('message', (raw: WebSocket.RawData) => {
      const parsed = TerminalServerMessage.safeParse(safeJson(frameText(raw)));
      if (!parsed.success) return;
      if (parsed.data.type === 'output') this.writeEmitter.fire(parsed.data.data);
      else this.end(parsed.data.reason);
    });
    socket.on('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on('end', () => this.end(`the server refused the terminal: ${safeErrorMessage(body) ?? `HTTP ${response.statusCode}`}`));
    });
    socket.on('error', (err) => this.end(`terminal connection failed: ${err.message}`));
    socket.on('close', () => this.end('the connection to the sandbox closed'));
  }

  /** Shows why the terminal ended and leaves its text in view; typing does nothing any more. */
  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.writeEmitter.fire(dim(reason));
    this.onEnded(reason);
    this.socket?.close();
  }

  handleInput(data: string): void {
    for (let at = 0; at < data.length; at += TERMINAL_INPUT_MAX) this.send({ type: 'input', data: data.slice(at, at + TERMINAL_INPUT_MAX) });
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    if (dimensions.columns >= 2 && dimensions.rows >= 1) this.send({ type: 'resize', cols: Math.min(1000, dimensions.columns), rows: Math.min(500, dimensions.rows) });
  }

  close(): void {
    this.ended = true;
    this.socket?.close();
    this.writeEmitter.dispose();
  }

  private send(message: TerminalClientMessage): void {
    if (!this.ended && this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function safeErrorMessage(body: string): string | null {
  const parsed = safeJson(body) as { error?: { message?: unknown } } | null;
  return typeof parsed?.error?.message === 'string' ? parsed.error.message : null;
}
