// Host processes Berth starts for a session (setup, agent host, git, the Dev Containers CLI and its
// docker clients) carry two environment tags, so that a server restarted after `kill -9` finds and
// kills what its predecessor left running, and never touches another instance's processes.
import { readdirSync, readFileSync } from 'node:fs';
import { SANDBOX_OWNER_VAR, SANDBOX_SESSION_VAR } from './env';

/** The environment entries that tag a host process as this instance's, for this session. */
export function hostProcessTags(instance: string, sessionId: string): Record<string, string> {
  return { [SANDBOX_SESSION_VAR]: sessionId, [SANDBOX_OWNER_VAR]: instance };
}

/** Live processes whose environment carries the given owner tag (Linux /proc). */
export function processesOf(instance: string): { pid: number; sessionId: string | undefined }[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found: { pid: number; sessionId: string | undefined }[] = [];
  const ownerEntry = `${SANDBOX_OWNER_VAR}=${instance}`;
  for (const pid of pids) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    const vars = environ.split('\0');
    if (!vars.includes(ownerEntry)) continue;
    const session = vars.find((v) => v.startsWith(`${SANDBOX_SESSION_VAR}=`))?.slice(SANDBOX_SESSION_VAR.length + 1);
    found.push({ pid: Number(pid), sessionId: session });
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
export function killOrphanProcesses(instance: string, liveSessionIds: ReadonlySet<string>): number {
  let killed = 0;
  for (const p of processesOf(instance)) {
    if (p.sessionId && liveSessionIds.has(p.sessionId)) continue;
    killPid(p.pid);
    killed++;
  }
  return killed;
}
