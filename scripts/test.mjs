// The test entry point (`npm test`): typecheck, build, then every test file with node's test runner.
// `--unit` skips the slow suites (real processes, containers, browsers).
// `node scripts/test.mjs FILTER…` runs only the test files whose path contains a filter (no lint).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { findPgBin, startThrowaway } from './pg-throwaway.mjs';

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
// Type-aware lint (floating promises, unsafe any); a run of chosen files skips it.
if (!only.length) run('npx', ['eslint', '--max-warnings=0', '.']);
run('node', ['esbuild.mjs']);

let files = ['protocol/test', 'server/test', 'extension/test', 'webview/test'].flatMap(findTests).sort();
if (unitOnly) files = files.filter((f) => !f.includes('/slow/'));
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));

const testArgs = ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000'];
// Suites that take a machine-wide resource away (faults-docker stops dockerd) run alone, after the rest.
const isExclusive = (f) => f.includes('faults-docker');
run('node', [...testArgs, ...files.filter((f) => !isExclusive(f))], {
  env: { ...process.env, BERTH_TEST: '1' },
});
const exclusive = files.filter(isExclusive);
if (exclusive.length) run('node', [...testArgs, ...exclusive], { env: { ...process.env, BERTH_TEST: '1' } });

// The store matrix: the server suite again, on a throwaway PostgreSQL (the tests pick the store
// from BERTH_TEST_PG_URL). The dev-container suites do not touch the store: they run once.
const pgFiles = files.filter((f) => f.startsWith('server/test') && !f.includes('/slow/devcontainer') && !isExclusive(f));
if (pgFiles.length && process.env.BERTH_TEST_PG !== '0') {
  if (!findPgBin()) {
    if (process.env.CI === 'true') {
      console.error('CI: PostgreSQL is required for the store matrix (apt-get install postgresql)');
      process.exit(1);
    }
    console.log('\n(no PostgreSQL in /usr/lib/postgresql/*/bin: the PostgreSQL run of the server suite is skipped)');
  } else {
    const pg = await startThrowaway();
    console.log(`\nstore matrix: the server suite on PostgreSQL (${pg.url})`);
    const r = spawnSync('node', [...testArgs, ...pgFiles], {
      stdio: 'inherit',
      env: { ...process.env, BERTH_TEST: '1', BERTH_TEST_PG_URL: pg.url },
    });
    pg.stop();
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

// The end-to-end suite: the extension in a real VS Code in a real browser (e2e/run.mjs, which
// provisions its own tools). Only `--unit` or a file filter leaves it out, and BERTH_TEST_E2E=0
// outside CI; under CI=true it always runs and a missing piece fails the run.
if (!unitOnly && !only.length && (process.env.CI === 'true' || process.env.BERTH_TEST_E2E !== '0')) {
  run('node', ['e2e/run.mjs']);
}
