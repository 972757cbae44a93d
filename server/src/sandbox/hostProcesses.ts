// Host processes Berth starts for a session (setup, agent host, git, the Dev Containers CLI and its
// docker clients) carry two environment tags, so that a server restarted after `kill -9` finds and
// kills what its predecessor left running, and never touches another instance's processes.
import { readdir, readFile } from 'node:fs/promises';
import { SANDBOX_OWNER_VAR, SANDBOX_SESSION_VAR } from './env';

const SCAN_BATCH = 64;

/** The environment entries that tag a host process as this instance's, for this session. */
export function hostProcessTags(instance: string, sessionId: string): Record<string, string> {
  return { [SANDBOX_SESSION_VAR]: sessionId, [SANDBOX_OWNER_VAR]: instance };
}

/**
 * Live processes whose environment carries the given owner tag (Linux /proc). Read asynchronously a
 * batch at a time: a host with thousands of processes must not stall the event loop (every
 * teardown of a local sandbox scans).
 */
export async function processesOf(instance: string): Promise<{ pid: number; sessionId: string | undefined }[]> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const ownerEntry = `${SANDBOX_OWNER_VAR}=${instance}`;
  const found: { pid: number; sessionId: string | undefined }[] = [];
  for (let i = 0; i < pids.length; i += SCAN_BATCH) {
    const batch = pids.slice(i, i + SCAN_BATCH);
    const environs = await Promise.all(batch.map((pid) => readFile(`/proc/${pid}/environ`, 'utf8').catch(() => null)));
    batch.forEach((pid, k) => {
      const vars = environs[k]?.split('\0');
      if (!vars?.includes(ownerEntry)) return;
      const session = vars.find((v) => v.startsWith(`${SANDBOX_SESSION_VAR}=`))?.slice(SANDBOX_SESSION_VAR.length + 1);
      found.push({ pid: Number(pid), sessionId: session });
    });
  }
  return found;
}

export function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Kills this instance's tagged processes whose session is not live; returns how many. */
export async function killOrphanProcesses(instance: string, liveSessionIds: ReadonlySet<string>): Promise<number> {
  let killed = 0;
  for (const p of await processesOf(instance)) {
    if (p.sessionId && liveSessionIds.has(p.sessionId)) continue;
    killPid(p.pid);
    killed++;
  }
  return killed;
}

/** Kills every tagged process of one session of this instance (also those that left their process group). */
export async function killSessionProcesses(instance: string, sessionId: string): Promise<void> {
  for (const p of await processesOf(instance)) if (p.sessionId === sessionId) killPid(p.pid);
}
