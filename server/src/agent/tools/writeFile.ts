import { mkdir, stat, writeFile as write } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolveInWorkspace, stringArg, ToolError } from './guard';
import type { Tool } from './types';

export const writeFile: Tool = {
  name: 'write_file',
  description: 'Create a file, or replace its whole content, in the workspace. Missing folders are created.',
  parameters: {
    type: 'object',
    properties: {
      path: { type: 'string', description: 'File path relative to the workspace root' },
      content: { type: 'string', description: 'The complete new content' },
    },
    required: ['path', 'content'],
    additionalProperties: false,
  },
  async run(args, ctx) {
    const target = await resolveInWorkspace(ctx.workspace, stringArg(args, 'path', true));
    const content = stringArg(args, 'content', true);
    const info = await stat(target.abs).catch(() => null);
    if (info?.isDirectory()) throw new ToolError(`"${target.rel}" is a folder`);
    // A FIFO or a device would block the turn (or write somewhere else entirely).
    if (info && !info.isFile()) throw new ToolError(`"${target.rel}" is not a regular file`);
    await mkdir(dirname(target.abs), { recursive: true });
    await write(target.abs, content);
    return { ok: true, output: `${info ? 'replaced' : 'created'} ${target.rel} (${Buffer.byteLength(content)} bytes)` };
  },
};
