import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { booleanArg, resolveInWorkspace, stringArg, ToolError } from './guard';
import type { Tool } from './types';

const SKIPPED = new Set(['.git', 'node_modules']);

export const listFiles: Tool = {
  name: 'list_files',
  description:
    'List the files and folders at a path of the workspace (folders end with "/", symbolic links with "@"). ' +
    'With recursive, lists the whole tree below it (skipping .git and node_modules).',
  parameters: {
    type: 'object',
    properties: {
      path: { type: 'string', description: 'Folder relative to the workspace root; default "."' },
      recursive: { type: 'boolean', description: 'List subfolders too; default false' },
    },
    additionalProperties: false,
  },
  async run(args, ctx) {
    const target = await resolveInWorkspace(ctx.workspace, stringArg(args, 'path', false) || '.');
    const recursive = booleanArg(args, 'recursive');
    const info = await stat(target.abs).catch(() => null);
    if (!info) throw new ToolError(`"${target.rel}" does not exist`);
    if (!info.isDirectory()) return { ok: true, output: target.rel };
    const max = ctx.limits.listMaxEntries;
    const lines: string[] = [];
    let truncated = false;
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
      for (const e of entries) {
        if (lines.length >= max) {
          truncated = true;
          return;
        }
        const name = prefix + e.name;
        if (e.isDirectory()) {
          if (recursive && SKIPPED.has(e.name)) {
            lines.push(`${name}/ (not listed)`);
            continue;
          }
          lines.push(name + '/');
          if (recursive) await walk(join(dir, e.name), name + '/');
        } else lines.push(e.isSymbolicLink() ? name + '@' : name);
      }
    };
    await walk(target.abs, '');
    if (lines.length === 0) return { ok: true, output: `"${target.rel}" is empty` };
    if (truncated) lines.push(`[listing stopped after ${max} entries]`);
    return { ok: true, output: lines.join('\n') };
  },
};
