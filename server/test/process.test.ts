import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runProcess } from '../src/util/process';
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
});
