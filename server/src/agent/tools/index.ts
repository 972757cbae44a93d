import type { ToolSpec } from '../llm/types';
import { ToolError, type Args } from './guard';
import { editFile } from './editFile';
import { listFiles } from './listFiles';
import { readFile } from './readFile';
import { runCommand } from './runCommand';
import type { Tool, ToolContext, ToolResult } from './types';
import { writeFile } from './writeFile';

export { DEFAULT_TOOL_LIMITS, type ToolContext, type ToolLimits, type ToolResult } from './types';

/** The tools of the llm driver, every one confined to the session workspace. */
export const TOOLS: readonly Tool[] = [listFiles, readFile, writeFile, editFile, runCommand];

export function toolSpecs(tools: readonly Tool[] = TOOLS): ToolSpec[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }));
}

/** Runs one tool call; every failure (bad arguments, a refused path, an I/O error) is a result with ok false. */
export async function runTool(name: string, args: unknown, ctx: ToolContext, tools: readonly Tool[] = TOOLS): Promise<ToolResult> {
  const tool = tools.find((t) => t.name === name);
  if (!tool) return { ok: false, output: `there is no tool "${name}"; the tools are ${tools.map((t) => t.name).join(', ')}` };
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    return { ok: false, output: 'the arguments must be a JSON object' };
  }
  try {
    return await tool.run(args as Args, ctx);
  } catch (err) {
    if (err instanceof ToolError) return { ok: false, output: err.message };
    const e = err as NodeJS.ErrnoException;
    return { ok: false, output: `${name} failed: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}` };
  }
}
