// Terminals into the sandbox, end to end over a real WebSocket: a real PTY on the server running
// `docker exec -it` into a real dev container (and a host shell for the local provider).
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import WebSocket from 'ws';
import { TerminalServerMessage } from '@berth/protocol';
import { ApiClient, isReady, makeRepo, startTestServer, turnComplete, wsStatus, type TestServer } from '../helpers';
import { dockerOrSkip as requireDocker, dockerReadiness } from './docker';

const notReady = await dockerReadiness();
const dockerOrSkip = (t: TestContext) => requireDocker(t, notReady);

/** One terminal: what it printed so far (ANSI and all), and the exit message when it ended. */
class TerminalClient {
  output = '';
  exit: { code: number | null; reason: string } | null = null;
  private readonly closed: Promise<void>;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => {
      const message = TerminalServerMessage.parse(JSON.parse(raw.toString('utf8')));
      if (message.type === 'output') this.output += message.data;
      else this.exit = message;
    });
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
  }

  static async open(api: ApiClient, sessionId: string, cols = 100, rows = 30): Promise<TerminalClient> {
    const ticket = await terminalTicket(api, sessionId);
    const ws = new WebSocket(terminalUrl(api, sessionId, ticket, cols, rows));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new TerminalClient(ws);
  }

  type(data: string): void {
    this.ws.send(JSON.stringify({ type: 'input', data }));
  }

  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Waits until the output (from `from` on) matches. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 15_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output.slice(from));
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`terminal never printed ${pattern}; got: ${JSON.stringify(this.output.slice(from).slice(-400))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Runs a command and returns the output between two markers (unique per call). */
  async run(command: string): Promise<string> {
    const mark = `M${Math.random().toString(36).slice(2, 8)}`;
    const from = this.output.length;
    // The markers are built by the shell, so the echoed command line never matches them.
    this.type(`echo ${mark}''-begin; ${command}; echo ${mark}''-end\r`);
    const m = await this.waitFor(new RegExp(`${mark}-begin\\r?\\n([\\s\\S]*?)${mark}-end`), from);
    return m[1]!.replace(/\r/g, '').trim();
  }

  async closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  }

  close(): void {
    this.ws.close();
  }
}

async function terminalTicket(api: ApiClient, sessionId: string): Promise<string> {
  const r = await api.request<{ ticket: string }>('POST', `/v1/sessions/${sessionId}/terminal-ticket`);
  if (r.status !== 200) throw new Error(`terminal ticket: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.ticket;
}

const terminalUrl = (api: ApiClient, sessionId: string, ticket: string, cols = 80, rows = 24) =>
  `${api.baseUrl.replace(/^http/, 'ws')}/v1/sessions/${sessionId}/terminal?ticket=${encodeURIComponent(ticket)}&cols=${cols}&rows=${rows}`;

async function readySession(api: ApiClient): Promise<string> {
  const { body } = await api.start({ repo: { url: makeRepo() }, prompt: 'hi', autoInitiate: true });
  const stream = await api.stream(body.sessionId);
  await stream.waitFor(isReady, 90_000, 'ready');
  await stream.waitFor(turnComplete, 30_000, 'first turn');
  await stream.close();
  return body.sessionId;
}

/** Every log line the server writes, at debug level, to look for what must never be logged. */
function capturedLogger(): { logger: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), text: () => lines.join('') };
}

for (const provider of ['devcontainer', 'local'] as const) {
  describe(`terminal into the sandbox (${provider})`, { concurrency: false }, () => {
    let t: TestServer;
    const logs = capturedLogger();
    const skip = (ctx: TestContext) => provider === 'devcontainer' && !dockerOrSkip(ctx);
    before(async () => {
      if (provider === 'devcontainer' && notReady) return;
      t = await startTestServer({ provider, agentCommand: 'cat' }, { logger: logs.logger });
    });
    after(async () => {
      await t?.close();
    });

    it('runs commands in the workspace, follows resizes, and Ctrl-C reaches the shell', async (ctx) => {
      if (skip(ctx)) return;
      const alice = t.api('alice');
      const id = await readySession(alice);
      const term = await TerminalClient.open(alice, id, 100, 30);
      try {
        assert.equal(await term.run('echo $((6*7))'), '42');
        assert.equal(await term.run('stty size'), '30 100', 'the PTY has the size the client asked for');
        term.resize(120, 40);
        // The docker client passes the new size on by itself (SIGWINCH, then an API call): not at once.
        let size = '';
        for (let i = 0; i < 50 && size !== '40 120'; i++) size = await term.run('stty size');
        assert.equal(size, '40 120', 'a resize reaches the PTY');
        assert.equal(await term.run('test -t 0 && echo tty'), 'tty');
        await term.run('echo typed-in-the-terminal > from-terminal.txt');
        assert.equal(readFileSync(join(t.server.ctx.paths.workspace(id), 'from-terminal.txt'), 'utf8'), 'typed-in-the-terminal\n', 'the shell runs in the workspace');
        if (provider === 'devcontainer') assert.equal(await term.run('id -un'), 'root', "the config's remoteUser");

        const before = term.output.length;
        term.type("sleep 30; echo not-''interrupted\r");
        await new Promise((r) => setTimeout(r, 500));
        term.type('\u0003');
        const started = Date.now();
        assert.equal(await term.run('echo after-ctrl-c'), 'after-ctrl-c');
        assert.ok(Date.now() - started < 10_000, 'the sleep was interrupted');
        assert.doesNotMatch(term.output.slice(before), /not-interrupted\r?\n/);

        // Two terminals at once, each its own shell.
        const second = await TerminalClient.open(alice, id);
        assert.equal(await second.run('echo second'), 'second');
        assert.notEqual(await second.run('echo $$'), await term.run('echo $$'));
        second.close();

        term.type('echo SECRET-TYPED-7f3k\r');
        await term.waitFor(/SECRET-TYPED-7f3k/);
        const log = (await alice.request('GET', `/v1/sessions/${id}/log`)).body as string;
        assert.doesNotMatch(log + logs.text(), /SECRET-TYPED-7f3k/, 'terminal input and output are never logged');
      } finally {
        term.close();
      }
    });

    it('only the owner with a terminal ticket gets in: other users, stream tickets and used tickets are refused', async (ctx) => {
      if (skip(ctx)) return;
      const alice = t.api('alice');
      const bob = t.api('bob');
      const id = await readySession(alice);
      assert.equal((await bob.request('POST', `/v1/sessions/${id}/terminal-ticket`)).status, 404, "bob cannot get a ticket for alice's session");
      const bobsOwn = await readySession(bob);
      const bobTicket = await terminalTicket(bob, bobsOwn);
      assert.equal(await wsStatus(terminalUrl(alice, id, bobTicket)), 401, "a ticket for bob's session does not open alice's");
      assert.equal(await wsStatus(terminalUrl(alice, id, await alice.ticket(id))), 401, 'a stream ticket does not open a terminal');
      const ticket = await terminalTicket(alice, id);
      assert.equal(await wsStatus(terminalUrl(alice, id, ticket)), 101);
      assert.equal(await wsStatus(terminalUrl(alice, id, ticket)), 401, 'a ticket works once');
      assert.equal(await wsStatus(terminalUrl(alice, id, await terminalTicket(alice, id)).replace('cols=80', 'cols=0')), 400);
    });

    it('a stopped sandbox ends its terminals with a message; a sleeping session is woken first', async (ctx) => {
      if (skip(ctx)) return;
      const alice = t.api('alice');
      const id = await readySession(alice);
      const term = await TerminalClient.open(alice, id);
      assert.equal(await term.run('echo alive'), 'alive');
      assert.equal((await alice.request('POST', `/v1/sessions/${id}/stop`)).status, 200);
      assert.ok(await term.closedWithin(15_000), 'the terminal closed when the sandbox stopped');
      assert.equal(term.exit?.code, null);
      assert.match(term.exit?.reason ?? '', /the sandbox stopped/);

      assert.equal(await wsStatus(terminalUrl(alice, id, await terminalTicket(alice, id))), 409, 'no sandbox: refused');
      const woken = await alice.request('POST', `/v1/sessions/${id}/wake`);
      assert.equal(woken.status, 202, JSON.stringify(woken.body));
      await alice.waitFor(id, (s) => s.status === 'ready', 90_000);
      const again = await TerminalClient.open(alice, id);
      assert.equal(await again.run('cat from-nowhere 2>/dev/null || echo woken'), 'woken');
      again.close();
      assert.equal((await alice.request('POST', `/v1/sessions/${id}/wake`)).status, 200, 'waking a ready session changes nothing');
    });
  });
}

describe('terminal activity and the idle reaper', { concurrency: false }, () => {
  it('typing in a terminal keeps the sandbox; once it stops, the idle sandbox is stopped and the terminal says so', async () => {
    const t = await startTestServer({ agentCommand: 'cat', idleTimeoutMs: 1500, reaperIntervalMs: 100 });
    try {
      const alice = t.api('alice');
      const id = await readySession(alice);
      const term = await TerminalClient.open(alice, id);
      for (let i = 0; i < 8; i++) {
        assert.equal(await term.run(`echo tick${i}`), `tick${i}`);
        await new Promise((r) => setTimeout(r, 400));
      }
      assert.equal((await alice.get(id)).body.status, 'ready', '3 s of typing, idle timeout 1.5 s: still up');
      assert.ok(await term.closedWithin(10_000), 'stopped once idle');
      assert.match(term.exit?.reason ?? '', /the sandbox stopped/);
      assert.equal((await alice.get(id)).body.status, 'sleeping');
    } finally {
      await t.close();
    }
  });
});
