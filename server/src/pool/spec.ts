// What the warm pool keeps ready, from `--warm-pool URL[#branch]=N` flags or a JSON file
// (`--warm-pool-file`), which may also name setup commands and a dev container config.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { LIMITS, StartSessionRequest } from '@berth/protocol';
import type { WarmPoolSpec } from '../config';
import { checkBranchName } from '../git/repoUrl';
import { normalizeRepoUrl } from '../vault/vault';

const MAX_POOL_SIZE = 32;

const PoolSize = z.number().int().min(1).max(MAX_POOL_SIZE);

/** The file form: the fields a start would give, plus how many sandboxes to keep. */
const WarmPoolFile = z.strictObject({
  pools: z
    .array(
      z.strictObject({
        repo: z.string().trim().min(1).max(LIMITS.urlLength),
        branch: z.string().trim().min(1).max(LIMITS.branchLength).optional(),
        size: PoolSize,
        setup: StartSessionRequest.shape.setup,
        devcontainer: StartSessionRequest.shape.devcontainer,
      }),
    )
    .max(64),
});

export class WarmPoolSpecError extends Error {}

function checked(spec: WarmPoolSpec): WarmPoolSpec {
  const invalid = spec.branch ? checkBranchName(spec.branch) : null;
  if (invalid) throw new WarmPoolSpecError(`warm pool for ${spec.repo}: ${invalid}`);
  return spec;
}

/** `URL[#branch]=N`, e.g. `https://example.com/acme/app.git#main=2`. */
export function parseWarmPoolFlag(flag: string): WarmPoolSpec {
  const at = flag.lastIndexOf('=');
  const size = Number(flag.slice(at + 1));
  if (at <= 0 || !PoolSize.safeParse(size).success) {
    throw new WarmPoolSpecError(`--warm-pool must be URL[#branch]=N with N from 1 to ${MAX_POOL_SIZE} (got "${flag}")`);
  }
  const target = flag.slice(0, at);
  const hash = target.lastIndexOf('#');
  const repo = hash < 0 ? target : target.slice(0, hash);
  const branch = hash < 0 ? null : target.slice(hash + 1);
  if (!repo || branch === '') throw new WarmPoolSpecError(`--warm-pool needs a repository URL and, after "#", a branch (got "${flag}")`);
  return checked({ repo, branch, size, setup: [], devcontainer: null });
}

export function readWarmPoolFile(path: string): WarmPoolSpec[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new WarmPoolSpecError(`--warm-pool-file ${path}: ${(err as Error).message}`);
  }
  const parsed = WarmPoolFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WarmPoolSpecError(`--warm-pool-file ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data.pools.map((p) => checked({ repo: p.repo, branch: p.branch ?? null, size: p.size, setup: p.setup ?? [], devcontainer: p.devcontainer ?? null }));
}

/** What a start must share with a pool sandbox to claim it (the repository's commit is checked at claim). */
export interface WarmMatch {
  repoUrl: string;
  repoBranch: string | null;
  setup: readonly string[];
  devcontainer: string | null;
}

export function poolKey(m: WarmMatch): string {
  return JSON.stringify([normalizeRepoUrl(m.repoUrl), m.repoBranch, m.devcontainer, m.setup]);
}

export function specMatch(spec: WarmPoolSpec): WarmMatch {
  return { repoUrl: spec.repo, repoBranch: spec.branch, setup: spec.setup, devcontainer: spec.devcontainer };
}
