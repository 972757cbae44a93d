import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { dataPaths, type ServerConfig } from './config';
import type { ServerContext } from './context';
import { EventBus } from './events/bus';
import { EventLog } from './events/log';
import { TokenAuthenticator } from './http/auth';
import { buildHttpServer } from './http/server';
import { loadTicketSecret, TicketIssuer } from './http/tickets';
import { createLogger } from './logging';
import { jobOwnerPrefix, JobRunner } from './preparation/jobs';
import { runPreparation } from './preparation/pipeline';
import { Reaper } from './preparation/reaper';
import { LocalProvider } from './sandbox/local/localProvider';
import { DevcontainerProvider } from './sandbox/devcontainer/devcontainerProvider';
import type { SandboxProvider } from './sandbox/provider';
import { RuntimeRegistry } from './sessions/runtime';
import { SessionService } from './sessions/service';
import { setStatus } from './sessions/status';
import { isPostgresUrl, openStore, storePassword } from './store/open';
import { PgEventBus } from './cluster/pgEventBus';
import { Redactor } from './util/redact';

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
      if (alive) throw new Error(`another berth-server (pid ${pid}) is using this data directory`);
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
  for (const session of await store.sessionsByStatus(['ready', 'running', 'preparing'])) {
    if (session.sandbox) await provider.destroy(session.sandbox).catch(() => {});
    if (session.status === 'preparing') {
      // Its job (released above) resumes it; a session with no job left would be stuck: fail it.
      if ((await store.activeJobs(session.id)).length === 0) {
        const error = { code: 'interrupted', message: 'preparation was interrupted by a server restart; retry it', step: session.step ?? 'failed' } as const;
        await ctx.events.append(session.id, 'error', error);
        await setStatus(ctx, session.id, 'failed', 'failed', { lastError: error, sandbox: null });
      }
      continue;
    }
    if (session.status === 'running') {
      const events = await store.readEvents(session.id, 0, 1_000_000);
      const open = openTurn(events);
      if (open) {
        await ctx.events.append(session.id, 'error', {
          code: 'server_restarted',
          message: 'the server restarted during this turn; your next message restarts the sandbox',
          turnId: open,
        });
        await ctx.events.append(session.id, 'turn_complete', { turnId: open, status: 'failed', exitCode: null, durationMs: 0 });
      }
    }
    await setStatus(ctx, session.id, 'sleeping', null, { sandbox: null });
  }
  if (released || orphans) logger.info({ released, orphans }, 'recovered from the previous run');
}

/** The turn that has a user message but no completion yet, if any. */
function openTurn(events: Awaited<ReturnType<ServerContext['store']['readEvents']>>): string | null {
  const open = new Set<string>();
  for (const e of events) {
    if (e.type === 'user_message') open.add(e.data.turnId);
    else if (e.type === 'turn_complete') open.delete(e.data.turnId);
  }
  return [...open].pop() ?? null;
}

function createProvider(config: ServerConfig, redactor: Redactor): SandboxProvider {
  if (config.provider === 'devcontainer') {
    return new DevcontainerProvider({
      instance: config.instanceTag,
      agentHostScript: config.agentHostScript,
      defaultImage: config.defaultImage,
      timeoutMs: config.timeouts.sandboxMs,
      redact: redactor.secretsList(),
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
  for (const name of ['BERTH_LLM_API_KEY']) redactor.add(process.env[name]);
  redactor.add(storePassword(config.store));
  redactor.add(config.llm?.apiKey); // set by config, not only by the environment
  const logger = options.logger ?? createLogger(config.logLevel, redactor);
  const clock = options.clock ?? Date.now;
  const origin = `${config.instanceTag}:${process.pid}:${Date.now().toString(36)}`;
  const store = await openStore(config.store, paths.database, origin);
  const bus = isPostgresUrl(config.store)
    ? await PgEventBus.start(config.store, origin, store, logger).catch(async (err: unknown) => {
        await store.close();
        throw err;
      })
    : new EventBus();
  const provider = options.provider ?? createProvider(config, redactor);
  const ctx: ServerContext = {
    config,
    paths,
    store,
    bus,
    events: new EventLog(store, bus),
    provider,
    runtimes: new RuntimeRegistry(),
    logger,
    redactor,
    clock,
  };

  await recover(ctx);
  const jobs = new JobRunner(ctx, (job, signal) => runPreparation(ctx, job, signal));
  const sessions = new SessionService(ctx, jobs);
  const tickets = new TicketIssuer(loadTicketSecret(paths.ticketSecretFile), config.ticketTtlMs, clock);
  const { app, streams } = buildHttpServer(ctx, sessions, new TokenAuthenticator(config.tokens), tickets);
  const reaper = new Reaper(ctx, jobs);

  await app.listen({ host: config.host, port: config.port });
  const port = (app.server.address() as AddressInfo).port;
  jobs.start();
  reaper.start();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      reaper.stop();
      streams.close();
      await jobs.stop();
      await Promise.all(ctx.runtimes.all().map((r) => r.dispose().catch(() => {})));
      await app.close();
      await bus.close();
      await store.close();
      releaseLock();
    })());

  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { url: `http://${host}:${port}`, port, ctx, jobs, reaper, close };
}
