import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { dataPaths, type ServerConfig } from './config';
import type { ServerContext } from './context';
import { EventBus } from './events/bus';
import { EventLog } from './events/log';
import { TokenAuthenticator } from './http/auth';
import { buildHttpServer } from './http/server';
import { loadTicketSecret, sharedTicketSecret, TicketIssuer } from './http/tickets';
import { createLogger } from './logging';
import { jobOwnerPrefix, JobRunner } from './preparation/jobs';
import { runPreparation, type PreparationOutcome } from './preparation/pipeline';
import { Reaper } from './sessions/reaper';
import { LocalProvider } from './sandbox/local/localProvider';
import { DevcontainerProvider } from './sandbox/devcontainer/devcontainerProvider';
import type { SandboxProvider } from './sandbox/provider';
import { RuntimeRegistry, goLiveWith } from './sessions/runtime';
import { Checkpoints } from './changes/checkpoints';
import { Vault } from './vault/vault';
import { SessionLifecycle } from './sessions/lifecycle';
import { SandboxTeardown } from './sandbox/teardown';
import { loadSecretKey } from './vault/key';
import { SessionService } from './sessions/service';
import { isPostgresUrl, openStore, storePassword } from './store/open';
import { PgEventBus } from './cluster/pgEventBus';
import { Membership } from './cluster/membership';
import { settleOrphan } from './cluster/orphans';
import { WarmPool } from './pool/warmPool';
import { Redactor } from '@berth/protocol';

export interface BerthServer {
  url: string;
  port: number;
  ctx: ServerContext;
  jobs: JobRunner;
  reaper: Reaper;
  close(): Promise<void>;
}

export interface ServerOptions {
  logger?: Logger;
  clock?: () => number;
  provider?: SandboxProvider;
}

/** Another live server holds the data directory. */
export class DataDirInUseError extends Error {
  constructor(readonly pid: number) {
    super(`another berth-server (pid ${pid}) is using this data directory`);
    this.name = 'DataDirInUseError';
  }
}

/** One server per data dir: a lock file with the owner's pid keeps a second one out. */
function acquireLock(file: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      let alive = false;
      try {
        if (pid > 0 && pid !== process.pid) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch {
        alive = false;
      }
      if (alive) throw new DataDirInUseError(pid);
      rmSync(file, { force: true }); // left by a crashed server
    }
  }
  throw new Error('could not lock the data directory');
}

/**
 * Brings sessions back to a consistent state after the previous process ended (cleanly or by
 * kill -9): nothing that ran in it is alive now, so no session may claim to be running.
 */
async function recover(ctx: ServerContext): Promise<void> {
  const { store, provider, logger } = ctx;
  const released = await store.releaseLeases(jobOwnerPrefix(ctx.config));
  const orphans = await provider.removeOrphans(new Set());
  const statuses = ['ready', 'running', 'preparing'] as const;
  // On a shared database only this instance's sessions are ours to recover; the others' are
  // alive elsewhere, or adopted by the cluster janitor once their instance is declared dead.
  const sessions = isPostgresUrl(ctx.config.store)
    ? await store.sessionsOn(ctx.config.instanceTag, [...statuses])
    : await store.sessionsByStatus([...statuses]);
  for (const session of sessions) {
    // What the agent changed since the last checkpoint is still in the work tree: keep it first.
    if (session.status !== 'preparing') await ctx.checkpoints.record(session.id, { reason: 'stop', turnId: null });
    if (session.sandbox) await ctx.teardown.destroy(session.sandbox, session.id);
    await settleOrphan(ctx, session, 'restart');
  }
  if (released || orphans) logger.info({ released, orphans }, 'recovered from the previous run');
}

function createProvider(config: ServerConfig, redactor: Redactor): SandboxProvider {
  if (config.provider === 'devcontainer') {
    return new DevcontainerProvider({
      instance: config.instanceTag,
      agentHostScript: config.agentHostScript,
      defaultImage: config.defaultImage,
      timeoutMs: config.timeouts.sandboxMs,
      redact: redactor.secretsList(),
      stateDir: dataPaths(config.dataDir).devcontainer,
      controlManifestUrl: config.controlManifestUrl,
    });
  }
  return new LocalProvider({ instance: config.instanceTag, agentHostScript: config.agentHostScript });
}

export async function startServer(config: ServerConfig, options: ServerOptions = {}): Promise<BerthServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const paths = dataPaths(config.dataDir);
  const releaseLock = acquireLock(paths.lockFile);
  const redactor = new Redactor();
  for (const token of config.tokens.values()) redactor.add(token);
  for (const name of ['BERTH_LLM_API_KEY', 'PGPASSWORD']) redactor.add(process.env[name]);
  redactor.add(storePassword(config.store));
  redactor.add(config.llm?.apiKey); // set by config, not only by the environment
  const logger = options.logger ?? createLogger(config.logLevel, redactor);
  const clock = options.clock ?? Date.now;
  const origin = `${config.instanceTag}:${process.pid}:${Date.now().toString(36)}`;
  const store = await openStore(config.store, paths.database, origin, (message) => logger.warn({ message }, 'sqlite: background WAL checkpoint failed'));
  const bus = isPostgresUrl(config.store)
    ? await PgEventBus.start(config.store, origin, store, logger).catch(async (err: unknown) => {
        await store.close();
        throw err;
      })
    : new EventBus();
  const provider = options.provider ?? createProvider(config, redactor);
  const events = new EventLog(store, bus);
  redactor.add(config.secretKey);
  const vault = await Vault.open(
    store,
    loadSecretKey({ env: config.secretKey ?? undefined, keyFile: paths.secretKeyFile, shared: isPostgresUrl(config.store) }),
    redactor,
  ).catch(async (err: unknown) => {
    await bus.close();
    await store.close();
    releaseLock();
    throw err;
  });
  const ctx: ServerContext = {
    config,
    paths,
    store,
    bus,
    events,
    provider,
    teardown: new SandboxTeardown({ store, provider, logger, instance: config.instanceTag }),
    runtimes: new RuntimeRegistry(),
    checkpoints: new Checkpoints({ config, paths, store, events, logger, redactor, vault }),
    vault,
    lifecycle: new SessionLifecycle({ store, events }),
    // An injected clock (tests moving time) is the shared one too.
    sharedClock: isPostgresUrl(config.store) && !options.clock ? () => store.now() : async () => clock(),
    logger,
    redactor,
    clock,
  };

  await recover(ctx);
  const membership = isPostgresUrl(config.store) ? new Membership(ctx) : null;
  // The session service (created below) runs queued messages when an agent becomes free.
  const goLive = goLiveWith(ctx, (id) => sessions.onIdle(id));
  const jobs: JobRunner = new JobRunner(ctx, (job, signal): Promise<PreparationOutcome> =>
    job.kind === 'message'
      ? sessions.deliverRouted(job, (resume) => runPreparation(ctx, resume, signal, goLive))
      : runPreparation(ctx, job, signal, goLive),
  );
  const sessions: SessionService = new SessionService(ctx, jobs, membership);
  // Only a container's workspace can move to its session once claimed (its bind mount follows).
  if (config.warmPool.length > 0 && provider.name !== 'devcontainer') logger.warn('the warm pool needs the devcontainer provider: not started');
  ctx.warmPool =
    config.warmPool.length > 0 && provider.name === 'devcontainer' ? new WarmPool(ctx, config.warmPool, () => jobs.reserveBackgroundSlot()) : null;
  bus.onJobQueued(() => jobs.nudge());
  bus.onControl((command) => sessions.onControl(command));
  // Several instances must accept each other's tickets: their secret lives in the shared store.
  const ticketSecret = isPostgresUrl(config.store) ? await sharedTicketSecret(store) : loadTicketSecret(paths.ticketSecretFile);
  const tickets = new TicketIssuer(ticketSecret, config.ticketTtlMs, ctx.sharedClock, store);
  const { app, streams, terminals, userStreams } = buildHttpServer(ctx, sessions, new TokenAuthenticator(config.tokens), tickets);
  const reaper = new Reaper(ctx, jobs);

  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  await membership?.start();
  jobs.start();
  reaper.start();
  await ctx.warmPool?.start();
  await sessions.drainAll();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      reaper.stop();
      membership?.stop();
      streams.close();
      terminals.close();
      userStreams.close();
      await jobs.stop();
      await ctx.warmPool?.stop();
      await Promise.all(
        ctx.runtimes.all().map((r) => r.dispose().catch((err: unknown) => ctx.logger.error({ err, sessionId: r.sessionId }, 'shutdown: stopping a runtime failed'))),
      );
      await app.close();
      await bus.close();
      await store.close();
      rmSync(serverFile, { force: true });
      releaseLock();
    })());

  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  // Who serves this data dir, for clients on this machine (a second VS Code window attaches to it).
  const serverFile = join(config.dataDir, 'server.json');
  writeFileSync(serverFile, JSON.stringify({ pid: process.pid, url }) + '\n', { mode: 0o600 });
  return { url, port, ctx, jobs, reaper, close };
}
