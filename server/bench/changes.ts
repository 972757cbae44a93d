// Figures of the session's work (issue: the agent's work comes home), printed, never asserted:
// - a checkpoint of a 10,000-file repository with 10 files changed (the server's own code path:
//   snapshot, per-turn and cumulative stats, bundle, store, event), target ≤ 200 ms;
// - `GET /changes` and `GET /diff` of a session with 100 changed files over HTTP, target p50 ≤ 50 ms.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Checkpoints } from '../src/changes/checkpoints';
import { dataPaths, defaultConfig } from '../src/config';
import { EventBus } from '../src/events/bus';
import { EventLog } from '../src/events/log';
import { SqliteStore } from '../src/store/sqlite/sqliteStore';
import { Redactor } from '@berth/protocol';
import { Vault } from '../src/vault/vault';
import { randomBytes } from 'node:crypto';
import { ApiClient, AGENT_HOST, makeRepo, spawnCli, tempDir } from '../test/helpers';

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** A repository shaped like a real one: 10,000 files, 25 to a folder, in 400 folders of 20 packages. */
const bigRepoPath = (i: number) => `pkg${Math.floor(i / 500)}/mod${Math.floor(i / 25) % 20}/file${i}.ts`;

function bigRepoFiles(count: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) files[bigRepoPath(i)] = `export const value${i} = ${i};\n// ${'x'.repeat(200)}\n`;
  return files;
}

async function checkpointTime(): Promise<void> {
  const bare = makeRepo(bigRepoFiles(10_000));
  const dataDir = tempDir('berth-bench-ckpt-');
  const config = defaultConfig({ dataDir, agentHostScript: AGENT_HOST });
  const paths = dataPaths(dataDir);
  const store = new SqliteStore(paths.database);
  const events = new EventLog(store, new EventBus());
  const redactor = new Redactor();
  const vault = await Vault.open(store, { key: randomBytes(32), name: 'the bench key' }, redactor);
  const checkpoints = new Checkpoints({ config, paths, store, events, logger: pino({ level: 'silent' }), redactor, vault });
  const id = 'ses_benchcheckpoint0000000';
  const now = new Date().toISOString();
  await store.createSession({
    id, owner: 'bench', repoUrl: bare, repoBranch: null, prompt: null, setup: [], autoInitiate: false, status: 'ready', step: null,
    createdAt: now, updatedAt: now, preparedAt: now, initiatedAt: null, lastError: null, lastEventId: 0, sandbox: null,
    initialTurnId: null, lastActivityAt: now,
  });
  const workspace = paths.workspace(id);
  mkdirSync(join(workspace, '..'), { recursive: true });
  execFileSync('git', ['clone', '-q', bare, workspace]);
  execFileSync('git', ['-C', workspace, 'switch', '-q', '-c', 'berth/bench']);
  const captureStarted = performance.now();
  await checkpoints.prepareWorkspace((await store.getSession(id))!, workspace, 'berth/bench');
  const captureMs = performance.now() - captureStarted;

  const times: number[] = [];
  for (let round = 0; round < 7; round++) {
    for (let f = 0; f < 10; f++) {
      const n = round * 10 + f;
      writeFileSync(join(workspace, bigRepoPath(n * 131)), `export const changed = ${round};\n`);
    }
    const started = performance.now();
    const data = await checkpoints.record(id, { reason: 'turn', turnId: `turn_${round}`, prompt: `round ${round}` });
    times.push(performance.now() - started);
    if (data?.files.length !== 10) throw new Error(`round ${round}: expected 10 changed files, got ${data?.files.length}`);
  }
  await store.close();
  const warm = times.slice(1).sort((a, b) => a - b); // the first one also warms the OS caches
  console.log(`checkpoint of a 10,000-file repo with 10 files changed (record: snapshot, stats, bundle, store, event):`);
  console.log(`  p50 ${fmt(pct(warm, 50))}   max ${fmt(warm[warm.length - 1]!)}   first ${fmt(times[0]!)}   (target ≤ 200 ms); base capture at clone time ${fmt(captureMs)}`);
}

async function readLatency(): Promise<void> {
  const files: Record<string, string> = {};
  for (let i = 0; i < 100; i++) files[`src/file${i}.ts`] = Array.from({ length: 40 }, (_, l) => `line ${l} of file ${i}`).join('\n') + '\n';
  const bare = makeRepo(files);
  const agent = join(tempDir('berth-bench-agent-'), 'agent.sh');
  writeFileSync(agent, `cat > /dev/null; for f in src/*.ts; do sed -i 's/line 7 of/LINE SEVEN of/; s/line 30 of/LINE THIRTY of/' "$f"; done; echo changed 100 files\n`);
  const token = 'tok_bench_changes_0123456789';
  const dataDir = tempDir('berth-bench-changes-');
  const { child, url } = await spawnCli(dataDir, ['--allow-local-repos', '--store', '', '--agent-command', `sh ${agent}`], `bench:${token}`);
  try {
    const api = new ApiClient(url, token);
    const { body } = await api.start({ repo: { url: bare }, prompt: 'change everything', autoInitiate: true });
    const id = body.sessionId as string;
    const view = await api.waitFor(id, (s) => (s.changes?.files.length ?? 0) === 100 && s.status === 'ready', 30_000);
    const measure = async (path: string) => {
      const times: number[] = [];
      for (let i = 0; i < 60; i++) {
        const started = performance.now();
        const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
        if (i >= 10) times.push(performance.now() - started);
      }
      return times.sort((a, b) => a - b);
    };
    const changes = await measure(`/v1/sessions/${id}/changes`);
    const diff = await measure(`/v1/sessions/${id}/diff`);
    const one = await measure(`/v1/sessions/${id}/diff?path=src/file42.ts`);
    const content = await measure(`/v1/sessions/${id}/content?ref=${view.changes!.head}&path=src/file42.ts`);
    console.log(`a session with 100 changed files, over HTTP (50 requests each after 10 warm-up):`);
    console.log(`  GET /changes          p50 ${fmt(pct(changes, 50))}   p99 ${fmt(pct(changes, 99))}   (target p50 ≤ 50 ms)`);
    console.log(`  GET /diff             p50 ${fmt(pct(diff, 50))}   p99 ${fmt(pct(diff, 99))}   (target p50 ≤ 50 ms)`);
    console.log(`  GET /diff?path=…      p50 ${fmt(pct(one, 50))}   p99 ${fmt(pct(one, 99))}`);
    console.log(`  GET /content          p50 ${fmt(pct(content, 50))}   p99 ${fmt(pct(content, 99))}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

export async function changesBench(): Promise<void> {
  console.log('\nthe session\'s work (checkpoints and the changes API):');
  await checkpointTime();
  await readLatency();
}
