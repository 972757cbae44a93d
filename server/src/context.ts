import type { Logger } from 'pino';
import type { ServerConfig, DataPaths } from './config';
import type { Store } from './store/store';
import type { EventLog } from './events/log';
import type { EventBus } from './events/bus';
import type { SandboxProvider } from './sandbox/provider';
import type { Redactor } from '@berth/protocol';
import type { RuntimeRegistry } from './sessions/runtime';
import type { Checkpoints } from './changes/checkpoints';
import type { Vault } from './vault/vault';
import type { SessionLifecycle } from './sessions/lifecycle';
import type { SandboxTeardown } from './sandbox/teardown';
import type { WarmPool } from './pool/warmPool';

/** The server's shared parts, handed to every module that needs them. */
export interface ServerContext {
  config: ServerConfig;
  paths: DataPaths;
  store: Store;
  events: EventLog;
  bus: EventBus;
  provider: SandboxProvider;
  /** Destroys sandboxes; what could not be destroyed is retried by the reaper. */
  teardown: SandboxTeardown;
  runtimes: RuntimeRegistry;
  /** The session's work: base, checkpoints, and everything read from them. */
  checkpoints: Checkpoints;
  /** Per-user git credentials and secrets (sealed at rest). */
  vault: Vault;
  /** Sandboxes kept ready for configured repositories (null: no `--warm-pool`). */
  warmPool?: WarmPool | null;
  /** The one owner of session statuses (every change a compare-and-set). */
  lifecycle: SessionLifecycle;
  logger: Logger;
  redactor: Redactor;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  clock: () => number;
  /**
   * The time compared across instances (job leases and due times, heartbeats, ticket expiry): the
   * database's clock on PostgreSQL, never one instance's against another's; `clock` on SQLite.
   */
  sharedClock: () => Promise<number>;
}
