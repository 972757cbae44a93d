import { readFileSync } from 'node:fs';
import {
  AGENT_PROTOCOL_VERSION,
  AgentMessage,
  HostCommand,
  SessionImportFile,
  type TranscriptEntry,
} from '@berth/protocol';
import type { AgentDriver, TurnIO } from './driver';

type Send = (message: AgentMessage) => void;

/**
 * The agent host: reads commands (JSON lines) from the server, runs turns with its driver and
 * reports everything back as JSON lines. One turn at a time.
 */
export class AgentHost {
  private transcript: TranscriptEntry[] = [];
  private turn: { turnId: string; controller: AbortController } | null = null;

  constructor(
    private readonly driver: AgentDriver,
    private workspace: string,
    private readonly send: Send,
  ) {}

  hello(): void {
    this.send({ type: 'hello', version: AGENT_PROTOCOL_VERSION, driver: this.driver.name, pid: process.pid });
  }

  /** Handles one raw line from the server; bad input is reported, never fatal. */
  handleLine(line: string): 'continue' | 'shutdown' {
    if (!line.trim()) return 'continue';
    let parsed: HostCommand;
    try {
      parsed = HostCommand.parse(JSON.parse(line));
    } catch {
      this.send({ type: 'error', code: 'bad_command', message: 'the agent host received a malformed command' });
      return 'continue';
    }
    switch (parsed.type) {
      case 'init':
        this.driver.configure?.(parsed.secrets);
        return 'continue';
      case 'import':
        this.importSession(parsed.file);
        return 'continue';
      case 'turn':
        void this.runTurn(parsed.turnId, parsed.text);
        return 'continue';
      case 'interrupt':
        if (this.turn?.turnId === parsed.turnId) this.turn.controller.abort();
        return 'continue';
      case 'shutdown':
        this.turn?.controller.abort();
        return 'shutdown';
    }
  }

  private importSession(file: string): void {
    try {
      const data = SessionImportFile.parse(JSON.parse(readFileSync(file, 'utf8')));
      this.transcript = [...data.transcript];
      this.workspace = data.workspace;
      this.send({ type: 'imported', entries: this.transcript.length });
    } catch (err) {
      this.send({
        type: 'error',
        code: 'import_failed',
        message: `the session import file could not be read: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }

  private async runTurn(turnId: string, text: string): Promise<void> {
    if (this.turn) {
      this.send({ type: 'error', turnId, code: 'turn_in_progress', message: 'a turn is already running' });
      return;
    }
    const controller = new AbortController();
    this.turn = { turnId, controller };
    let answer = '';
    let started = false;
    const io: TurnIO = {
      started: () => {
        if (started) return;
        started = true;
        this.send({ type: 'turn_started', turnId });
      },
      output: (chunk) => {
        answer += chunk;
        this.send({ type: 'output', turnId, text: chunk });
      },
      toolCall: (callId, name, args) => this.send({ type: 'tool_call', turnId, callId, name, args }),
      toolResult: (callId, ok, output) => this.send({ type: 'tool_result', turnId, callId, ok, output }),
      error: (code, message) => this.send({ type: 'error', turnId, code, message }),
      log: (level, message) => this.send({ type: 'log', level, message }),
    };
    const prior = [...this.transcript];
    let outcome;
    try {
      outcome = await this.driver.runTurn({ turnId, text, transcript: prior, workspace: this.workspace }, io, controller.signal);
    } catch (err) {
      io.error('agent_failed', err instanceof Error ? err.message : String(err));
      outcome = { status: 'failed' as const };
    }
    this.transcript.push({ role: 'user', text }, { role: 'assistant', text: answer });
    this.turn = null;
    this.send({ type: 'turn_complete', turnId, status: outcome.status, exitCode: outcome.exitCode ?? null, ...(outcome.usage ? { usage: outcome.usage } : {}) });
  }
}
