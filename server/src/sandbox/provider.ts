import type { PipedChild } from '../util/launcher';

/** What the store keeps of a sandbox so that it can be destroyed after a restart. */
export type SandboxRef =
  | { provider: 'local'; instance: string; sessionId: string }
  | { provider: 'devcontainer'; containerId: string };

export interface SandboxCreateRequest {
  sessionId: string;
  /** The clone on the host. */
  workspaceDir: string;
  /** A host folder for files the server hands to the agent (session import); visible in the sandbox. */
  sharedDir: string;
  /** The repository the clone came from (names what is built from its configs). */
  repoUrl: string;
  /** Secrets for the repo's own lifecycle commands (a dev container's), never for the agent. */
  secrets?: Record<string, string>;
  /** The dev container config the start named (a path in the repository); providers without configs ignore it. */
  configPath?: string | null;
  signal: AbortSignal;
  /** Progress for the `sandbox` step: a short message and, optionally, the latest raw log line. */
  onProgress: (message: string, detail?: string) => void;
  /** Every log line of the provider, kept for diagnosis (`GET /v1/sessions/:id/log`). */
  onLog: (line: string) => void;
}

export interface SpawnOptions {
  /** Working directory inside the sandbox; defaults to the workspace. */
  cwd?: string;
  env?: Record<string, string>;
}

/** A program to run in a PTY on the server's host that is a shell in the sandbox. */
export interface TerminalCommand {
  command: string;
  args: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
}

export interface Sandbox {
  readonly ref: SandboxRef;
  /** The workspace as seen inside the sandbox. */
  readonly workspaceFolder: string;
  /** `sharedDir` as seen inside the sandbox. */
  readonly sharedFolder: string;
  /** The agent host bundle and the Node binary that runs it, as seen inside the sandbox. */
  readonly agentHost: { node: string; script: string };
  /** Things the user should know about how it was made (settings of the repo's config left out). */
  readonly notices?: readonly string[];
  /** Starts a process inside the sandbox with piped stdio, in its own process group. */
  spawn(command: string, args: string[], options?: SpawnOptions): PipedChild;
  /** An interactive shell in the workspace (as the sandbox's user), for a terminal. */
  terminal(): TerminalCommand;
  /** A warm pool sandbox claimed by a session: what it starts from now on carries the session's id. */
  assignTo?(sessionId: string): void;
  destroy(): Promise<void>;
}

export interface SandboxProvider {
  readonly name: SandboxRef['provider'];
  /** Whether setup commands must run inside the sandbox (so the `sandbox` step comes before `setup`). */
  readonly setupInsideSandbox: boolean;
  create(request: SandboxCreateRequest): Promise<Sandbox>;
  /** Destroys a sandbox known only by its stored reference (after a restart, by the reaper). */
  destroy(ref: SandboxRef): Promise<void>;
  /** Removes sandboxes left behind by an earlier process whose session is not in `liveSessionIds`. */
  removeOrphans(liveSessionIds: ReadonlySet<string>): Promise<number>;
  /** Free bytes where sandboxes store their data (e.g. Docker's data root), or null if not applicable. */
  freeBytes(): Promise<number | null>;
  /** Removes what sandboxes built and no session used for `maxAgeMs` (images); returns what went. */
  pruneBuilt?(maxAgeMs: number): Promise<string[]>;
}
