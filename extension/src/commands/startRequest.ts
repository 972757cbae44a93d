// Turns what the user typed into a StartSessionRequest, checked with the protocol's own schema.
import { StartSessionRequest } from '@berth/protocol';

export interface StartInput {
  repoUrl: string;
  branch?: string;
  prompt: string;
  /** Setup commands, one per entry; blank entries are dropped. */
  setup?: string[];
  autoInitiate: boolean;
  /** The dev container config to use (a path in the repository), when it has several. */
  devcontainer?: string;
  model?: string;
}

export type BuiltRequest = { ok: true; request: StartSessionRequest } | { ok: false; message: string };

export function buildStartRequest(input: StartInput): BuiltRequest {
  const setup = (input.setup ?? []).map((c) => c.trim()).filter(Boolean);
  const branch = input.branch?.trim();
  const prompt = input.prompt.trim();
  const candidate = {
    repo: { url: input.repoUrl.trim(), ...(branch ? { branch } : {}) },
    ...(prompt ? { prompt } : {}),
    ...(setup.length ? { setup } : {}),
    ...(input.autoInitiate ? { autoInitiate: true } : {}),
    ...(input.devcontainer ? { devcontainer: input.devcontainer } : {}),
    ...(input.model ? { model: input.model } : {}),
  };
  const parsed = StartSessionRequest.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, message: issue ? `${issue.path.join('.') || 'request'}: ${issue.message}` : 'invalid request' };
  }
  return { ok: true, request: parsed.data };
}

/** `url#branch` → [url, branch]. */
export function splitBranch(input: string): [string, string | undefined] {
  const hash = input.lastIndexOf('#');
  if (hash <= 0) return [input, undefined];
  const branch = input.slice(hash + 1).trim();
  return [input.slice(0, hash), branch || undefined];
}
