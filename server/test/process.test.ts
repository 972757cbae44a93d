import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { runProcess } from '../src/util/process';
import { launch } from '../src/util/launcher';
import { hostProcessTags, killOrphanProcesses, killSessionProcesses, processesOf } from '../src/sandbox/hostProcesses';
import { sleep } from './helpers';

/** Running (a killed orphan may linger as a zombie until init reaps it: that counts as gone). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('runProcess', () => {
  it('kills what the process left running in its group once it exits', async () => {
    const r = await runProcess('/bin/sh', ['-c', 'sleep 30 > /dev/null 2>&1 & echo $!'], { timeoutMs: 10_000 });
    assert.equal(r.exitCode, 0);
    const leftover = Number(r.output.lastLines(1)[0]);
    assert.ok(leftover > 0);
    await sleep(100);
    assert.equal(alive(leftover), false, 'the background sleep was killed with its group');
  });

  it('kills the whole group at the timeout', async () => {
    const r = await runProcess('/bin/sh', ['-c', 'sleep 30'], { timeoutMs: 300 });
    assert.equal(r.timedOut, true);
  });

  it('decodes UTF-8 across chunk boundaries (a character split between two writes stays whole)', async () => {
    // "€" is e2 82 ac: the first two bytes, a pause, then the last one.
    const script = 'process.stdout.write(Buffer.from([0x61, 0xe2, 0x82])); setTimeout(() => process.stdout.write(Buffer.from([0xac, 0x0a, 0xf0, 0x9f])), 80); setTimeout(() => process.stdout.write(Buffer.from([0x98, 0x80, 0x0a])), 160);';
    const lines: string[] = [];
    let text = '';
    const r = await runProcess(process.execPath, ['-e', script], { timeoutMs: 10_000, onLine: (l) => lines.push(l), onText: (t) => (text += t), collectStdout: 1024 });
    assert.deepEqual(lines, ['a€', '😀']);
    assert.equal(text, 'a€\n😀\n');
    assert.ok(!r.output.toString().includes('\ufffd'), 'no replacement character');
    assert.equal(r.stdout.toString('utf8'), 'a€\n😀\n');
  });

  it('stops gracefully: SIGTERM first, SIGKILL after the grace for a process that ignores it', async () => {
    const polite = await runProcess('/bin/sh', ['-c', 'trap "echo got-term; exit 7" TERM; while :; do sleep 0.05; done'], { timeoutMs: 200, killGraceMs: 2000 });
    assert.equal(polite.timedOut, true);
    assert.match(polite.output.toString(), /got-term/, 'it had the chance to clean up');
    const started = Date.now();
    const stubborn = await runProcess('/bin/sh', ['-c', 'trap "" TERM; while :; do sleep 0.05; done'], { timeoutMs: 200, killGraceMs: 400 });
    assert.equal(stubborn.timedOut, true);
    assert.equal(stubborn.signal, 'SIGKILL');
    assert.ok(Date.now() - started >= 550, 'killed only after the grace');
  });

  it('an abort stops it; a process that cannot start says why', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await runProcess('/bin/sh', ['-c', 'sleep 30'], { timeoutMs: 10_000, signal: controller.signal });
    assert.equal(aborted.aborted, true);
    const missing = await runProcess('/no/such/program', [], { timeoutMs: 10_000 });
    assert.match(String(missing.spawnError?.message), /ENOENT/);
  });
});

describe('tagged host processes', () => {
  it('are found and killed per session without stalling the event loop', async () => {
    const instance = `inst_${process.pid}_${Date.now()}`;
    const spawnTagged = (sessionId: string) =>
      spawn('sleep', ['30'], { detached: true, stdio: 'ignore', env: { ...process.env, ...hostProcessTags(instance, sessionId) } });
    const mine = [spawnTagged('ses_one'), spawnTagged('ses_one')];
    const other = spawnTagged('ses_two');
    try {
      await sleep(100);
      let turns = 0;
      const ticker = setInterval(() => turns++, 0);
      const scan = processesOf(instance);
      assert.ok(scan instanceof Promise, 'the scan is asynchronous');
      const found = await scan;
      clearInterval(ticker);
      assert.ok(turns > 0, 'timers ran while /proc was read');
      assert.deepEqual(found.map((p) => p.pid).sort(), [...mine, other].map((c) => c.pid!).sort());

      await killSessionProcesses(instance, 'ses_one');
      await sleep(100);
      assert.deepEqual(mine.map((c) => alive(c.pid!)), [false, false]);
      assert.equal(alive(other.pid!), true, "another session's process is left alone");
      assert.equal(await killOrphanProcesses(instance, new Set(['ses_two'])), 0, 'a live session keeps its processes');
      assert.equal(await killOrphanProcesses(instance, new Set()), 1);
      await sleep(100);
      assert.equal(alive(other.pid!), false);
    } finally {
      for (const c of [...mine, other]) c.kill('SIGKILL');
    }
  });
});

describe('the process launcher', () => {
  const ppidOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);

  it('starts processes from its helper, not from this process, and relays stdin, stdout, exit and close in order', async () => {
    const child = launch('sh', ['-c', 'cat; echo done >&2; exit 7']);
    await new Promise<void>((resolve) => child.once('spawn', () => resolve()));
    assert.ok(child.pid! > 0);
    assert.notEqual(ppidOf(child.pid!), process.pid, 'forked by the helper, whose fork is cheap');
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 256));
    const out: Buffer[] = [];
    let err = '';
    const order: string[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stdout.on('end', () => order.push('end'));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', () => order.push('exit'));
    const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stdin.end(bytes);
    assert.equal(await closed, 7);
    assert.ok(Buffer.concat(out).equals(bytes), 'binary stdout intact');
    assert.equal(err, 'done\n');
    assert.ok(order.indexOf('end') >= 0 && order.indexOf('exit') >= 0, 'close came after end and exit');
  });

  it('reports a command that cannot start, and kills a group asked for before the process started', async () => {
    const missing = launch('/no/such/command', []);
    const error = await new Promise<Error & { code?: string }>((resolve) => missing.once('error', resolve));
    assert.equal(error.code, 'ENOENT');
    await new Promise((resolve) => missing.once('close', resolve));

    const sleeper = launch('sh', ['-c', 'sleep 30 & sleep 30'], { detached: true });
    sleeper.killGroup('SIGKILL'); // before the helper said it started
    const [, signal] = await new Promise<[number | null, string | null]>((resolve) => sleeper.once('exit', (code, sig) => resolve([code, sig])));
    assert.equal(signal, 'SIGKILL');
  });
});
