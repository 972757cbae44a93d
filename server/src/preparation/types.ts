import type { PreparationStep } from '@berth/protocol';
import type { ServerConfig } from '../config';
import type { ServerContext } from '../context';
import type { Sandbox } from '../sandbox/provider';
import type { AgentConnection } from '../agent/connection';
import type { JobRecord, SessionPatch, SessionRecord } from '../store/store';
import type { SessionSecrets } from '../vault/vault';

/** What a preparation built for a session, handed to the session layer to run. */
export interface BuiltSession {
  sessionId: string;
  sandbox: Sandbox;
  agent: AgentConnection;
}

/**
 * The live session as preparation sees it once it handed over what it built: the session layer
 * (sessions/runtime) owns it, turns the agent's messages into events and settles the status.
 */
export interface LiveSession {
  readonly agent: AgentConnection;
  beginTurn(turnId: string, text: string): void;
  abandonTurn(turnId: string): void;
  /** The last status write of a preparation, ordered with the first turn's own. */
  settleStatus(patch?: SessionPatch): Promise<void>;
  dispose(options: { checkpoint: boolean }): Promise<void>;
}

/** Makes what a preparation built the session's live runtime (provided by the session layer). */
export type GoLive = (built: BuiltSession) => LiveSession;

/** The state one preparation run carries from step to step. */
export interface PreparationRun {
  ctx: ServerContext;
  session: SessionRecord;
  job: JobRecord;
  /** Re-creating a reaped sandbox (the workspace is kept). */
  resume: boolean;
  /** Whether the workspace from an earlier run was kept (resume with an existing clone). */
  workspaceKept: boolean;
  /** Building a warm pool sandbox: no session in the store, nobody's credentials or secrets. */
  forPool: boolean;
  /** Set when the start claimed a warm pool sandbox (its clone, sandbox and maybe agent host). */
  warm: { poolId: string; readyAt: number; agentReused: boolean } | null;
  workspaceDir: string;
  sharedDir: string;
  sandbox: Sandbox | null;
  agent: AgentConnection | null;
  /** Set once the sandbox and agent were handed over (`goLive`); from then on it owns them. */
  runtime: LiveSession | null;
  goLive: GoLive;
  /** The owner's secrets for this session: all of them for setup, the agent's own for the agent. */
  secrets: SessionSecrets;
  /** The turn this run ends with: the first prompt, or the message that woke the session. */
  initiateTurn: { turnId: string; text: string; first: boolean } | null;
  /** Steps started early, while the step before them ran (see `startsEarly`); awaited in their turn. */
  early: Map<PreparationStep, Promise<StepResult>>;
  /** Appends a line to the session's preparation log (redacted). */
  log(line: string): void;
  /** Updates the running step's message (a `preparing` event with state `started`). */
  progress(message: string, detail?: string): void;
}

export interface StepResult {
  /** The `done` message, e.g. "cloned in 1.2 s". */
  message: string;
}

export interface PreparationStepModule {
  name: PreparationStep;
  /** What the step does, shown when it starts. */
  describe(run: PreparationRun): string;
  timeoutMs(config: ServerConfig): number;
  /** A reason to skip the step in this run, or null to run it. */
  skip?(run: PreparationRun): string | null;
  /**
   * Whether the step may start while the step before it still runs, because it depends on nothing
   * that step does. Its events still come in order (started once the earlier step is done); an
   * early step must not call `progress`, which belongs to the step being shown.
   */
  startsEarly?(run: PreparationRun): boolean;
  run(run: PreparationRun, signal: AbortSignal): Promise<StepResult>;
}
