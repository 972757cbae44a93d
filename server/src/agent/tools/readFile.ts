import { open, stat } from 'node:fs/promises';
import { numberArg, resolveInWorkspace, stringArg, ToolError } from './guard';
import type { Tool } from './types';

/** Line ranges of files larger than this are refused (the whole file is read to count lines). */
const MAX_RANGE_FILE_BYTES = 32 * 1024 * 1024;

async function readBytes(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export const readFile: Tool = {
  name: 'read_file',
  description:
    'Read a text file of the workspace. Large files are cut at a size limit; use start_line and end_line (1-based, inclusive) to read a part.',
  parameters: {
    type: 'object',
    properties: {
      path: { type: 'string', description: 'File path relative to the workspace root' },
      start_line: { type: 'integer', description: 'First line to return (1-based)' },
      end_line: { type: 'integer', description: 'Last line to return (inclusive)' },
    },
    required: ['path'],
    additionalProperties: false,
  },
  async run(args, ctx) {
    const target = await resolveInWorkspace(ctx.workspace, stringArg(args, 'path', true));
    const startLine = numberArg(args, 'start_line');
    const endLine = numberArg(args, 'end_line');
    const info = await stat(target.abs).catch(() => null);
    if (!info) throw new ToolError(`"${target.rel}" does not exist`);
    if (info.isDirectory()) throw new ToolError(`"${target.rel}" is a folder; use list_files`);
    if (!info.isFile()) throw new ToolError(`"${target.rel}" is not a regular file`);
    const limit = ctx.limits.readMaxBytes;
    const ranged = startLine !== undefined || endLine !== undefined;
    if (ranged && info.size > MAX_RANGE_FILE_BYTES) throw new ToolError(`"${target.rel}" is too large (${info.size} bytes) to read by lines`);
    const bytes = await readBytes(target.abs, ranged ? info.size : Math.min(info.size, limit));
    if (bytes.subarray(0, 8192).includes(0)) throw new ToolError(`"${target.rel}" is a binary file (${info.size} bytes)`);
    let text = bytes.toString('utf8');
    if (ranged) {
      const lines = text.split('\n');
      const from = Math.max(1, Math.floor(startLine ?? 1));
      const to = Math.min(lines.length, Math.floor(endLine ?? lines.length));
      if (from > lines.length) throw new ToolError(`"${target.rel}" has only ${lines.length} lines`);
      text = lines.slice(from - 1, to).join('\n');
      if (Buffer.byteLength(text) <= limit) return { ok: true, output: text };
      const cut = Buffer.from(text).subarray(0, limit).toString('utf8');
      return { ok: true, output: `${cut}\n[cut at ${limit} bytes; ask for fewer lines]` };
    }
    if (info.size <= limit) return { ok: true, output: text };
    // Cut at the last complete line (and never inside a UTF-8 sequence).
    const lastNewline = text.lastIndexOf('\n');
    if (lastNewline > 0) text = text.slice(0, lastNewline + 1);
    const shownLines = text.split('\n').length - 1;
    return {
      ok: true,
      output: `${text}[cut: the file is ${info.size} bytes, only the first ${shownLines} lines are shown; use start_line/end_line to read more]`,
    };
  },
};
