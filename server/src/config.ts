import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';

export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** `postgres://…` to share one database between several instances; null = SQLite in the data dir. */
  store: string | null;
  /** Tags this server's sandboxes (processes, containers) so that cleanup never touches another's. */
  instanceTag: string;
  provider: 'local' | 'devcontainer';
  /** Image of the default dev container config, for repos without one. */
  defaultImage: string;
  /** The Dev Containers CLI's control manifest (disallowed features, advisories). */
  controlManifestUrl: string;
  allowLocalRepos: boolean;
  /** Plain http:// repositories (tests, private networks); https, ssh and git otherwise. */
  allowHttp: boolean;
  /** The key that seals credentials and secrets (BERTH_SECRET_KEY); null: the data dir's key file (SQLite only). */
  secretKey: string | null;
  /** user → token */
  tokens: Map<string, string>;
  /** Shell command run per turn by the `command` driver; none = the built-in echo driver. */
  agentCommand: string | null;
  /**
   * An OpenAI-compatible chat completions endpoint for the built-in `llm` driver (the default
   * driver when set; `agentCommand` wins when both are). null = none.
   */
  llm: LlmConfig | null;
  /** The agent host bundle (dist/agent/agent-host.mjs). */
  agentHostScript: string;
  maxConcurrentPreparations: number;
  /** Sandboxes kept ready per repository (devcontainer provider): a matching start claims one. */
  warmPool: WarmPoolSpec[];
  timeouts: {
    diskCheckMs: number;
    cloneMs: number;
    branchMs: number;
    setupCommandMs: number;
    sandboxMs: number;
    agentStartMs: number;
    sessionImportMs: number;
    initiateMs: number;
  };
  /** A preparation running longer than this is failed by the reaper. */
  preparationBudgetMs: number;
  /** A ready sandbox idle for longer is stopped; the next message resumes it. */
  idleTimeoutMs: number;
  reaperIntervalMs: number;
  /** A repo mirror unused for longer is removed by the reaper (the next start of that repo refills it). */
  mirrorMaxAgeMs: number;
  /** An image built from a repo's dev container config and unused for longer is removed by the reaper. */
  imageMaxAgeMs: number;
  /** A checkpoint leaves out (and names) files larger than this. */
  checkpointMaxFileBytes: number;
  /** Free space the data dir must have before a clone. */
  minFreeBytes: number;
  jobLeaseMs: number;
  jobPollMs: number;
  /** A job interrupted more often than this (crashes) is failed instead of resumed. */
  maxJobAttempts: number;
  ticketTtlMs: number;
  /** Session starts per user (a token bucket); null = unlimited. */
  startRate: { perMinute: number; burst: number } | null;
  logLevel: string;
}

/** One repository (and branch, config, setup) the warm pool keeps `size` sandboxes ready for. */
export interface WarmPoolSpec {
  repo: string;
  /** null: the remote's default branch. */
  branch: string | null;
  size: number;
  /** Setup commands run in each pool sandbox; only a start with the same ones claims it. */
  setup: string[];
  /** The dev container config (a path in the repository); null: the repo's default one. */
  devcontainer: string | null;
}

export interface LlmConfig {
  /** e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1 */
  baseUrl: string;
  /** The default model: the first of `models`. */
  model: string;
  /** The models a start may choose (`--llm-models a,b,c`); at least `model`. */
  models?: string[];
  /** Handed to the agent host on its stdin (`init`), never in its argv or environment. */
  apiKey: string | null;
  /** Limits of one turn; unset = the agent host's defaults (50 tool rounds, 30 minutes). */
  maxToolRounds?: number;
  maxTurnMs?: number;
  /** run_command's default time limit. */
  commandTimeoutMs?: number;
  /** Retries of a request answered 429/5xx, and the first backoff. */
  maxRetries?: number;
  retryBaseMs?: number;
}

export function dataPaths(dataDir: string) {
  return {
    database: join(dataDir, 'berth.db'),
    tokenFile: join(dataDir, 'token'),
    ticketSecretFile: join(dataDir, 'ticket-secret'),
    /** The key that seals credentials and secrets, when BERTH_SECRET_KEY is not given (one instance). */
    secretKeyFile: join(dataDir, 'secret-key'),
    lockFile: join(dataDir, 'server.lock'),
    workspace: (sessionId: string) => join(dataDir, 'workspaces', sessionId),
    shared: (sessionId: string) => join(dataDir, 'shared', sessionId),
    /** The server's own git repository of the session's base and checkpoints. */
    checkpoints: (sessionId: string) => join(dataDir, 'checkpoints', `${sessionId}.git`),
    sessionLog: (sessionId: string) => join(dataDir, 'logs', `${sessionId}.log`),
    /** Warm pool sandboxes' clones and shared folders, until a start claims one. */
    pool: join(dataDir, 'pool'),
    /** The devcontainer provider's own files. */
    devcontainer: join(dataDir, 'devcontainer'),
  };
}
export type DataPaths = ReturnType<typeof dataPaths>;

export function defaultConfig(overrides: Partial<ServerConfig> & Pick<ServerConfig, 'dataDir' | 'agentHostScript'>): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 8717,
    store: null,
    provider: 'local',
    defaultImage: 'berth/base:bookworm',
    controlManifestUrl: 'https://containers.dev/static/devcontainer-control-manifest.json',
    allowLocalRepos: false,
    allowHttp: false,
    secretKey: null,
    tokens: new Map(),
    agentCommand: null,
    llm: null,
    maxConcurrentPreparations: 4,
    warmPool: [],
    timeouts: {
      diskCheckMs: 10_000,
      cloneMs: 300_000,
      branchMs: 30_000,
      setupCommandMs: 600_000,
      sandboxMs: 600_000,
      agentStartMs: 30_000,
      sessionImportMs: 30_000,
      initiateMs: 60_000,
    },
    preparationBudgetMs: 30 * 60_000,
    idleTimeoutMs: 30 * 60_000,
    reaperIntervalMs: 5_000,
    mirrorMaxAgeMs: 14 * 24 * 3_600_000,
    imageMaxAgeMs: 14 * 24 * 3_600_000,
    minFreeBytes: 512 * 1024 * 1024,
    checkpointMaxFileBytes: 50 * 1024 * 1024,
    jobLeaseMs: 15_000,
    jobPollMs: 1_000,
    maxJobAttempts: 3,
    ticketTtlMs: 60_000,
    // Generous for people and scripts (and `npm run bench`), tight enough to stop a runaway loop.
    startRate: { perMinute: 120, burst: 600 },
    logLevel: 'info',
    instanceTag: createHash('sha256').update(resolve(overrides.dataDir)).digest('hex').slice(0, 12),
    ...overrides,
  };
}
