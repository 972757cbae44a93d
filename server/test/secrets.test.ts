// Secrets never leak: a whole session through the real `berth-server` process (the production
// logger, at debug level) with an LLM API key and bearer tokens; every log line (stderr, stdout,
// logs/<id>.log, GET …/log), every event, every session view is searched for them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamEvent } from '@berth/protocol';
import { FakeLlmServer } from './fixtures/fake-llm-server';
import { ApiClient, CLI, isFailed, makeRepo, removeDir, tempDir, turnComplete } from './helpers';

const KEY = 'sk-live-secret-9f8e7d6c5b4a3210';
const TOKEN = 'tok_secret_alice_5566778899';
const OTHER_TOKEN = 'tok_secret_bob_1122334455';

describe('secrets in logs and events', () => {
  let fake: FakeLlmServer;
  let child: ChildProcess;
  let dataDir: string;
  let api: ApiClient;
  let output = '';

  before(async () => {
    fake = await FakeLlmServer.start();
    dataDir = tempDir('berth-secrets-');
    child = spawn(
      process.execPath,
      [CLI, 'serve', '--port', '0', '--data-dir', dataDir, '--allow-local-repos', '--llm-base-url', fake.url, '--llm-model', 'fake-model', '--log-level', 'debug'],
      { env: { ...process.env, BERTH_TOKENS: `alice:${TOKEN},bob:${OTHER_TOKEN}`, BERTH_LLM_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        output += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(output);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`berth-server exited with ${code}: ${output}`)));
    });
    api = new ApiClient(url, TOKEN);
  });
  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await fake.close();
    removeDir(dataDir);
  });

  it('a whole session (start, ready, tools, follow-up, failures) shows neither the token nor the API key anywhere', async () => {
    // The endpoint echoes the key in an error (some do), the model runs a command that looks for
    // it, then answers; a second turn; a second session whose clone fails with the token in its URL.
    fake.script(
      { status: 429, headers: { 'retry-after': '0' }, body: { error: { message: `slow down, key ${KEY}` } } },
      { toolCalls: [{ id: 'c1', name: 'run_command', args: { command: 'echo "key=${BERTH_LLM_API_KEY:-absent}"; cat /proc/$PPID/environ | tr "\\0" "\\n" | grep -c BERTH_LLM || true' } }] },
      { text: ['all ', 'done'] },
      { text: 'second answer' },
    );
    const started = await api.start({ repo: { url: makeRepo() }, prompt: 'look around', autoInitiate: true });
    assert.equal(started.status, 202);
    const id = started.body.sessionId as string;
    const stream = await api.stream(id);
    await stream.waitFor(turnComplete, 30_000, 'the first turn');
    const sent = await api.message(id, 'and now?');
    assert.equal(sent.status, 202);
    await stream.waitFor((e) => e.type === 'turn_complete' && e.data.turnId === sent.body.turnId, 30_000, 'the second turn');
    assert.equal(fake.requests[0]!.headers.authorization, `Bearer ${KEY}`, 'the key did reach the endpoint');
    const probe = stream.events.find((e) => e.type === 'tool_result');
    assert.ok(probe?.type === 'tool_result' && probe.data.output === 'exit code 0\nkey=absent\n0\n', JSON.stringify(probe));

    const bad = await api.start({ repo: { url: `https://alice:${TOKEN}@127.0.0.1:1/x.git` }, prompt: 'x', autoInitiate: true });
    assert.equal(bad.status, 202);
    const badStream = await api.stream(bad.body.sessionId);
    await badStream.waitFor(isFailed, 30_000, 'the failed clone');
    // The key presented as a bearer token, and the other user's token in a body: refused, not logged.
    assert.equal((await new ApiClient(api.baseUrl, KEY).request('GET', '/v1/sessions')).status, 401);
    assert.equal((await api.start({ repo: { url: OTHER_TOKEN }, prompt: KEY, autoInitiate: true })).status, 400);

    const events: StreamEvent[] = [];
    const texts: string[] = [];
    for (const sid of [id, bad.body.sessionId as string]) {
      const replay = await api.stream(sid, 0);
      await replay.waitFor((e) => e.type === 'connected');
      await new Promise((r) => setTimeout(r, 300));
      events.push(...stream.events, ...badStream.events, ...replay.events);
      await replay.close();
      texts.push(JSON.stringify((await api.get(sid)).body), String((await api.request('GET', `/v1/sessions/${sid}/log`)).body));
    }
    await stream.close();
    await badStream.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const logDir = join(dataDir, 'logs');
    const logFiles = readdirSync(logDir).map((f) => readFileSync(join(logDir, f), 'utf8'));

    // The haystack is real: it holds the session, its steps, the retried request and the answers.
    const haystack = [output, ...logFiles, ...texts, JSON.stringify(events)].join('\n');
    assert.ok(logFiles.length >= 2 && events.length > 20, `${logFiles.length} log files, ${events.length} events`);
    assert.match(haystack, /slow down, key \[redacted\]/, 'the error that echoed the key was seen, redacted');
    assert.match(haystack, /all done/);
    // The clone URL's credential was taken out of it: the URL shows without it.
    assert.match(haystack, /https:\/\/127\.0\.0\.1:1\/x\.git/);
    assert.doesNotMatch(haystack, /alice:[^@\s]*@127\.0\.0\.1/);
    for (const [name, secret] of [['API key', KEY], ['token', TOKEN], ['other token', OTHER_TOKEN]] as const) {
      const at = haystack.indexOf(secret);
      assert.equal(at, -1, `the ${name} leaked: …${haystack.slice(Math.max(0, at - 200), at + 50)}…`);
    }
  });
});
