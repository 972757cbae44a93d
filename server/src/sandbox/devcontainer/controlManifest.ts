// The Dev Containers CLI's control manifest: its list of disallowed features and its feature
// advisories. The CLI fetches it on every `up` whose cached copy is older than 5 minutes, with no
// timeout (on a network that swallows connections `up` hangs for ever). Berth fetches it itself,
// with a short timeout, keeps the last good copy, and hands the CLI a fresh cache file every time:
// the newest good manifest, or an empty one only when none was ever fetched.
import { mkdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export const CONTROL_MANIFEST_URL = 'https://containers.dev/static/devcontainer-control-manifest.json';

const manifestSchema = z.looseObject({
  disallowedFeatures: z.array(z.looseObject({ featureIdPrefix: z.string() })),
  featureAdvisories: z.array(z.looseObject({ featureId: z.string() })),
});

const EMPTY = JSON.stringify({ disallowedFeatures: [], featureAdvisories: [] }, null, 2);

export interface ControlManifestOptions {
  url?: string;
  /** Where the last good copy is kept (the server's data dir); none: only the CLI's cache file. */
  stateFile?: string | null;
  /** The fetch gives up after this (default 2 s). */
  timeoutMs?: number;
  /** A new fetch is tried when the last attempt is older than this (default 1 hour). */
  refreshMs?: number;
}

/** Where the CLI (with this environment) looks for its cached manifest. */
export function controlManifestCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  // os.tmpdir() of the child: TMPDIR, TMP, TEMP, else /tmp (POSIX), without a trailing slash.
  const childTmp = (env.TMPDIR || env.TMP || env.TEMP || tmpdir()).replace(/(.)\/+$/, '$1');
  return join(childTmp, `devcontainercli-${userInfo().username}`, 'control-manifest.json');
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}-${process.pid}-${Date.now()}`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/** A manifest text the CLI would accept, or null. */
function validManifest(text: string): string | null {
  try {
    return manifestSchema.safeParse(JSON.parse(text)).success ? text : null;
  } catch {
    return null;
  }
}

export class ControlManifest {
  private lastAttempt = 0;
  private good: string | null = null;
  private loaded = false;
  private refreshing: Promise<boolean> | null = null;

  constructor(private readonly options: ControlManifestOptions = {}) {}

  /** Fetches the manifest now; a valid one becomes the last good copy. False when unreachable or invalid. */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.fetchOnce().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async fetchOnce(): Promise<boolean> {
    this.lastAttempt = Date.now();
    let text: string | null = null;
    try {
      const res = await fetch(this.options.url ?? CONTROL_MANIFEST_URL, {
        headers: { accept: 'application/json', 'user-agent': 'berth-server' },
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 2_000),
      });
      if (res.ok) text = validManifest(await res.text());
    } catch {
      // unreachable, refused, too slow: the last good copy stays
    }
    if (!text) return false;
    this.good = text;
    if (this.options.stateFile) await writeAtomically(this.options.stateFile, text).catch(() => {});
    return true;
  }

  /** The last good copy: fetched by this process, kept in the state file, or cached by the CLI itself. */
  private async lastGood(cacheFile: string): Promise<string | null> {
    if (!this.loaded) {
      this.loaded = true;
      if (!this.good && this.options.stateFile) this.good = validManifest(await readFile(this.options.stateFile, 'utf8').catch(() => ''));
    }
    if (this.good) return this.good;
    const cached = validManifest(await readFile(cacheFile, 'utf8').catch(() => ''));
    // An empty manifest in the cache is the fallback, not something ever fetched.
    return cached && cached !== EMPTY ? cached : null;
  }

  /**
   * Before each `up`: a fetch when the last attempt is old, then the CLI's cache file holds the
   * newest good manifest (or an empty one when none was ever fetched) and is marked fresh, so the
   * CLI never fetches it itself. Returns the cache file.
   */
  async prepare(env: NodeJS.ProcessEnv = process.env): Promise<string> {
    if (Date.now() - this.lastAttempt >= (this.options.refreshMs ?? 3_600_000)) await this.refresh();
    const file = controlManifestCacheFile(env);
    const text = (await this.lastGood(file)) ?? EMPTY;
    const current = await readFile(file, 'utf8').catch(() => null);
    if (current !== text) await writeAtomically(file, text);
    const now = new Date();
    await utimes(file, now, now);
    return file;
  }
}
