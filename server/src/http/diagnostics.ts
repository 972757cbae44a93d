// What an operator (and `npm run bench`) asks to see whether background work stalls requests: the
// event loop's delay, sampled by Node itself.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { DiagnosticsQuery, redactUrlCredentials, type DiagnosticsResponse } from '@berth/protocol';
import type { ServerContext } from '../context';
import { parseBody } from './routes';

const NS_PER_MS = 1e6;
/** Node records each sample as the time since the previous one: the interval, plus any delay. */
const RESOLUTION_MS = 2;

export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  private since: number;

  constructor(private readonly clock: () => number = Date.now) {
    this.histogram.enable();
    this.since = clock();
  }

  snapshot(reset: boolean): DiagnosticsResponse['eventLoopDelay'] {
    const h = this.histogram;
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, Math.round((ns / NS_PER_MS - RESOLUTION_MS) * 100) / 100) : 0);
    const snap = { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max), meanMs: ms(h.mean), sinceMs: this.clock() - this.since };
    if (reset) {
      h.reset();
      this.since = this.clock();
    }
    return snap;
  }

  stop(): void {
    this.histogram.disable();
  }
}

export function registerDiagnosticsRoute(app: FastifyInstance, ctx: ServerContext, monitor: EventLoopMonitor): void {
  app.get('/v1/diagnostics', async (request): Promise<DiagnosticsResponse> => {
    const query = parseBody(DiagnosticsQuery, request.query);
    return {
      eventLoopDelay: monitor.snapshot(query.reset === 'true'),
      liveSessions: ctx.runtimes.all().length,
      warmPool: (ctx.warmPool?.status() ?? []).map((p) => ({ ...p, repo: redactUrlCredentials(p.repo) })),
    };
  });
}
