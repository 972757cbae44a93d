import type { PipedChild } from '../util/launcher';
import { AGENT_PROTOCOL_VERSION, AgentMessage, type HostCommand } from '@berth/protocol';
import { BerthError } from '../util/errors';
import { OutputTail, killGroup, lineSplitter } from '../util/process';

type Listener = (message: AgentMessage) => void;

/** Longer than any protocol line (tool outputs and file reads are capped far below). */
const MAX_LINE_CHARS = 16 * 1024 * 1024;

/** The server's end of the JSON-lines pipe to an agent host running in a sandbox. */
export class AgentConnection {
  private readonly listeners = new Set<Listener>();
  private readonly exitListeners = new Set<(reason: string) => void>();
  private readonly stderr = new OutputTail(8192);
  private exitReason: string | null = null;

  constructor(
    private readonly child: PipedChild,
    private readonly onLog: (line: string) => void,
  ) {
    // The agent host runs in the sandbox, among the model's commands (which can write to its
    // stdout through /proc): a line without end must not exhaust the server's memory.
    const stdout = lineSplitter((line) => this.handleLine(line), {
      maxLength: MAX_LINE_CHARS,
      onOverflow: () => {
        const reason = `the agent host sent a line of more than ${MAX_LINE_CHARS / (1024 * 1024)} Mi characters without an end; it was stopped`;
        onLog(reason);
        this.markExited(reason);
        killGroup(child);
      },
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => stdout.push(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr.push(chunk);
      for (const line of chunk.split('\n')) if (line.trim()) onLog(`agent stderr: ${line}`);
    });
    child.stdin.on('error', () => {}); // reported through 'close'
    child.on('error', (err) => this.markExited(`the agent host could not start: ${err.message}`));
    child.on('close', (code, signal) => {
      const tail = this.stderr.lastLines(5).join(' | ');
      this.markExited(
        `the agent host exited (${signal ? `signal ${signal}` : `code ${code}`})${tail ? `: ${tail}` : ''}`,
      );
    });
  }

  get alive(): boolean {
    return this.exitReason === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private handleLine(line: string): void {
    if (!line.trim()) return;
    let message: AgentMessage;
    try {
      message = AgentMessage.parse(JSON.parse(line));
    } catch {
      this.onLog(`agent sent a line that is not protocol: ${line.slice(0, 200)}`);
      return;
    }
    if (message.type === 'log') this.onLog(`agent ${message.level}: ${message.message}`);
    for (const listener of [...this.listeners]) listener(message);
  }

  private markExited(reason: string): void {
    if (this.exitReason !== null) return;
    this.exitReason = reason;
    for (const listener of [...this.exitListeners]) listener(reason);
  }

  onMessage(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onExit(listener: (reason: string) => void): () => void {
    if (this.exitReason !== null) {
      listener(this.exitReason);
      return () => {};
    }
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  send(command: HostCommand): void {
    if (!this.alive) throw new BerthError('agent_gone', this.exitReason ?? 'the agent host is not running');
    this.child.stdin.write(JSON.stringify(command) + '\n');
  }

  /**
   * Resolves with the first message `pick` accepts; rejects when the host exits, the time runs out
   * or the signal aborts.
   */
  waitFor<T>(pick: (m: AgentMessage) => T | undefined, timeoutMs: number, what: string, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // A host that already exited answers at once, before anything below is set up.
      if (this.exitReason !== null) {
        reject(new BerthError('agent_exited', this.exitReason));
        return;
      }
      if (signal?.aborted) {
        reject(new BerthError('aborted', 'cancelled'));
        return;
      }
      const cleanup = () => {
        clearTimeout(timer);
        offMessage();
        offExit();
        signal?.removeEventListener('abort', onAbort);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new BerthError('agent_timeout', `the agent host did not ${what} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const offMessage = this.onMessage((m) => {
        let picked: T | undefined;
        try {
          picked = pick(m);
        } catch (err) {
          cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (picked !== undefined) {
          cleanup();
          resolve(picked);
        }
      });
      const offExit = this.onExit((reason) => {
        cleanup();
        reject(new BerthError('agent_exited', reason));
      });
      const onAbort = () => {
        cleanup();
        reject(new BerthError('aborted', 'cancelled'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Waits for `hello` and checks the pinned protocol version. */
  async handshake(timeoutMs: number, signal?: AbortSignal): Promise<{ driver: string; version: string }> {
    const hello = await this.waitFor((m) => (m.type === 'hello' ? m : undefined), timeoutMs, 'say hello', signal);
    if (hello.version !== AGENT_PROTOCOL_VERSION) {
      throw new BerthError(
        'agent_version_mismatch',
        `agent host version ${hello.version} does not match the pinned version ${AGENT_PROTOCOL_VERSION}; ` +
          'rebuild the agent host bundle together with the server',
        'agent_start',
      );
    }
    return { driver: hello.driver, version: hello.version };
  }

  async importSession(file: string, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    const result = this.waitFor(
      (m) => {
        if (m.type === 'imported') return m.entries;
        if (m.type === 'error' && m.code === 'import_failed') throw new BerthError('import_failed', m.message);
        return undefined;
      },
      timeoutMs,
      'import the session',
      signal,
    );
    this.send({ type: 'import', file });
    return result;
  }

  /** Sends a turn and resolves once the agent has really started it (`turn_started`). */
  async startTurn(turnId: string, text: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const started = this.waitFor(
      (m) => {
        if (m.type === 'turn_started' && m.turnId === turnId) return true;
        if (m.type === 'error' && m.turnId === turnId) throw new BerthError(m.code, m.message);
        if (m.type === 'turn_complete' && m.turnId === turnId) {
          throw new BerthError('turn_not_started', `the agent ended the turn without starting it (${m.status})`);
        }
        return undefined;
      },
      timeoutMs,
      'accept the prompt',
      signal,
    );
    this.send({ type: 'turn', turnId, text });
    await started;
  }

  kill(): void {
    killGroup(this.child);
  }
}
