// The embedded default: with no server URL configured, the extension runs the bundled `berth-server`
// on loopback as a child process, reads the token it wrote, and stops it on deactivate.
// No vscode import: the tests start the real server through this same class.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAnnouncement, SERVER_EXIT_CODES } from '@berth/protocol';
import { silentLogger, type Logger } from '../logger';

export type EmbeddedProvider = 'local' | 'devcontainer';

export interface EmbeddedServerOptions {
  /** The Node binary that runs the server. Not the extension host's own binary: inside VS Code that is
   * Electron, whose ABI does not match the native `better-sqlite3` module the server loads. */
  nodePath: string;
  /** `dist/server/cli.js`. */
  cliPath: string;
  dataDir: string;
  provider: EmbeddedProvider;
  /** More `serve` flags (e.g. `--allow-local-repos`, `--agent-command cat`). */
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  startTimeoutMs?: number;
}

/** Another window's server holds the data directory (it announced so, or exited with the code for it). */
export class DataDirInUseError extends Error {
  constructor(readonly pid: number | null) {
    super(`another berth-server${pid ? ` (pid ${pid})` : ''} is using the data directory`);
    this.name = 'DataDirInUseError';
  }
}

/**
 * Preloaded into the server process: when our end of its stdin closes — the extension host exited,
 * even by a crash or SIGKILL — the server gets SIGTERM and shuts down cleanly instead of lingering
 * (and holding the data directory's lock).
 */
export const EXIT_WITH_PARENT =
  "data:text/javascript,process.stdin.on('end',()=>process.kill(process.pid,'SIGTERM'));process.stdin.on('error',()=>{});process.stdin.resume();";

export class EmbeddedServer {
  private exited = false;
  private readonly exitListeners = new Set<(code: number | null) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly baseUrl: string,
    readonly token: string,
    private readonly log: Logger,
  ) {
    child.once('exit', (code) => {
      this.exited = true;
      for (const listener of this.exitListeners) listener(code);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  static async start(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
    const log = options.log ?? silentLogger;
    const args = [
      '--import',
      EXIT_WITH_PARENT,
      options.cliPath,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--announce',
      'json',
      '--data-dir',
      options.dataDir,
      '--provider',
      options.provider,
      ...(options.extraArgs ?? []),
    ];
    const env = { ...(options.env ?? process.env) };
    // Without BERTH_TOKENS the server mints its own token for user `local` in <dataDir>/token.
    delete env.BERTH_TOKENS;
    delete env.ELECTRON_RUN_AS_NODE;
    log.info(`starting the local server: ${options.nodePath} ${args.join(' ')}`);
    const child = spawn(options.nodePath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });

    const logLines = (text: string) => {
      for (const line of text.split('\n')) if (line.trim()) log.debug(`[server] ${line.trim()}`);
    };
    const baseUrl = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      let stderrTail = '';
      const timer = setTimeout(() => fail(new Error(`the local server did not start within ${options.startTimeoutMs ?? 20_000} ms`)), options.startTimeoutMs ?? 20_000);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(stderrTail && !(err instanceof DataDirInUseError) ? new Error(`${err.message}: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}`) : err);
      };
      let inUse: DataDirInUseError | null = null;
      child.stdout.on('data', (chunk: Buffer) => {
        const lines = (stdout + chunk.toString()).split('\n');
        stdout = lines.pop() ?? '';
        for (const line of lines) {
          const announcement = parseAnnouncement(line);
          if (!announcement) {
            logLines(line);
          } else if (announcement.type === 'data_dir_in_use') {
            inUse = new DataDirInUseError(announcement.pid);
          } else if (!settled) {
            settled = true;
            clearTimeout(timer);
            resolve(announcement.url.replace(/\/+$/, ''));
          }
        }
      });
      child.stderr.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        stderrTail = (stderrTail + text).slice(-2000);
        logLines(text);
      });
      child.once('error', (err) => fail(new Error(`cannot run ${options.nodePath}: ${err.message}`)));
      child.once('exit', (code, signal) =>
        fail(inUse ?? (code === SERVER_EXIT_CODES.dataDirInUse ? new DataDirInUseError(null) : new Error(`the local server exited (${signal ?? `code ${code}`})`))),
      );
    });

    let token: string;
    try {
      token = (await readFile(join(options.dataDir, 'token'), 'utf8')).trim();
    } catch {
      token = await cliToken(options);
    }
    if (!token) {
      child.kill('SIGKILL');
      throw new Error('the local server wrote no token');
    }
    log.info(`local server listening on ${baseUrl} (pid ${child.pid})`);
    return new EmbeddedServer(child, baseUrl, token, log);
  }

  onExit(listener: (code: number | null) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.log.warn('the local server did not stop in time; killing it');
      this.child.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }
}

function cliToken(options: EmbeddedServerOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(options.nodePath, [options.cliPath, 'token', '--data-dir', options.dataDir], { timeout: 10_000 }, (err, stdout) => {
      if (err) reject(new Error(`cannot read the local server's token: ${err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/** Whether a Docker daemon answers (then the embedded server uses the devcontainer provider). */
export function dockerAvailable(timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: timeoutMs }, (err, stdout) => {
      resolve(!err && stdout.trim().length > 0);
    });
  });
}

/** A local server another VS Code window started on the same data dir (it wrote `server.json`). */
export interface RunningServer {
  baseUrl: string;
  token: string;
  pid: number;
}

const LOOPBACK_URL = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/;

/** The running server of `dataDir` if its process is alive and it answers on loopback; else null. */
export async function findRunningServer(dataDir: string, timeoutMs = 2000): Promise<RunningServer | null> {
  try {
    const info = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { pid?: unknown; url?: unknown };
    if (typeof info.url !== 'string' || !LOOPBACK_URL.test(info.url) || typeof info.pid !== 'number') return null;
    process.kill(info.pid, 0); // throws when no such process (a server that crashed left the file)
    if (!(await serverAnswers(info.url, timeoutMs))) return null;
    const token = (await readFile(join(dataDir, 'token'), 'utf8')).trim();
    return token ? { baseUrl: info.url, token, pid: info.pid } : null;
  } catch {
    return null;
  }
}

export async function serverAnswers(baseUrl: string, timeoutMs = 2000): Promise<boolean> {
  try {
    return (await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(timeoutMs) })).ok;
  } catch {
    return false;
  }
}
