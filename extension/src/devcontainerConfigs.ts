// The dev container configs of a checkout, where the spec (and the server) looks for them:
// `.devcontainer/devcontainer.json`, `.devcontainer.json`, `.devcontainer/<folder>/devcontainer.json`.
// No vscode import: tested in plain Node.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DevcontainerConfig {
  /** Relative to the checkout, with forward slashes: what the start request names. */
  path: string;
  /** The config's `name`, when it has one. */
  name?: string;
}

function nameOf(file: string): string | undefined {
  try {
    // JSONC: a `"name": "…"` near the top is all a picker needs, without a full parser.
    return /"name"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(readFileSync(file, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

export function listDevcontainerConfigs(folder: string): DevcontainerConfig[] {
  const paths = ['.devcontainer/devcontainer.json', '.devcontainer.json'].filter((p) => existsSync(join(folder, p)));
  let subfolders: string[] = [];
  try {
    subfolders = readdirSync(join(folder, '.devcontainer'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    // no .devcontainer folder
  }
  for (const sub of subfolders) if (existsSync(join(folder, '.devcontainer', sub, 'devcontainer.json'))) paths.push(`.devcontainer/${sub}/devcontainer.json`);
  return paths.map((path) => {
    const name = nameOf(join(folder, path));
    return { path, ...(name ? { name } : {}) };
  });
}
