// Hostile input against a real server: thousands of generated HTTP requests (bodies of the wrong
// type, huge, deeply nested, odd unicode, prototype keys; bad ids, query strings, headers), raw
// malformed HTTP on TCP sockets, malformed WebSocket upgrades and frames. Every answer must be a
// clean 4xx (or a success for input that happens to be valid) with the standard error body; no
// 5xx, no crash, no unhandled rejection. The generator is seeded: a failure names its seed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { ApiErrorBody } from '@berth/protocol';
import { startTestServer, TOKENS, type TestServer } from './helpers';

const SEED = Number(process.env.BERTH_FUZZ_SEED ?? 20261124);
const HTTP_CASES = Number(process.env.BERTH_FUZZ_CASES ?? 5000);

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\u0000\u0001\u001f\u007f',
  '\ud800',
  '\udfff\ud800',
  '👩‍👩‍👧‍👦🏳️‍🌈',
  '\u202eevil\u202c',
  'é'.normalize('NFD'),
  '--upload-pack=touch /tmp/pwned',
  '-c core.sshCommand=touch /tmp/pwned',
  'ext::sh -c touch% /tmp/pwned',
  'fd::17',
  'file:///etc/passwd',
  '/etc/passwd',
  '../../../../etc/passwd',
  'https://user:pass@127.0.0.1:9/x.git',
  'https://127.0.0.1:9/x.git',
  'main',
  'refs/heads/--force',
  '$(touch /tmp/pwned)',
  '`id`',
  '; rm -rf /',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'NaN',
  '1e999',
  '{"a":1}',
  '<script>alert(1)</script>',
  '%00%2e%2e%2f',
  'ses_' + 'A'.repeat(24),
];
const KEYS = ['repo', 'url', 'branch', 'prompt', 'setup', 'autoInitiate', 'text', '__proto__', 'constructor', 'prototype', 'then', 'toJSON', 'valueOf', '', '\u0000', '💥'];

class Gen {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }

  string(): string {
    switch (this.int(6)) {
      case 0:
        return this.pick(NASTY_STRINGS);
      case 1: // random code points, surrogates included
        return Array.from({ length: this.int(40) }, () => String.fromCharCode(this.int(0x10000))).join('');
      case 2: // huge
        return this.pick(['x', 'é', '😀', '\u0000']).repeat(this.pick([5_000, 100_000, 600_000]));
      case 3:
        return this.pick(NASTY_STRINGS) + this.pick(NASTY_STRINGS);
      default:
        return String(this.int(1e6));
    }
  }

  number(): number {
    return this.pick([0, -0, -1, 1.5, 2 ** 53 + 1, -(2 ** 63), 1e308, Number.MIN_VALUE, this.int(1e9)]);
  }

  value(depth = 0): unknown {
    const kind = depth > 4 ? this.int(4) : this.int(7);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.number();
      case 3:
        return this.string();
      case 4:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      default: {
        const obj: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--) obj[this.chance(0.7) ? this.pick(KEYS) : this.string().slice(0, 50)] = this.value(depth + 1);
        return obj;
      }
    }
  }

  /** A valid start body with one part replaced, removed or added. */
  mutatedStart(): unknown {
    const body: any = {
      repo: { url: 'https://127.0.0.1:9/r.git', branch: 'main' },
      prompt: 'fix it',
      setup: ['true'],
      autoInitiate: true,
    };
    const paths: [any, string][] = [
      [body, 'repo'],
      [body.repo, 'url'],
      [body.repo, 'branch'],
      [body, 'prompt'],
      [body, 'setup'],
      [body.setup, '0'],
      [body, 'autoInitiate'],
      [body, this.pick(KEYS)],
      [body.repo, this.pick(KEYS)],
    ];
    for (let n = 1 + this.int(2); n > 0; n--) {
      const [target, key] = this.pick(paths);
      if (this.chance(0.2)) delete target[key];
      else target[key] = this.value(1);
    }
    return body;
  }

  /** The raw text of a body: JSON of a value, or something that is almost JSON. */
  bodyText(): string {
    switch (this.int(9)) {
      case 0: {
        const n = this.pick([100, 5_000, 60_000]);
        return this.chance(0.5) ? '['.repeat(n) + ']'.repeat(n) : '{"repo":'.repeat(n) + '1' + '}'.repeat(n);
      }
      case 1: // prototype pollution attempts, as raw JSON (JSON.stringify would drop them)
        return this.pick([
          '{"__proto__":{"admin":true},"repo":{"url":"https://127.0.0.1:9/r.git"}}',
          '{"repo":{"url":"https://127.0.0.1:9/r.git","__proto__":{"polluted":1}},"prompt":"x","autoInitiate":true}',
          '{"constructor":{"prototype":{"polluted":1}},"repo":{"url":"https://127.0.0.1:9/r.git"}}',
          '{"text":"hi","__proto__":null}',
          '{"repo":{"url":"https://127.0.0.1:9/r.git"},"setup":{"__proto__":[]}}',
        ]);
      case 2: // truncated or broken JSON
        return JSON.stringify(this.mutatedStart()).slice(0, this.int(60));
      case 3:
        return this.pick(['', 'null', 'true', '0', '""', '[]', '{}', '{"a":1,}', "{'a':1}", 'NaN', '\ufeff{}', '{"a":1}{"b":2}']);
      case 4:
      case 5:
        return JSON.stringify(this.mutatedStart());
      case 6:
        return JSON.stringify({ text: this.value(1) });
      default:
        return JSON.stringify(this.value());
    }
  }
}

interface Answer {
  status: number;
  type: string;
  body: string;
}

function request(agent: http.Agent, port: number, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends raw bytes on a fresh TCP connection; resolves with everything the server sent before closing. */
function raw(port: number, payload: string | Buffer, waitMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(payload);
  });
}

/** Parses one raw HTTP answer: status and body (by Content-Length). */
function parseRawAnswer(text: string): { status: number; headers: string; body: string } | null {
  const head = text.indexOf('\r\n\r\n');
  if (head < 0) return null;
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const headers = text.slice(0, head);
  const length = Number(/content-length:\s*(\d+)/i.exec(headers)?.[1] ?? -1);
  const body = length >= 0 ? text.slice(head + 4, head + 4 + length) : text.slice(head + 4);
  return { status, headers, body };
}

describe('fuzz: hostile input', () => {
  let t: TestServer;
  let port: number;
  let sessionId: string;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => void rejections.push(reason);
  const auth = { authorization: `Bearer ${TOKENS.alice}` };
  const problems: string[] = [];

  /** Checks one answer; problems are collected so one run reports all of them. */
  const check = (what: string, a: { status: number; type?: string; body: string }, method = 'GET') => {
    if (a.status >= 500 || a.status < 100) problems.push(`${what} → ${a.status} ${a.body.slice(0, 200)}`);
    else if (a.status >= 400 && method !== 'HEAD') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(a.body);
      } catch {
        parsed = undefined;
      }
      if (!ApiErrorBody.safeParse(parsed).success || (a.type !== undefined && !a.type.includes('application/json'))) {
        problems.push(`${what} → ${a.status} without the standard error body: ${a.type} ${a.body.slice(0, 200)}`);
      }
    }
  };
  const report = () => assert.deepEqual(problems.splice(0).slice(0, 20), [], `seed ${SEED}: bad answers`);

  before(async () => {
    process.on('unhandledRejection', onRejection);
    // Local repositories off, a remote that refuses at once: a start that happens to be valid
    // fails fast in the background instead of cloning anything.
    t = await startTestServer({ allowLocalRepos: false, agentCommand: 'cat', startRate: null });
    port = t.server.port;
    const r = await t.api('alice').start({ repo: { url: 'https://127.0.0.1:9/r.git' }, prompt: 'p', autoInitiate: true });
    sessionId = r.body.sessionId;
    assert.ok(sessionId, JSON.stringify(r.body));
  });
  after(async () => {
    await t.close();
    process.off('unhandledRejection', onRejection);
    assert.deepEqual(rejections, [], 'no unhandled rejection');
  });

  it(`${HTTP_CASES} generated HTTP requests: never a 5xx, every error the standard body`, async (ctx) => {
    const gen = new Gen(SEED);
    const statuses = new Map<number, number>();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const ids = () => gen.pick([sessionId, 'ses_' + 'B'.repeat(24), 'nope', '..', '%2e%2e', gen.string().slice(0, 300), 'ses_' + 'x'.repeat(300)]);
    const routes = (): [string, string] => {
      const id = ids().slice(0, 1000);
      return gen.pick<[string, string]>([
        ['POST', '/v1/sessions'],
        ['POST', '/v1/sessions'],
        ['POST', '/v1/sessions'],
        ['GET', '/v1/sessions'],
        ['GET', `/v1/sessions/${id}`],
        ['POST', `/v1/sessions/${id}/messages`],
        ['POST', `/v1/sessions/${id}/retry`],
        ['POST', `/v1/sessions/${id}/interrupt`],
        ['POST', `/v1/sessions/${id}/stream-ticket`],
        ['GET', `/v1/sessions/${id}/log`],
        ['GET', `/v1/sessions/${id}/stream`],
        ['POST', `/v1/sessions/${id}/stop`],
        ['POST', `/v1/sessions/${id}/push`],
        ['GET', `/v1/sessions/${id}/changes`],
        ['GET', `/v1/sessions/${id}/diff`],
        ['GET', `/v1/sessions/${id}/content`],
        ['GET', `/v1/sessions/${id}/bundle`],
        ['PUT', `/v1/credentials/${gen.pick(['github.com', 'a:99999', '..', '%2e', 'x'.repeat(300), gen.string().slice(0, 50)])}`],
        ['GET', '/v1/credentials'],
        ['DELETE', `/v1/credentials/${gen.pick(['nowhere.example', gen.string().slice(0, 50)])}`],
        ['PUT', `/v1/secrets/${gen.pick(['NPM_TOKEN', 'bad-name', '', gen.string().slice(0, 50)])}`],
        ['GET', '/v1/secrets'],
        [gen.pick(['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE', 'TRACE']), `/v1/sessions/${id}`],
      ]);
    };
    const query = () =>
      gen.pick([
        '',
        '?after=-1',
        '?after=1e999&after=2',
        '?ticket=' + gen.string().slice(0, 2000),
        '?__proto__[x]=1&constructor[prototype][y]=2',
        '?a[b][c][d][e][f]=1',
        '?' + 'x=1&'.repeat(2000),
        '?%zz',
        '?' + gen.string().slice(0, 500),
        `?from=${'a'.repeat(40)}&to=${gen.string().slice(0, 80)}`,
        `?ref=${'0'.repeat(40)}&path=${gen.pick(['../../etc/passwd', '/etc/passwd', 'a/./b', '', '%00', gen.string().slice(0, 300)])}`,
        `?path=${gen.string().slice(0, 5000)}`,
      ]);
    const batch: Promise<void>[] = [];
    for (let i = 0; i < HTTP_CASES; i++) {
      let [method, path] = routes();
      if (method === 'DELETE' && path.includes(sessionId)) method = 'GET'; // keep the one real session
      const url = path + query();
      const headers: Record<string, string> = { ...auth };
      let body: string | undefined;
      if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
        body = gen.bodyText();
        headers['content-type'] = gen.pick(['application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', '']);
        if (!headers['content-type']) delete headers['content-type'];
      }
      if (gen.chance(0.05)) headers.authorization = gen.pick(['Bearer', 'Basic YTpi', `Bearer ${TOKENS.alice} extra`, `bearer  ${TOKENS.bob}`, 'Bearer ' + 'x'.repeat(4000), `Bearer ${gen.string().replace(/[^\x21-\x7e]/g, '').slice(0, 100)}`]);
      const what = `#${i} ${method} ${url.slice(0, 120)} ${String(body ?? '').slice(0, 120)}`;
      batch.push(
        request(agent, port, method, toWire(url), headers, body).then(
          (a) => {
            statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
            check(what, a, method);
          },
          (err: Error) => void problems.push(`${what} → ${err.message}`),
        ),
      );
      if (batch.length >= 16) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    agent.destroy();
    ctx.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    report();
    // The generator reached every kind of refusal, and some inputs were valid.
    for (const status of [400, 401, 404, 409, 413, 415]) assert.ok(statuses.get(status), `no ${status} among ${JSON.stringify([...statuses])}`);
    assert.ok([...statuses.keys()].some((s) => s >= 200 && s < 300), 'some generated requests were valid');
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
  });

  it('raw malformed HTTP on TCP: a clean 4xx with the standard body, or a closed connection', async () => {
    const tok = TOKENS.alice;
    const payloads: (string | Buffer)[] = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ' + 'a'.repeat(20_000) + '\r\n\r\n',
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`,
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}`,
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`,
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{}`,
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n\xff\xfe\x00{"a":}`,
      `GET /v1/sessions/%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`,
      `GET /v1/sessions/${'a'.repeat(5000)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`,
      `GET /v1/sessions\x00 HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nBad Header\r\n\r\n`,
      `GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\x7f\r\n\r\n`,
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
      randomBytes(512),
      `POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"repo":`,
    ];
    const gen = new Gen(SEED + 1);
    for (let i = 0; i < 40; i++) {
      payloads.push(`${gen.pick(['GET', 'POST', 'XYZ', 'G ET'])} ${gen.pick(['/', '/v1/sessions', '*', 'http://x/', '/../../etc'])}${gen.string().replace(/[\r\n ]/g, '').slice(0, 200)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    }
    const answers = await Promise.all(payloads.map((p) => raw(port, p)));
    answers.forEach((text, i) => {
      const what = `raw #${i} ${JSON.stringify(String(payloads[i]).slice(0, 80))}`;
      if (text === '') return; // closed (or still waiting for the rest of a body): no answer is fine
      const parsed = parseRawAnswer(text);
      if (!parsed) return void problems.push(`${what} → unparseable answer ${JSON.stringify(text.slice(0, 200))}`);
      check(what, { status: parsed.status, type: /content-type:\s*([^\r\n]*)/i.exec(parsed.headers)?.[1] ?? '', body: parsed.body });
    });
    report();
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
  });

  it('malformed WebSocket upgrades: a 4xx with the standard body', async () => {
    const alice = t.api('alice');
    const key = () => randomBytes(16).toString('base64');
    const upgrade = (path: string, headers: Record<string, string | undefined> = {}, method = 'GET') => {
      const all: Record<string, string | undefined> = {
        Host: 'x',
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key(),
        ...headers,
      };
      const lines = Object.entries(all).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}`);
      return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
    };
    const stream = (ticket: string, q = '') => `/v1/sessions/${sessionId}/stream?ticket=${encodeURIComponent(ticket)}${q}`;
    const cases: [string, () => Promise<string>][] = [
      ['no ticket', async () => upgrade(`/v1/sessions/${sessionId}/stream`)],
      ['garbage ticket', async () => upgrade(stream('a.b'))],
      ['huge ticket', async () => upgrade(stream('x'.repeat(5000)))],
      ['negative cursor', async () => upgrade(stream(await alice.ticket(sessionId), '&after=-1'))],
      ['cursor not a number', async () => upgrade(stream(await alice.ticket(sessionId), '&after=abc'))],
      ['cursor 1e999', async () => upgrade(stream(await alice.ticket(sessionId), '&after=1e999'))],
      ['unknown path', async () => upgrade('/v1/sessions')],
      ['bad session id', async () => upgrade('/v1/sessions/..%2F..%2Fetc/stream?ticket=x')],
      ['bad URL', async () => upgrade('/v1/sessions/%zz/stream?ticket=%zz')],
      ['no key', async () => upgrade(stream(await alice.ticket(sessionId)), { 'Sec-WebSocket-Key': undefined })],
      ['bad key', async () => upgrade(stream(await alice.ticket(sessionId)), { 'Sec-WebSocket-Key': 'short' })],
      ['bad version', async () => upgrade(stream(await alice.ticket(sessionId)), { 'Sec-WebSocket-Version': '99' })],
      ['not websocket', async () => upgrade(stream(await alice.ticket(sessionId)), { Upgrade: 'h2c' })],
      ['POST upgrade', async () => upgrade(stream(await alice.ticket(sessionId)), {}, 'POST')],
      ['bad subprotocol header', async () => upgrade(stream(await alice.ticket(sessionId)), { 'Sec-WebSocket-Protocol': 'a b, ,' })],
    ];
    for (const [name, make] of cases) {
      const text = await raw(port, await make());
      const parsed = parseRawAnswer(text);
      if (!parsed) {
        problems.push(`upgrade "${name}" → no answer ${JSON.stringify(text.slice(0, 100))}`);
        continue;
      }
      if (parsed.status < 400) problems.push(`upgrade "${name}" → ${parsed.status}, expected a 4xx`);
      check(`upgrade "${name}"`, { status: parsed.status, type: /content-type:\s*([^\r\n]*)/i.exec(parsed.headers)?.[1] ?? '', body: parsed.body });
    }
    report();
  });

  it('malformed frames on an open stream: the client is dropped, the server carries on', async () => {
    const alice = t.api('alice');
    const frames: Buffer[] = [
      Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), // unmasked text frame: clients must mask
      Buffer.from([0x83, 0x80, 1, 2, 3, 4]), // reserved opcode
      Buffer.from([0xc1, 0x80, 1, 2, 3, 4]), // RSV1 without an extension
      Buffer.from([0x89, 0xfe, 0x01, 0x00, 1, 2, 3, 4]), // control frame longer than 125 bytes
      Buffer.from([0x09, 0x80, 1, 2, 3, 4]), // fragmented ping
      Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]), // 2^63 bytes announced
      Buffer.from([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe7 ^ 2]), // close with an invalid code (999)
      randomBytes(256),
    ];
    for (const [i, frame] of frames.entries()) {
      const ticket = await alice.ticket(sessionId);
      const socket = connect(port, '127.0.0.1');
      const closed = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (c) => (text += c.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', () => {});
      });
      socket.write(
        `GET /v1/sessions/${sessionId}/stream?ticket=${encodeURIComponent(ticket)} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
      await new Promise((r) => setTimeout(r, 100));
      socket.write(frame);
      const outcome = await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
      socket.destroy();
      if (outcome === null) problems.push(`frame #${i}: the server kept the connection open`);
      else if (!outcome.startsWith('HTTP/1.1 101')) problems.push(`frame #${i}: the upgrade itself failed: ${outcome.slice(0, 100)}`);
    }
    // A message over the stream's size limit, from a well-behaved client library.
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}${`/v1/sessions/${sessionId}/stream?ticket=${encodeURIComponent(await alice.ticket(sessionId))}`}`);
    await new Promise((r) => ws.once('open', r));
    const code = await new Promise<number>((resolve) => {
      ws.once('close', (c) => resolve(c));
      ws.on('error', () => {});
      ws.send('x'.repeat(100_000));
    });
    // 1009 (message too big), or 1006 when the close overtakes the rest of the client's own write.
    assert.ok(code === 1009 || code === 1006, `closed with ${code}`);
    report();
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    const r = await alice.get(sessionId);
    assert.equal(r.status, 200, 'the session survived it all');
  });
});

/** A request target as a hostile client sends it: printable ASCII kept, every other byte %-encoded. */
function toWire(target: string): string {
  let out = '';
  for (const byte of Buffer.from(target, 'utf8')) out += byte > 0x20 && byte < 0x7f ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0')}`;
  return out;
}
