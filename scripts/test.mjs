// The test entry point (`npm test`): typecheck, build, then every test file with node's test runner.
// `--unit` skips the slow suites (real processes, containers, browsers).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const unitOnly = process.argv.includes('--unit');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));

function run(cmd, args, opts = {}) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function findTests(dir) {
  let out = [];
  let entries = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
run('node', ['esbuild.mjs']);

let files = ['protocol/test', 'server/test', 'extension/test', 'webview/test'].flatMap(findTests).sort();
if (unitOnly) files = files.filter((f) => !f.includes('/slow/'));
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));

run('node', ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...files], {
  env: { ...process.env, BERTH_TEST: '1' },
});
