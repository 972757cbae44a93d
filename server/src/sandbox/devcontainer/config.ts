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
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { confineRepoConfig, requireBuildInsideWorkspace, requireInsideWorkspace } from './confine.js';

export const DEFAULT_IMAGE = 'berth/base:bookworm';

export interface BindMount {
  /** Absolute host path (file or folder). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readonly?: boolean;
}

/**
 * The repo's configs where the spec looks for them, relative to the clone:
 * `.devcontainer/devcontainer.json`, `.devcontainer.json`, `.devcontainer/<folder>/devcontainer.json`.
 */
export function listRepoConfigs(workspaceFolder: string): string[] {
  const found = ['.devcontainer/devcontainer.json', '.devcontainer.json'].filter((p) => existsSync(join(workspaceFolder, p)));
  let folders: string[] = [];
  try {
    folders = readdirSync(join(workspaceFolder, '.devcontainer'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    // no .devcontainer folder
  }
  for (const folder of folders) {
    const path = `.devcontainer/${folder}/devcontainer.json`;
    if (existsSync(join(workspaceFolder, path))) found.push(path);
  }
  return found;
}

/** A config the repo cannot be started with as it is (several to choose from, a named one missing). */
export class ConfigChoiceError extends Error {}

/**
 * The config to use: the one the start named, or the repo's only one, or none (the default
 * config). Several and none named is an error that lists them.
 */
export function chooseRepoConfig(workspaceFolder: string, named: string | null | undefined): string | null {
  const configs = listRepoConfigs(workspaceFolder);
  if (named) {
    if (!existsSync(join(workspaceFolder, named))) {
      throw new ConfigChoiceError(`the dev container config ${named} is not in the repository${configs.length ? ` (it has ${configs.join(', ')})` : ' (it has none)'}`);
    }
    return join(workspaceFolder, named);
  }
  if (configs.length > 1) {
    throw new ConfigChoiceError(`the repository has several dev container configs: ${configs.join(', ')}; name the one to use when you start the session`);
  }
  return configs[0] ? join(workspaceFolder, configs[0]) : null;
}

/** A path for messages: relative to the clone (server paths are never shown). */
export function shownPath(workspaceFolder: string, path: string): string {
  const rel = relative(workspaceFolder, path);
  return rel && !rel.startsWith('..') ? rel : basename(path);
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
  /** The configuration the CLI reads (the override's content, or the repo's config as it is). */
  effective: Record<string, unknown>;
}

export interface PrepareConfigOptions {
  workspaceFolder: string;
  /** The config the start named (relative to the clone); none: the repo's only one, or the default. */
  configPath?: string | null;
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
  const repoConfigPath = chooseRepoConfig(options.workspaceFolder, options.configPath);
  const mounts = (options.mounts ?? []).map(mountString);

  let config: Record<string, unknown>;
  let dropped: string[] = [];
  if (repoConfigPath) {
    // A link to a host file would be read here, and its content shown in a parse error.
    requireInsideWorkspace(options.workspaceFolder, repoConfigPath, 'the dev container config');
    const text = await readFile(repoConfigPath, 'utf8');
    const shown = shownPath(options.workspaceFolder, repoConfigPath);
    let parsed: unknown;
    try {
      parsed = parseJsonc(text);
    } catch (error) {
      throw new Error(`${shown} is not valid JSON: ${(error as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${shown} must contain a JSON object`);
    // Whatever in it reaches the host (initializeCommand, bind mounts, runArgs…) is dropped.
    requireBuildInsideWorkspace(parsed as Record<string, unknown>, repoConfigPath, options.workspaceFolder);
    const confined = confineRepoConfig(parsed as Record<string, unknown>);
    if (mounts.length === 0 && confined.dropped.length === 0) return { source: 'repo', repoConfigPath, overrideConfigPath: null, effective: confined.config };
    config = confined.config;
    dropped = confined.dropped;
  } else {
    config = { name: 'berth-default', image: options.defaultImage ?? DEFAULT_IMAGE };
  }
  if (mounts.length > 0) {
    const existing: unknown[] = Array.isArray(config.mounts) ? (config.mounts as unknown[]) : [];
    config.mounts = [...existing, ...mounts];
  }
  await mkdir(options.configDir, { recursive: true });
  const overrideConfigPath = join(options.configDir, 'devcontainer.json');
  await writeFile(overrideConfigPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return { source: repoConfigPath ? 'repo' : 'default', repoConfigPath, overrideConfigPath, dropped, effective: config };
}
