// What a repository's devcontainer.json may not do on a Berth server: reach the host. The Dev
// Containers spec runs `initializeCommand` on the host, and bind mounts, `runArgs`, privileges and
// Compose files can hand the container the host's files; a build context or a config file that
// leads out of the clone (`../../..`, a symbolic link) hands the host's files (the server's data
// dir, tokens included) to the image or to error messages. A repo (or a setup command that
// rewrote the config in the bind-mounted workspace before a resume) is not trusted with that.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import type { ContainerInspect, MountSpec, ReadConfiguration } from './schemas.js';

/** Properties dropped from a repo config (the rest, image/build/features/lifecycle commands, stays). */
const HOST_REACHING = ['initializeCommand', 'runArgs', 'privileged', 'capAdd', 'securityOpt', 'workspaceMount', 'appPort'] as const;

/** A `mounts` entry's type and source: a Docker `--mount` string or the spec's object form. */
export function mountParts(mount: unknown): { type: string; source: string | undefined } {
  if (typeof mount === 'string') {
    const parts = new Map(
      mount.split(',').map((part) => {
        const [name = '', value] = part.split('=', 2);
        return [name.trim().toLowerCase(), value?.trim()] as const;
      }),
    );
    const type = (parts.get('type') ?? 'volume').toLowerCase(); // Docker's default for --mount
    const source = parts.has('source') ? parts.get('source') : parts.get('src');
    return { type, source };
  }
  if (mount && typeof mount === 'object') {
    const { type, source } = mount as { type?: unknown; source?: unknown };
    return { type: typeof type === 'string' ? type.toLowerCase() : 'volume', source: typeof source === 'string' ? source : undefined };
  }
  return { type: 'unknown', source: undefined };
}

/** A `mounts` entry that is not a bind mount of a host path (a named volume or a tmpfs). */
function isContainerOnly(mount: unknown): boolean {
  const { type } = mountParts(mount);
  return type === 'volume' || type === 'tmpfs';
}

/** Host paths Berth itself mounts (and the clone): compared after resolving links. */
function allowedSources(paths: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const path of paths) {
    out.add(resolve(path));
    try {
      out.add(realpathSync(path));
    } catch {
      /* not there (yet): its plain form is enough */
    }
  }
  return out;
}

function isAllowedBind(source: string | undefined, allowed: Set<string>): boolean {
  if (!source) return false;
  if (allowed.has(source)) return true;
  try {
    return allowed.has(realpathSync(source));
  } catch {
    return false;
  }
}

/** What one metadata entry (a feature, the merged config) asks for beyond a confined sandbox. */
function excessOf(entry: { privileged?: boolean; capAdd?: string[]; securityOpt?: string[]; mounts?: MountSpec[] }, allowed: Set<string>): string[] {
  const excess: string[] = [];
  if (entry.privileged) excess.push('privileged: true');
  if (entry.capAdd?.length) excess.push(`capAdd ${entry.capAdd.join(', ')}`);
  if (entry.securityOpt?.length) excess.push(`securityOpt ${entry.securityOpt.join(', ')}`);
  for (const mount of entry.mounts ?? []) {
    const { type, source } = mountParts(mount);
    if (type === 'volume' || type === 'tmpfs') continue;
    if (type === 'bind' && isAllowedBind(source, allowed)) continue;
    excess.push(type === 'bind' ? `a bind mount of ${source ?? '(no source)'}` : `a ${type} mount`);
  }
  return excess;
}

/**
 * Checks the configuration the Dev Containers CLI will really start the container with, merged
 * from the repo's config, its features and the image's `devcontainer.metadata` label, before any
 * container exists. Returns one sentence per source that asks for more than Berth grants (host
 * mounts other than Berth's own, privileges, capabilities, security options); empty when none.
 */
export function mergedConfigExcess(read: ReadConfiguration, berthMounts: readonly string[]): string[] {
  const allowed = allowedSources(berthMounts);
  const merged = excessOf(read.mergedConfiguration, allowed);
  if (merged.length === 0) return [];
  const problems: string[] = [];
  const explained = new Set<string>();
  for (const set of read.featuresConfiguration?.featureSets ?? []) {
    for (const feature of set.features) {
      const excess = excessOf(feature, allowed);
      if (excess.length === 0) continue;
      excess.forEach((e) => explained.add(e));
      problems.push(`feature "${set.sourceInformation?.userFeatureId ?? feature.id ?? '?'}" asks for ${listing(excess)}`);
    }
  }
  // What no feature declares comes from the image's label (the repo config's own were dropped).
  const rest = merged.filter((e) => !explained.has(e));
  if (rest.length > 0) problems.push(`the image's devcontainer.metadata label asks for ${listing(rest)}`);
  return problems;
}

/**
 * Checks a created container (`docker inspect`) against what a Berth sandbox may have: no
 * privileges, no added capabilities or security options, no devices, no host namespaces, no
 * published ports, and bind mounts only of the clone and Berth's own mounts.
 */
export function containerExcess(inspect: ContainerInspect, berthMounts: readonly string[]): string[] {
  const allowed = allowedSources(berthMounts);
  const host = inspect.HostConfig;
  const excess: string[] = [];
  if (host.Privileged) excess.push('privileged');
  if (host.CapAdd?.length) excess.push(`added capabilities ${host.CapAdd.join(', ')}`);
  if (host.SecurityOpt?.length) excess.push(`security options ${host.SecurityOpt.join(', ')}`);
  if (host.Devices?.length || host.DeviceRequests?.length) excess.push('host devices');
  if (host.VolumesFrom?.length) excess.push('volumes of other containers');
  for (const [name, mode] of [
    ['network', host.NetworkMode],
    ['PID', host.PidMode],
    ['IPC', host.IpcMode],
    ['UTS', host.UTSMode],
    ['user', host.UsernsMode],
  ] as const) {
    if (mode && (mode === 'host' || mode.startsWith('container:'))) excess.push(`the ${mode === 'host' ? "host's" : "another container's"} ${name} namespace`);
  }
  if (host.PublishAllPorts || Object.keys(host.PortBindings ?? {}).length > 0) excess.push('ports published on the host');
  for (const mount of inspect.Mounts ?? []) {
    if (mount.Type === 'volume' || mount.Type === 'tmpfs') continue;
    if (mount.Type === 'bind' && isAllowedBind(mount.Source, allowed)) continue;
    excess.push(`a ${mount.Type} mount of ${mount.Source ?? mount.Name ?? '?'} at ${mount.Destination ?? '?'}`);
  }
  return excess;
}

export function listing(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
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
