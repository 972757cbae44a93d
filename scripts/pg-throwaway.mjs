#!/usr/bin/env node
// A throwaway PostgreSQL cluster for tests and benchmarks: initdb into a temp dir, loopback port,
// trust auth, no durability (fsync off: it is thrown away). As root it runs as the `postgres` user.
//   node scripts/pg-throwaway.mjs start      prints PGURL=… and PGDIR=…, leaves it running
//   node scripts/pg-throwaway.mjs stop DIR   stops it and removes DIR
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from './free-port.mjs';

/** The newest Debian PostgreSQL bin dir, or null when none is installed. */
export function findPgBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : null;
}


function asPostgres(bin, args) {
  const root = process.getuid?.() === 0;
  const cmd = root ? 'runuser' : bin;
  const argv = root ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin.split('/').pop()} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function owner() {
  if (process.getuid?.() !== 0) return null;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** Starts a cluster; resolves to its URL (user postgres, no password) and a stop function. */
export async function startThrowaway() {
  const bin = findPgBin();
  if (!bin) throw new Error('no PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'berth-pg-'));
  const ids = owner();
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const opts = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c max_connections=400',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
  ].join(' ');
  asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', opts, '-w', '-t', '30', 'start']);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return { url, dir, stop: () => stopThrowaway(dir) };
}

export function stopThrowaway(dir) {
  const bin = findPgBin();
  try {
    if (bin) asPostgres(join(bin, 'pg_ctl'), ['-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [command, dir] = process.argv.slice(2);
  if (command === 'start') {
    const pg = await startThrowaway();
    process.stdout.write(`PGURL=${pg.url}\nPGDIR=${pg.dir}\n`);
  } else if (command === 'stop' && dir) {
    stopThrowaway(dir);
  } else {
    process.stderr.write('usage: pg-throwaway.mjs start | stop DIR\n');
    process.exit(2);
  }
}
