// SQLite runs a WAL checkpoint (which syncs the database file) on whichever connection commits past
// the threshold: that was a request on the fast path, stalled 10–15 ms by the disk. Here the
// server's own connection never checkpoints; a worker thread with its own connection does, in the
// background, PASSIVE only (it never waits for, nor blocks, the server's readers and writers).
// Durability is unchanged: commits are in the WAL either way.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const DEFAULT_INTERVAL_MS = 1000;

// CommonJS run by the worker: the driver is loaded by its resolved path, so it works from the
// bundle and from the sources alike.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
parentPort.on('message', (mode) => {
  if (mode === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, busy: result.busy, log: result.log, checkpointed: result.checkpointed });
  } catch (err) {
    parentPort.postMessage({ ok: false, error: String(err && err.message || err) });
  }
});
`;

export interface CheckpointResult {
  ok: boolean;
  busy?: number;
  log?: number;
  checkpointed?: number;
  error?: string;
}

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly timer: NodeJS.Timeout;
  private inFlight = false;
  private readonly waiters: ((result: CheckpointResult) => void)[] = [];

  constructor(
    file: string,
    private readonly onError: (message: string) => void = () => {},
    intervalMs = DEFAULT_INTERVAL_MS,
  ) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file } });
    this.worker.unref();
    this.worker.on('message', (result: CheckpointResult) => {
      this.inFlight = false;
      if (!result.ok) this.onError(result.error ?? 'checkpoint failed');
      for (const resolve of this.waiters.splice(0)) resolve(result);
    });
    this.worker.on('error', (err) => this.onError(err.message));
    // A checkpoint with nothing to copy costs the worker a few microseconds: no write tracking needed.
    this.timer = setInterval(() => void this.checkpoint(), intervalMs);
    this.timer.unref();
  }

  /** Runs one PASSIVE checkpoint now, in the worker. */
  checkpoint(): Promise<CheckpointResult> {
    const done = new Promise<CheckpointResult>((resolve) => this.waiters.push(resolve));
    if (!this.inFlight) {
      this.inFlight = true;
      this.worker.postMessage('passive');
    }
    return done;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.worker.ref(); // held until it has closed its connection
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('close');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    await this.worker.terminate();
  }
}
