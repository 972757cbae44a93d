// Images the Dev Containers CLI builds (a Dockerfile, features) are named after the session's
// workspace folder, so every session would leave one behind. Berth names them by config instead
// (`berth-devcontainer/<key>`: one per repository and config; the next session's build reuses its
// layers), drops the CLI's name, and removes images no session used for a while.
import { mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDocker } from './docker.js';

export const IMAGE_REPOSITORY = 'berth-devcontainer';
/** How old an untagged dev container image must be before it counts as left over. */
const DANGLING_GRACE_MS = 3_600_000;

/** The image a container runs: its id, and the name it was started from. */
export interface ContainerImage {
  id: string;
  name: string;
}

/**
 * Gives a freshly built image the config's name and forgets the CLI's per-session one. An image
 * the config pointed at before (the Dockerfile changed) is removed when no container uses it.
 */
export async function adoptBuiltImage(image: ContainerImage, key: string, stampDir: string): Promise<string | null> {
  if (!image.name.startsWith('vsc-')) return null; // a plain `image:` config: nothing was built
  const target = `${IMAGE_REPOSITORY}/${key}:latest`;
  const previous = (await runDocker(['image', 'inspect', '--format', '{{.Id}}', target]).catch(() => '')).trim();
  await runDocker(['tag', image.id, target]);
  await runDocker(['rmi', '--no-prune', image.name]).catch(() => {});
  if (previous && previous !== image.id) await runDocker(['rmi', '--no-prune', previous]).catch(() => {});
  await stampUse(stampDir, key);
  return target;
}

async function stampUse(stampDir: string, key: string): Promise<void> {
  await mkdir(stampDir, { recursive: true });
  const file = join(stampDir, key);
  await writeFile(file, '', { flag: 'a' });
  const now = new Date();
  await utimes(file, now, now);
}

/**
 * Removes the config images not used for `maxAgeMs` (an image a container still runs stays), and
 * the dev container images nothing names or runs any more (an older build of a config whose
 * session has gone).
 */
export async function pruneImages(stampDir: string, maxAgeMs: number, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  // A build in progress is dangling too, between `docker build` and its tag: only images older than
  // this are left-overs (any server on this Docker daemon may be building right now).
  const danglingGraceS = Math.round(Math.min(maxAgeMs, DANGLING_GRACE_MS) / 1000);
  const dangling = await runDocker(['image', 'prune', '--force', '--filter', 'dangling=true', '--filter', 'label=devcontainer.metadata', '--filter', `until=${danglingGraceS}s`]).catch(() => '');
  for (const line of dangling.split('\n')) if (/^deleted: sha256:/i.test(line.trim())) removed.push(line.trim().slice('deleted: '.length));
  for (const key of await readdir(stampDir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{8,64}$/.test(key)) continue;
    const file = join(stampDir, key);
    const lastUse = (await stat(file).catch(() => null))?.mtimeMs;
    if (lastUse === undefined || now - lastUse < maxAgeMs) continue;
    const image = `${IMAGE_REPOSITORY}/${key}:latest`;
    try {
      await runDocker(['rmi', image]);
    } catch (err) {
      if (!/no such image/i.test(String(err))) continue; // in use: kept, and tried again later
    }
    await rm(file, { force: true });
    removed.push(image);
  }
  return removed;
}
