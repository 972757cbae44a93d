import type { AgentMessage, TokenUsage } from '@berth/protocol';
import type { ServerContext } from '../context';
import type { Sandbox } from '../sandbox/provider';
import { FencedError, type SessionPatch } from '../store/store';
import type { AgentConnection } from '../agent/connection';
import type { GoLive, LiveSession } from '../preparation/types';

/** Assistant output is persisted in chunks of at most this size or this age, not one row per token. */
const COALESCE_MS = 50;
const COALESCE_BYTES = 16_384;

interface ActiveTurn {
  turnId: string;
  /** The message that started it (a checkpoint's commit message). */
  text: string;
  startedAt: number;
  /** Set once the agent reported `turn_started`; messages before that belong to the starter. */
  started: boolean;
}

/** A session's live sandbox and agent host on this instance. */
export class SessionRuntime implements LiveSession {
  turn: ActiveTurn | null = null;
  lastActivity: number;
  private pendingOutput: { turnId: string; text: string } | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  /** Persisted writes of this session, in order. */
  private writes: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** Adopted elsewhere: nothing more is written (see stopFenced). */
  private fenced = false;

  constructor(
    private readonly ctx: ServerContext,
    readonly sessionId: string,
    readonly sandbox: Sandbox,
    readonly agent: AgentConnection,
    /** Called when the agent becomes free (a turn ended, preparation settled on ready). */
    private readonly onIdle: (sessionId: string) => void = () => {},
  ) {
    this.lastActivity = ctx.clock();
    agent.onMessage((m) => this.onAgentMessage(m));
    agent.onExit((reason) => void this.onAgentExit(reason));
  }

  /** Queues a persisted write behind the earlier ones of this session. */
  private enqueue(write: () => Promise<unknown>): Promise<unknown> {
    const guarded = () => (this.fenced ? Promise.resolve() : write());
    const next = this.writes.then(guarded, guarded).catch((err: unknown) => {
      if (err instanceof FencedError) return this.stopFenced();
      this.ctx.logger.error({ err, sessionId: this.sessionId }, 'persisting an agent event failed');
    });
    this.writes = next;
    return next;
  }

  /**
   * The status once preparation is done: `running` while the first turn is open, else `ready`.
   * Written in order with the turn's own writes: a fast turn may complete before preparation's
   * last write, which must then not leave the session `running` for ever.
   */
  settleStatus(patch: SessionPatch = {}): Promise<void> {
    const write = this.writes.then(async () => {
      const status = this.turn ? 'running' : 'ready';
      if ((await this.ctx.lifecycle.transition(this.sessionId, status, { patch, fence: this.fence })) && status === 'ready') this.onIdle(this.sessionId);
    });
    this.writes = write.catch(() => {});
    return write;
  }

  /** Waits until everything received so far is stored. */
  async drain(): Promise<void> {
    this.flushOutput();
    await this.writes;
  }

  /** Registers a turn about to be sent, so its `turn_started` and later messages are recognised. */
  beginTurn(turnId: string, text: string): void {
    this.turn = { turnId, text, startedAt: this.ctx.clock(), started: false };
    this.lastActivity = this.ctx.clock();
  }

  /** Resolves once no turn is open (its end and checkpoint recorded), or after `timeoutMs`. */
  async turnEnded(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.turn && !this.disposed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await this.writes;
  }

  /** The turn could not be started: forget it (the caller reports the failure). */
  abandonTurn(turnId: string): void {
    if (this.turn?.turnId === turnId) this.turn = null;
  }

  private onAgentMessage(m: AgentMessage): void {
    this.lastActivity = this.ctx.clock();
    const turn = this.turn;
    if (m.type === 'turn_started') {
      if (turn && turn.turnId === m.turnId) turn.started = true;
      return;
    }
    if (!('turnId' in m) || !turn || !turn.started || m.turnId !== turn.turnId) return;
    const id = this.sessionId;
    const events = this.ctx.events;
    switch (m.type) {
      case 'output':
        this.bufferOutput(m.turnId, m.text);
        return;
      case 'tool_call':
        this.flushOutput();
        void this.enqueue(() => events.append(id, 'tool_call', { turnId: m.turnId, callId: m.callId, name: m.name, args: m.args }, this.fence));
        return;
      case 'tool_result':
        this.flushOutput();
        void this.enqueue(() =>
          events.append(id, 'tool_result', { turnId: m.turnId, callId: m.callId, ok: m.ok, output: this.ctx.redactor.redact(m.output) }, this.fence),
        );
        return;
      case 'error':
        this.flushOutput();
        void this.enqueue(() =>
          events.append(id, 'error', { code: m.code, message: this.ctx.redactor.redact(m.message), turnId: m.turnId }, this.fence),
        );
        return;
      case 'turn_complete': {
        this.flushOutput();
        const durationMs = Math.max(0, this.ctx.clock() - turn.startedAt);
        // The turn stays open (no new message is taken) until its checkpoint is recorded: the
        // next turn must not change the work tree while it is read, and `changes` precedes the end.
        void this.enqueue(async () => {
          await this.ctx.checkpoints.record(id, { reason: 'turn', turnId: m.turnId, prompt: turn.text, fence: this.fence });
          if (m.usage) await this.addUsage(m.usage);
          await events.append(
            id,
            'turn_complete',
            { turnId: m.turnId, status: m.status, exitCode: m.exitCode ?? null, durationMs, ...(m.usage ? { usage: m.usage } : {}) },
            this.fence,
          );
          if (this.turn === turn) this.turn = null;
          if (!this.disposed && (await this.ctx.lifecycle.transition(id, 'ready', { patch: { lastActivityAt: new Date().toISOString() }, fence: this.fence }))) {
            this.onIdle(id);
          }
        });
        return;
      }
    }
  }

  private bufferOutput(turnId: string, text: string): void {
    if (this.pendingOutput && this.pendingOutput.turnId === turnId) this.pendingOutput.text += text;
    else {
      this.flushOutput();
      this.pendingOutput = { turnId, text };
    }
    if (this.pendingOutput.text.length >= COALESCE_BYTES) this.flushOutput();
    else if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flushOutput(), COALESCE_MS);
  }

  private flushOutput(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    const pending = this.pendingOutput;
    if (!pending) return;
    this.pendingOutput = null;
    const text = this.ctx.redactor.redact(pending.text);
    void this.enqueue(() => this.ctx.events.append(this.sessionId, 'assistant_output', { turnId: pending.turnId, text }, this.fence));
  }

  /** Its writes are conditional on the session still being placed here (see FencedError). */
  /** The session's token totals grow by a turn's (this runtime is their only writer while it holds the session). */
  private async addUsage(usage: TokenUsage): Promise<void> {
    const total = (await this.ctx.store.getSession(this.sessionId))?.usage;
    const next = total ? { promptTokens: total.promptTokens + usage.promptTokens, completionTokens: total.completionTokens + usage.completionTokens } : usage;
    await this.ctx.store.updateSession(this.sessionId, { usage: next });
  }

  private get fence(): string {
    return this.ctx.config.instanceTag;
  }

  /**
   * Another instance adopted the session while this one stalled (its write was fenced, or its
   * heartbeat was taken over): stop the agent host and the sandbox, and write nothing more. What
   * the adopter recorded (the turn closed, the session asleep) stands.
   */
  async stopFenced(): Promise<void> {
    if (this.fenced) return;
    this.fenced = true;
    this.disposed = true;
    this.turn = null;
    this.ctx.runtimes.remove(this.sessionId, this);
    this.ctx.logger.warn({ sessionId: this.sessionId }, 'session adopted by another instance: stopping its sandbox here');
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.pendingOutput = null;
    this.agent.kill();
    await this.ctx.teardown.destroySandbox(this.sandbox, this.sessionId);
  }

  /** The agent host died on its own: record it, end the turn, and let the next message resume. */
  private async onAgentExit(reason: string): Promise<void> {
    if (this.disposed) return;
    this.ctx.logger.warn({ sessionId: this.sessionId }, 'agent host exited');
    const turn = this.turn;
    this.flushOutput();
    this.ctx.runtimes.remove(this.sessionId, this);
    this.disposed = true;
    await this.enqueue(async () => {
      // The work tree outlives the agent host (it is on the host, or bind-mounted): keep what it did.
      await this.ctx.checkpoints.record(this.sessionId, {
        reason: turn?.started ? 'turn' : 'stop',
        turnId: turn?.started ? turn.turnId : null,
        prompt: turn?.text,
        fence: this.fence,
      });
      if (turn?.started) {
        const message = `${this.ctx.redactor.redact(reason)}; your next message restarts the sandbox`;
        await this.ctx.events.append(this.sessionId, 'error', { code: 'agent_exited', message, turnId: turn.turnId }, this.fence);
        const durationMs = Math.max(0, this.ctx.clock() - turn.startedAt);
        await this.ctx.events.append(this.sessionId, 'turn_complete', { turnId: turn.turnId, status: 'failed', exitCode: null, durationMs }, this.fence);
      }
      await this.ctx.lifecycle.transition(this.sessionId, 'sleeping', { patch: { sandbox: null }, fence: this.fence });
    });
    await this.ctx.teardown.destroySandbox(this.sandbox, this.sessionId);
  }

  /**
   * Stops the agent host and the sandbox (stop, reaper, shutdown, delete). The work tree is
   * checkpointed first unless the session's data is going away (`checkpoint: false`).
   */
  async dispose(options: { checkpoint: boolean } = { checkpoint: true }): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.ctx.runtimes.remove(this.sessionId, this);
    await this.drain();
    if (options.checkpoint) {
      const turn = this.turn;
      const request = turn?.started ? { reason: 'turn' as const, turnId: turn.turnId, prompt: turn.text } : { reason: 'stop' as const, turnId: null };
      const fenced = await this.ctx.checkpoints.record(this.sessionId, { ...request, fence: this.fence }).then(
        () => false,
        (err: unknown) => err instanceof FencedError,
      );
      if (fenced) return this.stopFenced();
    }
    try {
      this.agent.send({ type: 'shutdown' });
    } catch {
      /* already gone */
    }
    this.agent.kill();
    await this.ctx.teardown.destroySandbox(this.sandbox, this.sessionId);
  }
}

/**
 * The session layer's side of a preparation's hand-over: what it built becomes this instance's
 * live runtime, registered before the first prompt goes out so that no agent message is missed.
 */
export function goLiveWith(ctx: ServerContext, onIdle: (sessionId: string) => void): GoLive {
  return (built) => {
    const runtime = new SessionRuntime(ctx, built.sessionId, built.sandbox, built.agent, onIdle);
    ctx.runtimes.set(runtime);
    return runtime;
  };
}

export class RuntimeRegistry {
  private readonly runtimes = new Map<string, SessionRuntime>();

  get(sessionId: string): SessionRuntime | undefined {
    return this.runtimes.get(sessionId);
  }

  set(runtime: SessionRuntime): void {
    this.runtimes.set(runtime.sessionId, runtime);
  }

  remove(sessionId: string, runtime: SessionRuntime): void {
    if (this.runtimes.get(sessionId) === runtime) this.runtimes.delete(sessionId);
  }

  all(): SessionRuntime[] {
    return [...this.runtimes.values()];
  }

  ids(): Set<string> {
    return new Set(this.runtimes.keys());
  }
}
