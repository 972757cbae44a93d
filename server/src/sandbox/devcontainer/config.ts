// Which devcontainer.json `up` uses, and the override config Berth writes OUTSIDE the clone.
//
// Why an override config at all:
// - a repo without a config needs one (`--override-config` is required then; `--config` must be named
//   devcontainer.json and would also work, but one mechanism is simpler);
// - read-only bind mounts cannot go through the CLI's `--mount` flag: it only accepts
//   `type=<bind|volume>,source=…,target=…[,external=…]` (no `readonly`). The config's `mounts`
//   takes Docker `--mount` strings verbatim, so `…,readonly` works there.
// The CLI reads the override's content but resolves relative paths (Dockerfile, build context)
// against the repo's own config location, so copying the repo config into the override is safe.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { confineRepoConfig, requireBuildInsideWorkspace, requireInsideWorkspace } from './confine.js';

export const DEFAULT_IMAGE = 'berth/base:bookworm';

export interface BindMount {
  /** Absolute host path (file or folder). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readonly?: boolean;
}

/** The repo's own config, in the CLI's lookup order, or null. */
export function findRepoConfig(workspaceFolder: string): string | null {
  for (const candidate of [join(workspaceFolder, '.devcontainer', 'devcontainer.json'), join(workspaceFolder, '.devcontainer.json')]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** A Docker `--mount` string. Docker splits on commas, so paths containing one are refused. */
export function mountString(mount: BindMount): string {
  for (const path of [mount.source, mount.target]) {
    if (path.includes(',') || path.includes('"')) throw new Error(`mount path not supported (contains , or "): ${path}`);
    if (!path.startsWith('/')) throw new Error(`mount path must be absolute: ${path}`);
  }
  return `type=bind,source=${mount.source},target=${mount.target}${mount.readonly ? ',readonly' : ''}`;
}

/**
 * Parses JSON with comments and trailing commas (devcontainer.json is JSONC).
 * String-aware: `//` inside a string such as a URL is kept.
 */
export function parseJsonc(text: string): unknown {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 2;
    } else {
      out += ch;
      i++;
    }
  }
  // Comments are gone; now drop trailing commas before } or ] (again skipping strings).
  return JSON.parse(stripTrailingCommas(out));
}

function stripTrailingCommas(json: string): string {
  let out = '';
  let i = 0;
  while (i < json.length) {
    const ch = json[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      out += json.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === ',') {
      let j = i + 1;
      while (j < json.length && /\s/.test(json[j]!)) j++;
      if (json[j] === '}' || json[j] === ']') {
        i++;
        continue;
      }
    }
    out += ch;
    i++;
  }
  return out;
}

export interface PreparedConfig {
  /** 'repo' when the clone has its own devcontainer.json, else 'default'. */
  source: 'repo' | 'default';
  /** The repo's config file, when there is one. */
  repoConfigPath: string | null;
  /** The override config passed with `--override-config`, or null when none is needed. */
  overrideConfigPath: string | null;
  /** What of the repo's config was dropped because it reaches the host (see confine.ts). */
  dropped?: string[];
}

export interface PrepareConfigOptions {
  workspaceFolder: string;
  /** A folder outside the clone for the generated file (one per session: the file name is fixed). */
  configDir: string;
  defaultImage?: string;
  mounts?: readonly BindMount[];
}

/**
 * Decides the config and writes the override when needed: the repo's config (or a default one
 * with `image`) plus Berth's mounts appended to its `mounts`.
 */
export async function prepareConfig(options: PrepareConfigOptions): Promise<PreparedConfig> {
  const repoConfigPath = findRepoConfig(options.workspaceFolder);
  const mounts = (options.mounts ?? []).map(mountString);

  let config: Record<string, unknown>;
  let dropped: string[] = [];
  if (repoConfigPath) {
    // A link to a host file would be read here, and its content shown in a parse error.
    requireInsideWorkspace(options.workspaceFolder, repoConfigPath, 'the dev container config');
    const text = await readFile(repoConfigPath, 'utf8');
    let parsed: unknown;
    try {
      parsed = parseJsonc(text);
    } catch (error) {
      throw new Error(`cannot parse ${repoConfigPath}: ${(error as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${repoConfigPath} must contain a JSON object`);
    // Whatever in it reaches the host (initializeCommand, bind mounts, runArgs…) is dropped.
    requireBuildInsideWorkspace(parsed as Record<string, unknown>, repoConfigPath, options.workspaceFolder);
    const confined = confineRepoConfig(parsed as Record<string, unknown>);
    if (mounts.length === 0 && confined.dropped.length === 0) return { source: 'repo', repoConfigPath, overrideConfigPath: null };
    config = confined.config;
    dropped = confined.dropped;
  } else {
    config = { name: 'berth-default', image: options.defaultImage ?? DEFAULT_IMAGE };
  }
  if (mounts.length > 0) {
    const existing = Array.isArray(config.mounts) ? config.mounts : [];
    config.mounts = [...existing, ...mounts];
  }
  await mkdir(options.configDir, { recursive: true });
  const overrideConfigPath = join(options.configDir, 'devcontainer.json');
  await writeFile(overrideConfigPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return { source: repoConfigPath ? 'repo' : 'default', repoConfigPath, overrideConfigPath, dropped };
}
