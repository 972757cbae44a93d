import { statfs } from 'node:fs/promises';
import { BerthError } from '../../util/errors';
import type { PreparationStepModule } from '../types';

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(0)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** Refuses to start when the data dir (or the sandbox provider's storage) is nearly full. */
export const diskCheck: PreparationStepModule = {
  name: 'disk_check',
  describe: () => 'checking free disk space',
  timeoutMs: (c) => c.timeouts.diskCheckMs,
  async run(run) {
    const { config, provider } = run.ctx;
    // Both at once: the sandbox storage query (docker info) is the slow one.
    const sandboxQuery = provider.freeBytes();
    sandboxQuery.catch(() => {});
    const dataFree = await freeBytes(config.dataDir);
    if (dataFree < config.minFreeBytes) {
      throw new BerthError(
        'disk_full',
        `only ${formatBytes(dataFree)} free in the data directory; at least ${formatBytes(config.minFreeBytes)} are needed`,
      );
    }
    const sandboxFree = await sandboxQuery;
    if (sandboxFree !== null && sandboxFree < config.minFreeBytes) {
      throw new BerthError(
        'disk_full',
        `only ${formatBytes(sandboxFree)} free for ${provider.name} sandboxes; at least ${formatBytes(config.minFreeBytes)} are needed`,
      );
    }
    const extra = sandboxFree !== null ? `, ${formatBytes(sandboxFree)} for sandboxes` : '';
    return { message: `${formatBytes(dataFree)} free${extra}` };
  },
};
