import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where package.json is), found from this module's location, bundled or not. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'esbuild.mjs'))) return dir;
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'dist', 'agent'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the berth package root');
    dir = parent;
  }
}

export function defaultAgentHostScript(): string {
  return join(packageRoot(), 'dist', 'agent', 'agent-host.mjs');
}
