// The llm driver against a real local HTTP server speaking the chat completions wire format:
// first the driver alone (streaming, tools, errors, retries, limits, interruption), then end to
// end through berth-server and the bundled agent host.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TranscriptEntry } from '@berth/protocol';
import type { TurnIO } from '../src/agent/driver';
import { LlmDriver, DEFAULT_SYSTEM_PROMPT, type LlmDriverOptions } from '../src/agent/drivers/llm';
import { DEFAULT_TOOL_LIMITS } from '../src/agent/tools';
import { SseParser } from '../src/agent/llm/sse';
import { FakeLlmServer } from './fixtures/fake-llm-server';
import {
  answerOf,
  isFailed,
  isReady,
  makeRepo,
  removeDir,
  sleep,
  startTestServer,
  tempDir,
  turnComplete,
  type TestServer,
} from './helpers';

const KEY = 'sk-test-berth-0123456789abcdef';
/**
 * A command the model runs to look for the key: in its own environment, and in its own and its
 * parent's (the agent host's) /proc environ. It greps for a prefix, so the command itself (a
 * persisted tool_call) never holds the whole key.
 */
const LEAK_PROBE = [
  'cat greet.txt && echo ran > ran.txt && echo "key=${BERTH_LLM_API_KEY:-absent}"',
  `echo "parent=$(tr '\\0' '\\n' < /proc/$PPID/cmdline | grep -o 'agent-host.mjs' | head -1)"`,
  `echo "in environs: $(cat /proc/self/environ /proc/$PPID/environ | tr '\\0' '\\n' | grep -c '${KEY.slice(0, 14)}')"`,
].join(' && ');
/** Temp workspaces of the driver tests, removed at the end. */
const created: string[] = [];
after(() => {
  for (const dir of created) removeDir(dir);
});

/** Records what a driver reports, in order. */
class RecordingIO implements TurnIO {
  readonly calls: { kind: string; args: unknown[] }[] = [];
  started = () => void this.calls.push({ kind: 'started', args: [] });
  output = (text: string) => void this.calls.push({ kind: 'output', args: [text] });
  toolCall = (callId: string, name: string, args: unknown) => void this.calls.push({ kind: 'toolCall', args: [callId, name, args] });
  toolResult = (callId: string, ok: boolean, output: string) => void this.calls.push({ kind: 'toolResult', args: [callId, ok, output] });
  error = (code: string, message: string) => void this.calls.push({ kind: 'error', args: [code, message] });
  log = (level: string, message: string) => void this.calls.push({ kind: 'log', args: [level, message] });
  of(kind: string) {
    return this.calls.filter((c) => c.kind === kind);
  }
  get text() {
    return this.of('output').map((c) => c.args[0]).join('');
  }
  get errors() {
    return this.of('error').map((c) => ({ code: c.args[0] as string, message: c.args[1] as string }));
  }
}

describe('SSE parser', () => {
  it('handles events split anywhere, CRLF, comments and multi-line data', () => {
    const stream = ': keep-alive\r\ndata: {"a":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]';
    for (let cut = 0; cut < stream.length; cut++) {
      const p = new SseParser();
      const events = [...p.push(stream.slice(0, cut)), ...p.push(stream.slice(cut)), ...p.end()];
      assert.deepEqual(events, [
        { event: 'message', data: '{"a":1}' },
        { event: 'x', data: 'line1\nline2' },
        { event: 'message', data: '[DONE]' },
      ], `cut at ${cut}`);
    }
  });
});

describe('llm driver against a chat completions server', () => {
  let fake: FakeLlmServer;
  let ws: string;
  before(async () => {
    fake = await FakeLlmServer.start();
  });
  after(() => fake.close());
  beforeEach(() => {
    fake.reset();
    ws = tempDir('berth-llm-ws-');
    created.push(ws);
    writeFileSync(join(ws, 'notes.txt'), 'colour: red\n');
  });

  const driver = (o: Partial<LlmDriverOptions> = {}) =>
    new LlmDriver({
      baseUrl: fake.url,
      model: 'fake-model',
      apiKey: KEY,
      maxToolRounds: 10,
      maxTurnMs: 30_000,
      requestTimeoutMs: 10_000,
      retry: { maxRetries: 2, baseDelayMs: 20, maxDelayMs: 5_000 },
      tools: DEFAULT_TOOL_LIMITS,
      systemPrompt: DEFAULT_SYSTEM_PROMPT,
      ...o,
    });
  const turn = (d: LlmDriver, text: string, transcript: TranscriptEntry[] = [], signal = new AbortController().signal) => {
    const io = new RecordingIO();
    return d.runTurn({ turnId: 't1', text, transcript, workspace: ws }, io, signal).then((outcome) => ({ outcome, io }));
  };

  it('streams the answer in order and sends the conversation, the tools and the key', async () => {
    const pieces = Array.from({ length: 40 }, (_, i) => `w${i} `);
    fake.script({ text: pieces });
    const transcript: TranscriptEntry[] = [
      { role: 'user', text: 'first question' },
      { role: 'assistant', text: 'first answer' },
      { role: 'user', text: 'a message that got no answer' },
      { role: 'assistant', text: '' },
    ];
    const { outcome, io } = await turn(driver(), 'second question', transcript);
    assert.deepEqual(outcome, { status: 'completed' });
    assert.equal(io.calls[0]?.kind, 'started', 'started before any output');
    assert.equal(io.text, pieces.join(''));
    const req = fake.requests[0]!;
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    assert.equal(req.body.model, 'fake-model');
    assert.equal(req.body.stream, true);
    assert.deepEqual(req.body.tools.map((t: any) => t.function.name), ['list_files', 'read_file', 'write_file', 'edit_file', 'run_command']);
    assert.deepEqual(
      req.body.messages.map((m: any) => [m.role, m.content]),
      [
        ['system', DEFAULT_SYSTEM_PROMPT],
        ['user', 'first question'],
        ['assistant', 'first answer'],
        ['user', 'a message that got no answer\n\nsecond question'],
      ],
    );
  });

  it('runs the tools the model calls (streamed in pieces, several per round) and sends their results back', async () => {
    fake.script(
      {
        text: 'Let me look.',
        toolCalls: [
          { id: 'c1', name: 'read_file', args: { path: 'notes.txt' } },
          { id: 'c2', name: 'edit_file', args: { path: 'notes.txt', old_string: 'red', new_string: 'blue' } },
          { id: 'c3', name: 'read_file', args: '{"path": broken' },
        ],
      },
      { toolCalls: [{ id: 'c4', name: 'run_command', args: { command: 'cat notes.txt; exit 4' } }] },
      { text: 'Done: the colour is blue.' },
    );
    const { outcome, io } = await turn(driver(), 'make it blue');
    assert.deepEqual(outcome, { status: 'completed' });
    assert.equal(readFileSync(join(ws, 'notes.txt'), 'utf8'), 'colour: blue\n');
    assert.deepEqual(io.of('toolCall').map((c) => c.args), [
      ['c1', 'read_file', { path: 'notes.txt' }],
      ['c2', 'edit_file', { path: 'notes.txt', old_string: 'red', new_string: 'blue' }],
      ['c3', 'read_file', '{"path": broken'],
      ['c4', 'run_command', { command: 'cat notes.txt; exit 4' }],
    ]);
    const results = io.of('toolResult').map((c) => c.args);
    assert.deepEqual(results[0], ['c1', true, 'colour: red\n']);
    assert.deepEqual(results[1], ['c2', true, 'replaced 1 occurrence in notes.txt']);
    assert.equal(results[2]![1], false);
    assert.match(results[2]![2] as string, /not valid JSON/);
    assert.deepEqual(results[3], ['c4', false, 'exit code 4\ncolour: blue\n']);
    assert.equal(io.text, 'Let me look.\n\nDone: the colour is blue.');
    // Each call is followed by its result; results go back to the model with their ids.
    const kinds = io.calls.filter((c) => c.kind === 'toolCall' || c.kind === 'toolResult').map((c) => c.kind);
    assert.deepEqual(kinds, ['toolCall', 'toolResult', 'toolCall', 'toolResult', 'toolCall', 'toolResult', 'toolCall', 'toolResult']);
    assert.equal(fake.requests.length, 3);
    const second = fake.requests[1]!.body.messages;
    const assistant = second.at(-4);
    assert.equal(assistant.role, 'assistant');
    assert.equal(assistant.content, 'Let me look.');
    assert.deepEqual(assistant.tool_calls.map((c: any) => [c.id, c.function.name]), [['c1', 'read_file'], ['c2', 'edit_file'], ['c3', 'read_file']]);
    assert.deepEqual(second.slice(-3).map((m: any) => [m.role, m.tool_call_id]), [['tool', 'c1'], ['tool', 'c2'], ['tool', 'c3']]);
    assert.equal(second.at(-3).content, 'colour: red\n');
    assert.match(second.at(-1).content, /^error: the arguments are not valid JSON/);
    assert.equal(fake.requests[2]!.body.messages.at(-1).content, 'error: exit code 4\ncolour: blue\n');
  });

  it('retries a 429 after the Retry-After the endpoint asked for, then starts the turn once', async () => {
    fake.script(
      { status: 429, headers: { 'retry-after': '1' }, body: { error: { message: 'slow down' } } },
      { status: 503, body: 'upstream overloaded' },
      { text: 'finally' },
    );
    const startedAt = Date.now();
    const { outcome, io } = await turn(driver(), 'hi');
    assert.deepEqual(outcome, { status: 'completed' });
    assert.equal(fake.requests.length, 3);
    const gap = fake.requests[1]!.at - fake.requests[0]!.at;
    assert.ok(gap >= 950, `waited ${gap} ms after the 429 (Retry-After: 1)`);
    assert.ok(Date.now() - startedAt < 5000);
    assert.equal(io.of('started').length, 1);
    assert.equal(io.errors.length, 0);
    const logs = io.of('log').map((c) => c.args[1] as string);
    assert.equal(logs.length, 2);
    assert.match(logs[0]!, /429 Too Many Requests.*slow down.*retrying in 1\.0 s \(retry 1 of 2\)/);
    assert.match(logs[1]!, /503 Service Unavailable.*upstream overloaded/);
    assert.equal(io.text, 'finally');
  });

  it('gives up after a bounded number of retries: a clear error, and the turn never started', async () => {
    fake.script({ status: 500 }, { status: 502 }, { status: 503, body: { error: { message: 'still down' } } }, { text: 'never reached' });
    const { outcome, io } = await turn(driver(), 'hi');
    assert.deepEqual(outcome, { status: 'failed' });
    assert.equal(fake.requests.length, 3, 'one try and two retries');
    assert.equal(io.of('started').length, 0);
    assert.equal(io.errors.length, 1);
    assert.equal(io.errors[0]!.code, 'llm_server_error');
    assert.match(io.errors[0]!.message, /failed \(503 Service Unavailable\): still down \(gave up after 3 attempts\)/);
  });

  it('does not retry a 429 whose Retry-After is longer than it would wait', async () => {
    fake.script({ status: 429, headers: { 'retry-after': '3600' } }, { text: 'never reached' });
    const { outcome, io } = await turn(driver(), 'hi');
    assert.deepEqual(outcome, { status: 'failed' });
    assert.equal(fake.requests.length, 1);
    assert.equal(io.errors[0]!.code, 'llm_rate_limited');
    assert.match(io.errors[0]!.message, /asks to wait 3600 s/);
  });

  it('401: not retried, a clear error that never contains the key', async () => {
    fake.script({ status: 401, body: { error: { message: `Incorrect API key provided: ${KEY}` } } });
    const { outcome, io } = await turn(driver(), 'hi');
    assert.deepEqual(outcome, { status: 'failed' });
    assert.equal(fake.requests.length, 1);
    assert.equal(io.of('started').length, 0);
    assert.equal(io.errors[0]!.code, 'llm_auth');
    assert.match(io.errors[0]!.message, /refused the request \(401 Unauthorized\): Incorrect API key provided: \[redacted\]; check the API key/);
    assert.ok(!JSON.stringify(io.calls).includes(KEY), 'the key never reaches an event');
  });

  it('connection refused: a clear error, not started', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { outcome, io } = await turn(driver({ baseUrl: `http://127.0.0.1:${port}/v1` }), 'hi');
    assert.deepEqual(outcome, { status: 'failed' });
    assert.equal(io.of('started').length, 0);
    assert.equal(io.errors[0]!.code, 'llm_unreachable');
    assert.match(io.errors[0]!.message, new RegExp(`could not reach the model endpoint http://127\\.0\\.0\\.1:${port}/v1/chat/completions: connection refused`));
  });

  it('a malformed stream or one cut short is a clear error', async () => {
    const first = 'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n';
    fake.script({ raw: first + 'data: {"choices": [ nope\n\n' });
    let r = await turn(driver(), 'hi');
    assert.deepEqual(r.outcome, { status: 'failed' });
    assert.equal(r.io.of('started').length, 1, 'the stream had begun');
    assert.equal(r.io.text, 'par');
    assert.equal(r.io.errors[0]!.code, 'llm_bad_stream');
    assert.match(r.io.errors[0]!.message, /malformed answer: a data line is not a JSON object/);

    fake.script({ raw: first });
    r = await turn(driver(), 'hi');
    assert.equal(r.io.errors[0]!.code, 'llm_bad_stream');
    assert.match(r.io.errors[0]!.message, /ended before the answer was complete/);

    fake.script({ raw: '<html>gateway</html>', contentType: 'text/html' });
    r = await turn(driver(), 'hi');
    assert.deepEqual(r.outcome, { status: 'failed' });
    assert.equal(r.io.of('started').length, 0, 'garbage is not an accepted request');
    assert.equal(r.io.errors[0]!.code, 'llm_bad_stream');

    fake.script({ raw: 'data: {"error":{"message":"model overloaded","code":503}}\n\n' }, { text: 'recovered' });
    r = await turn(driver(), 'hi');
    assert.deepEqual(r.outcome, { status: 'completed' }, 'an error as the first event is retried like a 503');
    assert.equal(r.io.text, 'recovered');
  });

  it('tolerates odd but workable chunks; a malformed tool_calls fails after the text before it', async () => {
    const data = (...chunks: unknown[]) => chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('');
    fake.script({
      raw: data(
        [], // an array: a JSON object without fields
        { choices: [{ delta: 'odd' }], usage: { total_tokens: 1 } },
        { choices: [{ index: 0, delta: { role: 'assistant', content: null, tool_calls: null }, extra: 1 }] },
        { choices: [{ delta: { content: 'all ', tool_calls: [{ id: 'x1', function: { name: 'list_files', arguments: { path: '.' } } }] } }] },
        { choices: [{ delta: { content: 5 }, finish_reason: 'tool_calls' }] },
      ) + 'data: [DONE]\n\n',
    }, { raw: data({ choices: [{ delta: { content: 'done' }, finish_reason: 'stop' }] }) });
    let r = await turn(driver(), 'hi');
    assert.deepEqual(r.outcome, { status: 'completed' });
    assert.deepEqual(r.io.of('toolCall').map((c) => c.args), [['x1', 'list_files', { path: '.' }]]);
    assert.equal(r.io.text, 'all \n\ndone');

    fake.script({ raw: data({ choices: [{ delta: { content: 'par', tool_calls: { index: 0 } } }] }) });
    r = await turn(driver(), 'hi');
    assert.equal(r.io.of('started').length, 1, 'the stream had begun');
    assert.equal(r.io.text, 'par');
    assert.deepEqual(r.io.errors.map((e) => e.code), ['llm_bad_stream']);
    assert.match(r.io.errors[0]!.message, /malformed answer: tool_calls is not an array/);

    fake.script({ raw: data({ choices: [{ delta: { tool_calls: [null] } }], error: { message: 'overloaded', code: 503 } }) }, { text: 'recovered' });
    r = await turn(driver(), 'hi');
    assert.deepEqual(r.outcome, { status: 'completed' }, 'an error in the chunk wins over its malformed parts, and is retried');
    assert.equal(r.io.text, 'recovered');
  });

  it('accepts an endpoint that answers with plain JSON instead of a stream', async () => {
    fake.script({
      json: { choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'j1', type: 'function', function: { name: 'list_files', arguments: '{}' } }] }, finish_reason: 'tool_calls' }] },
    }, { json: { choices: [{ index: 0, message: { role: 'assistant', content: 'one file' }, finish_reason: 'stop' }] } });
    const { outcome, io } = await turn(driver(), 'hi');
    assert.deepEqual(outcome, { status: 'completed' });
    assert.deepEqual(io.of('toolResult').map((c) => c.args), [['j1', true, 'notes.txt']]);
    assert.equal(io.text, 'one file');
  });

  it('interruption stops a streaming request and a running command cleanly', async () => {
    fake.script({ hang: true, text: 'thinking' });
    const controller = new AbortController();
    const running = turn(driver(), 'hi', [], controller.signal);
    while (!fake.requests.length) await sleep(10);
    await sleep(100);
    controller.abort();
    const { outcome, io } = await running;
    assert.deepEqual(outcome, { status: 'interrupted' });
    assert.equal(io.text, 'thinking');
    assert.equal(io.errors.length, 0);
    await sleep(50);
    assert.equal(fake.clientAborts, 1, 'the HTTP request was closed');

    fake.script({ toolCalls: [{ name: 'run_command', args: { command: 'sleep 30' } }, { name: 'write_file', args: { path: 'after.txt', content: 'x' } }] });
    const c2 = new AbortController();
    const startedAt = Date.now();
    const second = turn(driver(), 'hi', [], c2.signal);
    setTimeout(() => c2.abort(), 500);
    const r2 = await second;
    assert.deepEqual(r2.outcome, { status: 'interrupted' });
    assert.ok(Date.now() - startedAt < 5000);
    assert.match(r2.io.of('toolResult')[0]!.args[2] as string, /^interrupted/);
    assert.equal(r2.io.of('toolCall').length, 1, 'no further tool runs after the interruption');
    assert.equal(existsSync(join(ws, 'after.txt')), false);
  });

  it('limits: tool rounds per turn and wall time per turn', async () => {
    const call = { name: 'list_files', args: {} };
    fake.script({ toolCalls: [call] }, { toolCalls: [call] }, { toolCalls: [call] }, { text: 'unreached' });
    const r = await turn(driver({ maxToolRounds: 2 }), 'loop');
    assert.deepEqual(r.outcome, { status: 'failed' });
    assert.equal(fake.requests.length, 3);
    assert.equal(r.io.of('toolCall').length, 2);
    assert.equal(r.io.errors[0]!.code, 'turn_limit');
    assert.match(r.io.errors[0]!.message, /after 2 rounds of tool calls/);

    fake.reset();
    fake.script({ hang: true, text: 'slow' });
    const t = await turn(driver({ maxTurnMs: 400 }), 'slow');
    assert.deepEqual(t.outcome, { status: 'failed' });
    assert.equal(t.io.errors[0]!.code, 'turn_timeout');
  });
});

describe('llm agent end to end (server, agent host, fake endpoint)', () => {
  let fake: FakeLlmServer;
  let t: TestServer;
  before(async () => {
    fake = await FakeLlmServer.start();
    t = await startTestServer({ llm: { baseUrl: fake.url, model: 'fake-model', apiKey: KEY, retryBaseMs: 20, maxRetries: 2 } });
  });
  after(async () => {
    await t.close();
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('a turn that edits a file and runs a command: the file changes, the command runs, every step is an event', async () => {
    const answer = Array.from({ length: 120 }, (_, i) => `t${i} `);
    fake.script(
      { toolCalls: [{ id: 'e1', name: 'edit_file', args: { path: 'greet.txt', old_string: 'world', new_string: 'berth' } }] },
      { toolCalls: [{ id: 'r1', name: 'run_command', args: { command: LEAK_PROBE } }] },
      { toolCalls: [{ id: 'x1', name: 'read_file', args: { path: '../../../etc/hostname' } }, { id: 'x2', name: 'write_file', args: { path: '../planted.txt', content: 'x' } }] },
      { text: answer },
    );
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo({ 'greet.txt': 'hello world\n' }) }, prompt: 'greet berth', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    const done = await stream.waitFor(turnComplete);
    assert.ok(done.type === 'turn_complete' && done.data.status === 'completed', JSON.stringify(done));
    const workspace = join(t.dataDir, 'workspaces', id);
    assert.equal(readFileSync(join(workspace, 'greet.txt'), 'utf8'), 'hello berth\n');
    assert.equal(readFileSync(join(workspace, 'ran.txt'), 'utf8'), 'ran\n');
    assert.equal(existsSync(join(t.dataDir, 'workspaces', 'planted.txt')), false);

    const persisted = stream.persisted();
    assert.deepEqual(
      persisted.map((e) => e.type).filter((type, i, all) => type !== 'assistant_output' || all[i - 1] !== 'assistant_output'),
      ['user_message', 'tool_call', 'tool_result', 'tool_call', 'tool_result', 'tool_call', 'tool_result', 'tool_call', 'tool_result', 'assistant_output', 'changes', 'turn_complete'],
    );
    // The turn's checkpoint: the edited file and the command's output file.
    const changes = persisted.find((e) => e.type === 'changes');
    assert.ok(changes?.type === 'changes');
    assert.deepEqual(changes.data.files.map((f) => [f.path, f.status]), [['greet.txt', 'modified'], ['ran.txt', 'added']]);
    const calls = persisted.filter((e) => e.type === 'tool_call').map((e) => (e.type === 'tool_call' ? [e.data.callId, e.data.name] : []));
    assert.deepEqual(calls, [['e1', 'edit_file'], ['r1', 'run_command'], ['x1', 'read_file'], ['x2', 'write_file']]);
    const results = persisted.flatMap((e) => (e.type === 'tool_result' ? [e.data] : []));
    assert.deepEqual(results.map((r) => [r.callId, r.ok]), [['e1', true], ['r1', true], ['x1', false], ['x2', false]]);
    assert.equal(
      results[1]!.output,
      'exit code 0\nhello berth\nkey=absent\nparent=agent-host.mjs\nin environs: 0\n',
      'the command ran in the workspace, and neither its environment nor its parent\'s (the agent host) holds the key',
    );
    assert.match(results[2]!.output, /outside the workspace/);
    assert.match(results[3]!.output, /outside the workspace/);
    // Streamed token by token, persisted coalesced, nothing lost or reordered.
    assert.equal(answerOf(stream.events), answer.join(''));
    const rows = persisted.filter((e) => e.type === 'assistant_output').length;
    assert.ok(rows >= 1 && rows < answer.length / 4, `${rows} rows for ${answer.length} deltas`);
    // The key went to the endpoint, handed to the agent host on stdin: never its argv or environment.
    assert.equal(fake.requests[0]!.headers.authorization, `Bearer ${KEY}`);
    const hostPid = t.server.ctx.runtimes.get(id)?.agent.pid;
    assert.ok(hostPid);
    const argv = readFileSync(`/proc/${hostPid}/cmdline`, 'utf8');
    assert.match(argv, /--driver\0llm\0/);
    assert.ok(!argv.includes(KEY), 'the key is not in argv');
    assert.ok(!readFileSync(`/proc/${hostPid}/environ`, 'utf8').includes(KEY), 'the key is not in the environ of the agent host');
    const log = await alice.request('GET', `/v1/sessions/${id}/log`);
    assert.ok(!JSON.stringify(stream.events).includes(KEY) && !String(log.body).includes(KEY));
    await stream.close();
  });

  it('a failed first request never leaves the session initiated; retry (through a 429) then works', async () => {
    fake.script({ status: 401, body: { error: { message: `invalid key ${KEY}` } } });
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'do it', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    await stream.waitFor(isFailed);
    assert.equal(stream.events.find(isReady), undefined, 'ready must not be emitted when initiate failed');
    const failed = await alice.waitFor(id, (s) => s.status === 'failed');
    assert.equal(failed.initiatedAt, null);
    assert.equal(failed.lastError?.step, 'initiate');
    assert.match(failed.lastError.message, /refused the request \(401 Unauthorized\): invalid key \[redacted\]/);
    assert.ok(!failed.lastError.message.includes(KEY));
    assert.equal(stream.persisted().filter((e) => e.type === 'error').length, 1, 'a persisted error');
    assert.equal((await alice.message(id, 'follow-up')).status, 409);

    fake.script({ status: 429, headers: { 'retry-after': '1' } }, { text: 'accepted at last' });
    assert.equal((await alice.request('POST', `/v1/sessions/${id}/retry`)).status, 202);
    const failedAt = stream.events.findIndex(isFailed);
    await stream.waitFor((e) => isReady(e) && stream.events.indexOf(e) > failedAt);
    const ready = await alice.waitFor(id, (s) => s.initiatedAt !== null);
    assert.ok(ready.initiatedAt);
    await stream.waitFor(turnComplete);
    assert.equal(fake.requests.length, 3);
    assert.ok(fake.requests[2]!.at - fake.requests[1]!.at >= 950, 'Retry-After honoured');
    assert.equal(stream.persisted().filter((e) => e.type === 'user_message').length, 1);
    assert.equal(answerOf(stream.events), 'accepted at last');
    const messages = fake.requests[2]!.body.messages;
    assert.deepEqual(messages.slice(1).map((m: any) => [m.role, m.content]), [['user', 'do it']], 'the failed attempt is not in the conversation twice');
    await stream.close();
  });

  it('POST /interrupt stops the running turn cleanly; the session takes the next message', async () => {
    fake.script({ hang: true, text: 'working on it' });
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'long task', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    await stream.waitFor((e) => e.type === 'assistant_output');
    assert.equal((await alice.request('POST', `/v1/sessions/${id}/interrupt`)).status, 202);
    const done = await stream.waitFor(turnComplete, 10_000);
    assert.ok(done.type === 'turn_complete' && done.data.status === 'interrupted');
    assert.equal(stream.persisted().filter((e) => e.type === 'error').length, 0);
    await sleep(50);
    assert.equal(fake.clientAborts, 1, 'the request to the endpoint was closed');
    await alice.waitFor(id, (s) => s.status === 'ready');

    fake.script({ text: 'next answer' });
    const next = await alice.message(id, 'next');
    assert.equal(next.status, 202);
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === next.body.turnId);
    assert.equal(answerOf(stream.events, next.body.turnId), 'next answer');
    // The interrupted turn's partial answer is part of the conversation.
    assert.deepEqual(fake.requests.at(-1)!.body.messages.slice(1).map((m: any) => [m.role, m.content]), [
      ['user', 'long task'],
      ['assistant', 'working on it'],
      ['user', 'next'],
    ]);
    await stream.close();
  });
});

describe('llm agent resume', () => {
  it('a reaped sandbox comes back with the conversation: the next request carries the earlier turns', async () => {
    const fake = await FakeLlmServer.start();
    const t = await startTestServer({ llm: { baseUrl: fake.url, model: 'fake-model', apiKey: KEY }, idleTimeoutMs: 400 });
    try {
      fake.script({ toolCalls: [{ name: 'list_files', args: {} }] }, { text: ['Hello ', 'Ada.'] });
      const alice = t.api('alice');
      const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'my name is Ada', autoInitiate: true });
      const id = body.sessionId as string;
      const stream = await alice.stream(id);
      await stream.waitFor(turnComplete);
      await alice.waitFor(id, (s) => s.status === 'sleeping', 10_000);

      fake.script({ text: 'Your name is Ada.' });
      const sent = await alice.message(id, 'what is my name?');
      assert.equal(sent.status, 202);
      await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === sent.body.turnId, 20_000);
      assert.equal(answerOf(stream.events, sent.body.turnId), 'Your name is Ada.');
      assert.equal(fake.requests.length, 3);
      assert.deepEqual(fake.requests[2]!.body.messages.map((m: any) => [m.role, m.content]), [
        ['system', DEFAULT_SYSTEM_PROMPT],
        ['user', 'my name is Ada'],
        ['assistant', 'Hello Ada.'],
        ['user', 'what is my name?'],
      ]);
      await stream.close();
    } finally {
      await t.close();
      await fake.close();
    }
  });
});

describe('models and usage', () => {
  let fake: FakeLlmServer;
  let t: TestServer;
  before(async () => {
    fake = await FakeLlmServer.start();
    t = await startTestServer({ llm: { baseUrl: fake.url, model: 'fake-a', models: ['fake-a', 'fake-b'], apiKey: KEY, retryBaseMs: 20, maxRetries: 2 } });
  });
  after(async () => {
    await t.close();
    await fake.close();
  });

  it('a start chooses one of the offered models; an unknown one is refused with the list', async () => {
    const alice = t.api('alice');
    assert.deepEqual((await alice.request('GET', '/v1/models')).body, { models: ['fake-a', 'fake-b'], default: 'fake-a' });
    const refused = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true, model: 'fake-c' });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error.message, /"fake-c" is not offered here; choose one of: fake-a, fake-b/);
    assert.equal((await alice.request('GET', '/v1/sessions')).body.sessions.length, 0, 'nothing was created');

    fake.script({ text: 'from b' });
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true, model: 'fake-b' });
    const stream = await alice.stream(body.sessionId);
    await stream.waitFor(turnComplete);
    await stream.close();
    assert.equal(fake.requests[0]?.body.model, 'fake-b', 'the agent asked the model the start chose');
    assert.equal((await alice.get(body.sessionId)).body.model, 'fake-b');
  });

  it('records the tokens the endpoint reports, per turn (all its requests) and per session; reports none where it said none', async () => {
    fake.reset();
    fake.script(
      { toolCalls: [{ id: 'r1', name: 'read_file', args: { path: 'README.md' } }], usage: { prompt: 100, completion: 7 } },
      { text: 'done', usage: { prompt: 150, completion: 20 } },
      { text: 'second answer', usage: { prompt: 300, completion: 5 } },
      { text: 'silent endpoint' },
    );
    assert.equal(fake.requests.length, 0);
    const alice = t.api('alice');
    const { body } = await alice.start({ repo: { url: makeRepo() }, prompt: 'read it', autoInitiate: true });
    const id = body.sessionId as string;
    const stream = await alice.stream(id);
    await stream.waitFor(turnComplete);
    assert.equal(fake.requests[0]?.body.stream_options?.include_usage, true, 'usage was asked for');
    await alice.waitFor(id, (s) => s.status === 'ready');
    const second = await alice.message(id, 'again');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === second.body.turnId);
    await alice.waitFor(id, (s) => s.status === 'ready');
    const third = await alice.message(id, 'and again');
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === third.body.turnId);
    const ends = stream.persisted().flatMap((e) => (e.type === 'turn_complete' ? [e.data.usage ?? null] : []));
    await stream.close();
    assert.deepEqual(ends, [{ promptTokens: 250, completionTokens: 27 }, { promptTokens: 300, completionTokens: 5 }, null]);
    assert.deepEqual((await alice.waitFor(id, (s) => s.status === 'ready')).usage, { promptTokens: 550, completionTokens: 32 });
  });
});
