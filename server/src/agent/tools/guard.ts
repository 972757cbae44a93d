import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** A tool refused or failed: the message goes back to the model (and into the tool_result event). */
export class ToolError extends Error {
  override name = 'ToolError';
}

export interface ResolvedPath {
  /** The real path on disk (symlinks of existing parts resolved). */
  abs: string;
  /** Relative to the workspace root, for messages ('.' for the root). */
  rel: string;
}

const realRoots = new Map<string, string>();

/** The workspace's own real path (cached: it does not move during a session). */
export async function workspaceRoot(workspace: string): Promise<string> {
  let root = realRoots.get(workspace);
  if (!root) {
    root = await realpath(workspace);
    realRoots.set(workspace, root);
  }
  return root;
}

const inside = (root: string, p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * Resolves a path the model gave (relative to the workspace, or absolute) to a real path inside
 * the workspace, or throws a ToolError. The deepest existing ancestor is resolved with realpath,
 * so neither `..`, an absolute path nor a symbolic link (to a file or a folder, existing or not)
 * can lead outside, for reads and writes alike.
 */
export async function resolveInWorkspace(workspace: string, path: unknown): Promise<ResolvedPath> {
  if (typeof path !== 'string' || path.length === 0) throw new ToolError('a path is required');
  if (path.includes('\0')) throw new ToolError('the path contains a NUL character');
  const root = await workspaceRoot(workspace);
  const lexical = resolve(isAbsolute(path) ? '/' : workspace, path);
  if (!inside(resolve(workspace), lexical) && !inside(root, lexical)) {
    throw new ToolError(`"${path}" is outside the workspace; use a path relative to the workspace root`);
  }
  // Walk up to the deepest part that exists, resolve it for real, then put the missing tail back.
  const tail: string[] = [];
  let existing = lexical;
  let real: string;
  for (;;) {
    try {
      real = await realpath(existing);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new ToolError(`"${path}" goes through a loop of symbolic links`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ToolError(`cannot resolve "${path}": ${(err as Error).message}`);
      const link = await lstat(existing).catch(() => null);
      if (link) {
        // It exists but does not resolve: a symbolic link to a missing target. Writing through it
        // would create the target, wherever it points.
        throw new ToolError(`"${path}" is (or goes through) a symbolic link to a missing target; refusing to follow it`);
      }
      const parent = dirname(existing);
      if (parent === existing) throw new ToolError(`cannot resolve "${path}"`);
      tail.unshift(basename(existing));
      existing = parent;
    }
  }
  const abs = tail.length ? join(real, ...tail) : real;
  if (!inside(root, abs)) {
    throw new ToolError(`"${path}" resolves through a symbolic link to a place outside the workspace; refusing to follow it`);
  }
  return { abs, rel: relative(root, abs) || '.' };
}

// Argument helpers: a clear message when the model sends the wrong shape.
export type Args = Record<string, unknown>;

export function stringArg(args: Args, name: string, required: true): string;
export function stringArg(args: Args, name: string, required: false): string | undefined;
export function stringArg(args: Args, name: string, required: boolean): string | undefined {
  const value = args[name];
  if (value === undefined || value === null) {
    if (required) throw new ToolError(`the argument "${name}" is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw new ToolError(`the argument "${name}" must be a string`);
  return value;
}

export function numberArg(args: Args, name: string): number | undefined {
  const value = args[name];
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new ToolError(`the argument "${name}" must be a number`);
  return n;
}

export function booleanArg(args: Args, name: string): boolean {
  const value = args[name];
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new ToolError(`the argument "${name}" must be true or false`);
}
