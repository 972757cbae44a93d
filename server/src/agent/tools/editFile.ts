import { readFile, stat, writeFile } from 'node:fs/promises';
import { booleanArg, resolveInWorkspace, stringArg, ToolError } from './guard';
import type { Tool } from './types';

/** Files larger than this are not edited in memory. */
const MAX_EDIT_BYTES = 32 * 1024 * 1024;

function countOccurrences(text: string, needle: string): number {
  let count = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) count++;
  return count;
}

export const editFile: Tool = {
  name: 'edit_file',
  description:
    'Replace an exact piece of text in a file of the workspace. old_string must match the file exactly (whitespace and ' +
    'indentation included) and appear exactly once, unless replace_all is set. Read the file first.',
  parameters: {
    type: 'object',
    properties: {
      path: { type: 'string', description: 'File path relative to the workspace root' },
      old_string: { type: 'string', description: 'The exact text to replace' },
      new_string: { type: 'string', description: 'The text to put instead' },
      replace_all: { type: 'boolean', description: 'Replace every occurrence; default false' },
    },
    required: ['path', 'old_string', 'new_string'],
    additionalProperties: false,
  },
  async run(args, ctx) {
    const target = await resolveInWorkspace(ctx.workspace, stringArg(args, 'path', true));
    const oldString = stringArg(args, 'old_string', true);
    const newString = stringArg(args, 'new_string', true);
    const all = booleanArg(args, 'replace_all');
    if (oldString.length === 0) throw new ToolError('old_string is empty; use write_file to create or replace a whole file');
    const info = await stat(target.abs).catch(() => null);
    if (!info) throw new ToolError(`"${target.rel}" does not exist; use write_file to create it`);
    if (!info.isFile()) throw new ToolError(`"${target.rel}" is not a regular file`);
    // The whole file is held in memory (twice) by the agent host: a huge one would take it down.
    if (info.size > MAX_EDIT_BYTES) throw new ToolError(`"${target.rel}" is too large (${info.size} bytes) to edit; use run_command (e.g. sed)`);
    const text = await readFile(target.abs, 'utf8');
    const count = countOccurrences(text, oldString);
    if (count === 0) {
      throw new ToolError(`old_string was not found in ${target.rel}; read the file and copy the exact text (whitespace and indentation must match)`);
    }
    if (count > 1 && !all) {
      throw new ToolError(`old_string appears ${count} times in ${target.rel}; include more surrounding text to make it unique, or set replace_all`);
    }
    let updated: string;
    if (all) updated = text.split(oldString).join(newString);
    else {
      const at = text.indexOf(oldString);
      updated = text.slice(0, at) + newString + text.slice(at + oldString.length);
    }
    await writeFile(target.abs, updated);
    return { ok: true, output: `replaced ${count} occurrence${count === 1 ? '' : 's'} in ${target.rel}` };
  },
};
