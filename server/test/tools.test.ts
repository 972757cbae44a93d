// The llm driver's tools, against real files and processes: confinement to the workspace,
// exact edits, size limits, command time limits and output caps.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTool, DEFAULT_TOOL_LIMITS, type ToolContext, type ToolLimits } from '../src/agent/tools';
import { resolveInWorkspace } from '../src/agent/tools/guard';
import { removeDir, sleep, tempDir } from './helpers';

let root: string;
let ws: string;
let outside: string;

/** Whether a process still runs (a zombie left to a non-reaping PID 1 counts as dead). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

function ctx(limits: Partial<ToolLimits> = {}, signal: AbortSignal = new AbortController().signal): ToolContext {
  return { workspace: ws, signal, limits: { ...DEFAULT_TOOL_LIMITS, ...limits } };
}

before(() => {
  root = tempDir('berth-tools-');
  ws = join(root, 'ws');
  outside = join(root, 'outside');
  mkdirSync(join(ws, 'src'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(ws, 'src', 'a.txt'), 'alpha\nbeta\ngamma\n');
  writeFileSync(join(outside, 'secret.txt'), 'TOP SECRET');
  symlinkSync(join(outside, 'secret.txt'), join(ws, 'link-to-secret'));
  symlinkSync(outside, join(ws, 'link-to-outside'));
  symlinkSync(join(outside, 'not-there-yet.txt'), join(ws, 'dangling'));
  symlinkSync(join(ws, 'src'), join(ws, 'link-to-src'));
  // Tricks: a loop, a chain of links that stay inside until the last hop, /proc's view of the root.
  symlinkSync(join(ws, 'loop-b'), join(ws, 'loop-a'));
  symlinkSync(join(ws, 'loop-a'), join(ws, 'loop-b'));
  symlinkSync('link-to-outside', join(ws, 'hop1'));
  symlinkSync(join(ws, 'hop1'), join(ws, 'src', 'hop2'));
  symlinkSync('/proc/self/root', join(ws, 'link-to-proc-root'));
  execFileSync('mkfifo', [join(ws, 'pipe')]);
});
after(() => removeDir(root));

describe('workspace path guard', () => {
  const refused: [string, string][] = [
    ['../outside/secret.txt', 'outside the workspace'],
    ['src/../../outside/secret.txt', 'outside the workspace'],
    ['/etc/passwd', 'outside the workspace'],
    ['link-to-secret', 'symbolic link'],
    ['link-to-outside/secret.txt', 'symbolic link'],
    ['link-to-outside/new.txt', 'symbolic link'],
    ['link-to-outside/deeper/new.txt', 'symbolic link'],
    ['dangling', 'symbolic link to a missing target'],
    ['loop-a', 'loop of symbolic links'],
    ['loop-a/new.txt', 'loop of symbolic links'],
    ['src/hop2/secret.txt', 'symbolic link'],
    ['src/hop2/new.txt', 'symbolic link'],
    ['link-to-proc-root/etc/passwd', 'symbolic link'],
    ['/proc/self/root/etc/passwd', 'outside the workspace'],
    ['/proc/self/environ', 'outside the workspace'],
    ['src/\0/../../outside', 'NUL'],
  ];
  for (const [path, why] of refused) {
    it(`refuses ${path}`, async () => {
      await assert.rejects(resolveInWorkspace(ws, path), (err: Error) => err.message.includes(why));
    });
  }

  it('accepts paths inside, new ones included, and links that stay inside', async () => {
    assert.equal((await resolveInWorkspace(ws, 'src/a.txt')).rel, 'src/a.txt');
    assert.equal((await resolveInWorkspace(ws, './src/../src/new/dir/b.txt')).rel, 'src/new/dir/b.txt');
    assert.equal((await resolveInWorkspace(ws, join(ws, 'src/a.txt'))).rel, 'src/a.txt');
    assert.equal((await resolveInWorkspace(ws, 'link-to-src/a.txt')).rel, 'src/a.txt');
    assert.equal((await resolveInWorkspace(ws, '.')).rel, '.');
  });

  it('every file tool refuses escapes, for reads and writes, and touches nothing outside', async () => {
    const attempts: [string, Record<string, unknown>][] = [
      ['read_file', { path: '../outside/secret.txt' }],
      ['read_file', { path: 'link-to-secret' }],
      ['read_file', { path: 'link-to-outside/secret.txt' }],
      ['list_files', { path: 'link-to-outside' }],
      ['list_files', { path: '..' }],
      ['write_file', { path: 'link-to-outside/planted.txt', content: 'x' }],
      ['write_file', { path: 'dangling', content: 'x' }],
      ['write_file', { path: '../planted.txt', content: 'x' }],
      ['write_file', { path: join(outside, 'planted.txt'), content: 'x' }],
      ['edit_file', { path: 'link-to-secret', old_string: 'TOP', new_string: 'NOT' }],
      ['write_file', { path: 'src/hop2/planted.txt', content: 'x' }],
      ['edit_file', { path: 'src/hop2/secret.txt', old_string: 'TOP', new_string: 'NOT' }],
      ['write_file', { path: 'loop-a', content: 'x' }],
      ['read_file', { path: 'link-to-proc-root/etc/hostname' }],
      ['list_files', { path: 'link-to-proc-root' }],
    ];
    for (const [name, args] of attempts) {
      const r = await runTool(name, args, ctx());
      assert.equal(r.ok, false, `${name} ${JSON.stringify(args)} must be refused: ${r.output}`);
      assert.match(r.output, /outside the workspace|symbolic link|loop/);
      assert.doesNotMatch(r.output, /TOP SECRET/);
    }
    assert.equal(readFileSync(join(outside, 'secret.txt'), 'utf8'), 'TOP SECRET');
    assert.equal(existsSync(join(outside, 'planted.txt')), false);
    assert.equal(existsSync(join(outside, 'not-there-yet.txt')), false);
    assert.equal(existsSync(join(root, 'planted.txt')), false);
  });
});

describe('special files', () => {
  it('a FIFO in the workspace is refused at once, never read from or written to (which would block the turn)', async () => {
    for (const [name, args] of [
      ['read_file', { path: 'pipe' }],
      ['write_file', { path: 'pipe', content: 'x' }],
      ['edit_file', { path: 'pipe', old_string: 'a', new_string: 'b' }],
    ] as const) {
      const r = await Promise.race([runTool(name, args, ctx()), sleep(3000).then(() => ({ ok: true, output: 'blocked' }))]);
      assert.equal(r.ok, false, `${name}: ${r.output}`);
      assert.match(r.output, /not a regular file/, name);
    }
  });
});

describe('file tools', () => {
  it('list_files lists a folder, recursively too', async () => {
    const flat = await runTool('list_files', {}, ctx());
    assert.equal(flat.ok, true);
    assert.deepEqual(flat.output.split('\n'), ['dangling@', 'hop1@', 'link-to-outside@', 'link-to-proc-root@', 'link-to-secret@', 'link-to-src@', 'loop-a@', 'loop-b@', 'pipe', 'src/']);
    const deep = await runTool('list_files', { path: 'src', recursive: true }, ctx());
    assert.ok(deep.output.split('\n').includes('a.txt'), deep.output);
  });

  it('read_file reads, cuts large files at the limit, reads line ranges, refuses binaries and folders', async () => {
    assert.deepEqual(await runTool('read_file', { path: 'src/a.txt' }, ctx()), { ok: true, output: 'alpha\nbeta\ngamma\n' });
    assert.deepEqual(await runTool('read_file', { path: 'src/a.txt', start_line: 2, end_line: 2 }, ctx()), { ok: true, output: 'beta' });
    writeFileSync(join(ws, 'big.txt'), Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n'));
    const big = await runTool('read_file', { path: 'big.txt' }, ctx({ readMaxBytes: 100 }));
    assert.equal(big.ok, true);
    assert.ok(big.output.startsWith('line 0\nline 1\n'));
    assert.ok(Buffer.byteLength(big.output) < 300, 'cut near the limit');
    assert.match(big.output, /the file is \d+ bytes.*start_line/);
    assert.equal((await runTool('read_file', { path: 'big.txt', start_line: 999, end_line: 1000 }, ctx({ readMaxBytes: 100 }))).output, 'line 998\nline 999');
    writeFileSync(join(ws, 'bin.dat'), Buffer.from([1, 2, 0, 3]));
    assert.match((await runTool('read_file', { path: 'bin.dat' }, ctx())).output, /binary/);
    assert.match((await runTool('read_file', { path: 'src' }, ctx())).output, /is a folder/);
    assert.match((await runTool('read_file', { path: 'nope.txt' }, ctx())).output, /does not exist/);
    assert.match((await runTool('read_file', {}, ctx())).output, /"path" is required/);
  });

  it('write_file creates folders and files inside', async () => {
    const r = await runTool('write_file', { path: 'new/deep/file.txt', content: 'héllo' }, ctx());
    assert.deepEqual(r, { ok: true, output: 'created new/deep/file.txt (6 bytes)' });
    assert.equal(readFileSync(join(ws, 'new/deep/file.txt'), 'utf8'), 'héllo');
    assert.match((await runTool('write_file', { path: 'new/deep/file.txt', content: 'x' }, ctx())).output, /^replaced/);
  });

  it('edit_file replaces exactly once, and fails clearly when the text is absent or ambiguous', async () => {
    writeFileSync(join(ws, 'e.txt'), 'one two one $& three\n');
    const absent = await runTool('edit_file', { path: 'e.txt', old_string: 'four', new_string: 'x' }, ctx());
    assert.equal(absent.ok, false);
    assert.match(absent.output, /was not found in e\.txt/);
    const ambiguous = await runTool('edit_file', { path: 'e.txt', old_string: 'one', new_string: 'x' }, ctx());
    assert.equal(ambiguous.ok, false);
    assert.match(ambiguous.output, /appears 2 times in e\.txt/);
    assert.equal(readFileSync(join(ws, 'e.txt'), 'utf8'), 'one two one $& three\n', 'failed edits change nothing');
    const ok = await runTool('edit_file', { path: 'e.txt', old_string: '$& three', new_string: '$1 3' }, ctx());
    assert.deepEqual(ok, { ok: true, output: 'replaced 1 occurrence in e.txt' });
    assert.equal(readFileSync(join(ws, 'e.txt'), 'utf8'), 'one two one $1 3\n', 'replacement patterns are literal');
    const all = await runTool('edit_file', { path: 'e.txt', old_string: 'one', new_string: '1', replace_all: true }, ctx());
    assert.equal(all.output, 'replaced 2 occurrences in e.txt');
    assert.equal(readFileSync(join(ws, 'e.txt'), 'utf8'), '1 two 1 $1 3\n');
    assert.match((await runTool('edit_file', { path: 'missing.txt', old_string: 'a', new_string: 'b' }, ctx())).output, /use write_file/);
    assert.match((await runTool('edit_file', { path: 'e.txt', old_string: '', new_string: 'b' }, ctx())).output, /empty/);
  });

  it('edit_file refuses a file too large to hold in memory', async () => {
    const big = join(ws, 'big.bin');
    writeFileSync(big, '');
    truncateSync(big, 33 * 1024 * 1024); // sparse: no real disk used
    const r = await runTool('edit_file', { path: 'big.bin', old_string: 'a', new_string: 'b' }, ctx());
    assert.equal(r.ok, false);
    assert.match(r.output, /too large .* to edit/);
  });

  it('unknown tools and bad arguments are results, not crashes', async () => {
    assert.match((await runTool('format_disk', {}, ctx())).output, /there is no tool "format_disk"/);
    assert.match((await runTool('read_file', 'src/a.txt', ctx())).output, /must be a JSON object/);
    assert.match((await runTool('read_file', { path: 42 }, ctx())).output, /must be a string/);
  });
});

describe('run_command', () => {
  it('runs in the workspace and returns the exit code and output', async () => {
    const r = await runTool('run_command', { command: 'pwd; cat src/a.txt | wc -l; echo err >&2; exit 3' }, ctx());
    assert.equal(r.ok, false);
    const [first, ...rest] = r.output.split('\n');
    assert.equal(first, 'exit code 3');
    assert.ok(rest.join('\n').includes('3\nerr'), r.output);
    const ok = await runTool('run_command', { command: 'echo hi > made.txt && echo done' }, ctx());
    assert.deepEqual(ok, { ok: true, output: 'exit code 0\ndone\n' });
    assert.equal(readFileSync(join(ws, 'made.txt'), 'utf8'), 'hi\n');
  });

  it('never passes the API key to the command', async () => {
    process.env.BERTH_LLM_API_KEY = 'sk-must-not-leak-123456';
    try {
      const r = await runTool('run_command', { command: 'echo "key=${BERTH_LLM_API_KEY:-absent}"' }, ctx());
      assert.equal(r.output, 'exit code 0\nkey=absent\n');
    } finally {
      delete process.env.BERTH_LLM_API_KEY;
    }
  });

  it('kills the whole process group at the time limit', async () => {
    const marker = join(root, 'child.pid');
    const startedAt = Date.now();
    const r = await runTool('run_command', { command: `sleep 30 & echo $! > ${marker}; wait`, timeout_seconds: 0.5 }, ctx());
    assert.ok(Date.now() - startedAt < 5000, 'returned soon after the limit');
    assert.equal(r.ok, false);
    assert.match(r.output, /stopped after the time limit/);
    const pid = Number(readFileSync(marker, 'utf8'));
    await sleep(100);
    assert.equal(running(pid), false, 'the background sleep was killed too');
  });

  it('returns when the shell exits even if a background process holds the output open, and stops it', async () => {
    const marker = join(root, 'bg.pid');
    const startedAt = Date.now();
    const r = await runTool('run_command', { command: `sleep 30 & echo $! > ${marker}; echo quick` }, ctx());
    assert.ok(Date.now() - startedAt < 5000);
    assert.equal(r.output, 'exit code 0\nquick\n');
    await sleep(100);
    assert.equal(running(Number(readFileSync(marker, 'utf8'))), false);
  });

  it('caps long output, keeping its beginning and end', async () => {
    const r = await runTool('run_command', { command: 'echo BEGIN; seq 1 100000; echo END' }, ctx({ commandOutputChars: 2000 }));
    assert.equal(r.ok, true);
    assert.ok(r.output.length < 2200, `capped: ${r.output.length}`);
    assert.match(r.output, /^exit code 0\nBEGIN\n1\n/);
    assert.match(r.output, /characters of output left out/);
    assert.match(r.output, /100000\nEND\n$/);
  });

  it('stops when the turn is interrupted', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const startedAt = Date.now();
    const r = await runTool('run_command', { command: 'echo going; sleep 30' }, ctx({}, controller.signal));
    assert.ok(Date.now() - startedAt < 5000);
    assert.equal(r.ok, false);
    assert.match(r.output, /^interrupted\ngoing/);
  });
});
