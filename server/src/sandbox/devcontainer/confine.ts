// What a repository's devcontainer.json may not do on a Berth server: reach the host. The Dev
// Containers spec runs `initializeCommand` on the host, and bind mounts, `runArgs`, privileges and
// Compose files can hand the container the host's files; a build context or a config file that
// leads out of the clone (`../../..`, a symbolic link) hands the host's files (the server's data
// dir, tokens included) to the image or to error messages. A repo (or a setup command that
// rewrote the config in the bind-mounted workspace before a resume) is not trusted with that.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

/** Properties dropped from a repo config (the rest, image/build/features/lifecycle commands, stays). */
const HOST_REACHING = ['initializeCommand', 'runArgs', 'privileged', 'capAdd', 'securityOpt', 'workspaceMount'] as const;

/** A `mounts` entry that is not a bind mount of a host path (a named volume or a tmpfs). */
function isContainerOnly(mount: unknown): boolean {
  let type: unknown;
  if (typeof mount === 'string') {
    const parts = Object.fromEntries(mount.split(',').map((p) => p.split('=', 2).map((s) => s.trim().toLowerCase()) as [string, string?]));
    type = parts.type ?? 'volume'; // Docker's default for --mount
  } else if (mount && typeof mount === 'object') {
    type = (mount as { type?: unknown }).type ?? 'volume';
  }
  return type === 'volume' || type === 'tmpfs';
}

/**
 * Returns the config without what reaches the host, and the names of what was dropped (for the
 * session log). A Compose-based config is refused: its services can mount anything.
 */
export function confineRepoConfig(config: Record<string, unknown>): { config: Record<string, unknown>; dropped: string[] } {
  if (config.dockerComposeFile !== undefined) {
    throw new Error('Docker Compose dev containers are not supported: their services can mount host paths');
  }
  const out = { ...config };
  const dropped: string[] = [];
  for (const key of HOST_REACHING) {
    if (key in out) {
      delete out[key];
      dropped.push(key);
    }
  }
  // Extra `docker build` flags: `--network=host` reaches the host's services, `--secret src=…`
  // reads host files into the build.
  if (out.build && typeof out.build === 'object' && 'options' in out.build) {
    const { options: _options, ...build } = out.build as Record<string, unknown>;
    out.build = build;
    dropped.push('build.options');
  }
  if (out.mounts !== undefined) {
    const mounts = Array.isArray(out.mounts) ? out.mounts : [];
    const kept = mounts.filter(isContainerOnly);
    if (kept.length !== mounts.length || !Array.isArray(out.mounts)) dropped.push('bind mounts');
    out.mounts = kept;
  }
  return { config: out, dropped };
}

/** Throws unless `path` (symbolic links resolved) lies inside the workspace. */
export function requireInsideWorkspace(workspaceFolder: string, path: string, what: string): void {
  const root = realpathSync(workspaceFolder);
  let real = resolve(path);
  // The deepest part that exists, resolved for real (a missing tail cannot be a link).
  let probe = real;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  real = realpathSync(probe) + real.slice(probe.length);
  if (real !== root && !real.startsWith(root + sep)) throw new Error(`${what} leads outside the repository`);
}

/** The build's Dockerfile and context (both spellings of the spec) must stay in the clone. */
export function requireBuildInsideWorkspace(config: Record<string, unknown>, configPath: string, workspaceFolder: string): void {
  const build = (config.build && typeof config.build === 'object' ? config.build : {}) as Record<string, unknown>;
  const paths: [unknown, string][] = [
    [build.context, 'build.context'],
    [build.dockerfile, 'build.dockerfile'],
    [config.context, 'context'],
    [config.dockerFile, 'dockerFile'],
  ];
  // Local features ("./my-feature") are folders next to the config: their files go into the build.
  const features = config.features && typeof config.features === 'object' ? Object.keys(config.features) : [];
  for (const id of features) if (id.startsWith('.') || id.startsWith('/')) paths.push([id, `feature "${id}"`]);
  for (const [value, name] of paths) {
    if (typeof value === 'string') requireInsideWorkspace(workspaceFolder, resolve(dirname(configPath), value), `the config's ${name}`);
  }
}
