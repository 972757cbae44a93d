import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ConnectionState, SessionView, StreamEvent } from '@berth/protocol';
import { ApiError } from '../src/session/apiClient';
import { backoffDelay } from '@berth/protocol';
import { StreamClient, type StreamClientOptions } from '../src/session/streamClient';
import { startRealServer, waitFor, type RealServer } from './helpers/realServer';

const SESSION = 'ses_aaaaaaaaaaaaaaaaaaaaaaaa';
const ts = new Date(0).toISOString();
const fastBackoff = { initialMs: 20, maxMs: 100, jitter: 0.5 };

function view(status: SessionView['status'], lastEventId = 0): SessionView {
  return {
    id: SESSION,
    repo: { url: 'https://example.com/r.git' },
    setup: [],
    autoInitiate: true,
    status,
    step: status === 'preparing' ? 'clone' : null,
    createdAt: ts,
    updatedAt: ts,
    preparedAt: null,
    initiatedAt: null,
    lastError: null,
    lastEventId,
  };
}
const connected = (status: SessionView['status'] = 'ready'): StreamEvent => ({
  id: 0,
  sessionId: SESSION,
  type: 'connected',
  ts,
  data: { session: view(status) },
});
const output = (id: number, text: string): StreamEvent => ({
  id,
  sessionId: SESSION,
  type: 'assistant_output',
  ts,
  data: { turnId: 't1', text },
});
const preparing = (step: 'clone' | 'setup'): StreamEvent => ({
  id: 0,
  sessionId: SESSION,
  type: 'preparing',
  ts,
  data: { step, state: 'started', message: step, elapsedMs: 1 },
});

/** A scripted stream server: each connection gets the frames of the next script entry. */
async function scriptedServer(scripts: Array<(ws: WebSocket, after: number) => void>) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const port = (wss.address() as AddressInfo).port;
  const connections: Array<{ ticket: string | null; after: number }> = [];
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const after = Number(url.searchParams.get('after'));
    connections.push({ ticket: url.searchParams.get('ticket'), after });
    const script = scripts[connections.length - 1];
    if (script) script(ws, after);
  });
  let tickets = 0;
  return {
    connections,
    connectUrl: async (afterId: number) => `ws://127.0.0.1:${port}/v1/sessions/${SESSION}/stream?ticket=t${++tickets}&after=${afterId}`,
    close: () => new Promise<void>((r) => wss.close(() => r())),
    wss,
  };
}

function collect(options: Partial<StreamClientOptions> & Pick<StreamClientOptions, 'connectUrl'>) {
  const events: StreamEvent[] = [];
  const states: ConnectionState[] = [];
  const client = new StreamClient({
    sessionId: SESSION,
    backoff: fastBackoff,
    onEvent: (e) => events.push(e),
    onConnectionState: (s) => states.push(s),
    ...options,
  });
  return { client, events, states };
}

const send = (ws: WebSocket, ...events: Array<StreamEvent | string>) => {
  for (const e of events) ws.send(typeof e === 'string' ? e : JSON.stringify(e));
};

describe('backoffDelay', () => {
  const options = { initialMs: 500, maxMs: 30_000, jitter: 0.5 };
  it('doubles per attempt and stops at the cap', () => {
    const top = () => 1;
    assert.deepEqual([0, 1, 2, 3].map((a) => backoffDelay(a, options, top)), [500, 1000, 2000, 4000]);
    assert.equal(backoffDelay(10, options, top), 30_000);
    assert.equal(backoffDelay(1000, options, top), 30_000);
  });
  it('randomises the jitter share of each delay, within bounds', () => {
    assert.equal(backoffDelay(2, options, () => 0), 1000);
    assert.equal(backoffDelay(2, options, () => 0.5), 1500);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(3, options)));
    assert.ok(seen.size > 5, 'real randomness spreads reconnects');
    for (const d of seen) assert.ok(d >= 2000 && d <= 4000, `${d} within [2000, 4000]`);
  });
});

describe('StreamClient (scripted server)', () => {
  it('advances the cursor only on persisted ids, drops duplicates, invalid frames and other sessions', async () => {
    const server = await scriptedServer([
      (ws) =>
        send(
          ws,
          connected(),
          preparing('clone'),
          output(1, 'a'),
          output(2, 'b'),
          output(2, 'b-duplicate'),
          output(1, 'a-older'),
          preparing('setup'), // volatile after persisted ones: must not move the cursor back to 0
          'not json',
          JSON.stringify({ id: 3, sessionId: SESSION, type: 'assistant_output', ts, data: { nope: true } }),
          { ...output(4, 'other session'), sessionId: 'ses_bbbbbbbbbbbbbbbbbbbbbbbb' },
          output(3, 'c'),
        ),
    ]);
    const { client, events } = collect({ connectUrl: server.connectUrl });
    client.start();
    await waitFor('event 3', () => (client.cursor === 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 50));
    client.stop();
    await server.close();
    assert.deepEqual(
      events.map((e) => (e.type === 'assistant_output' ? `${e.id}:${e.data.text}` : `${e.id}:${e.type}`)),
      ['0:connected', '0:preparing', '1:a', '2:b', '0:preparing', '3:c'],
    );
    assert.equal(client.cursor, 3);
    assert.equal(client.stats.duplicates, 2);
    assert.equal(client.stats.invalid, 3);
  });

  it('reconnects with a new ticket and after=<cursor>, and never redelivers', async () => {
    const server = await scriptedServer([
      (ws) => {
        send(ws, connected(), output(1, 'a'), output(2, 'b'), preparing('clone'));
        setTimeout(() => ws.terminate(), 30); // the network drops
      },
      (ws, afterId) => {
        // A server that replays a little too much: the client must still deliver each id once.
        send(ws, connected(), output(afterId, 'b-again'), output(afterId + 1, 'c'));
      },
    ]);
    const { client, events, states } = collect({ connectUrl: server.connectUrl });
    client.start();
    await waitFor('event 3', () => (client.cursor === 3 ? true : undefined));
    client.stop();
    await server.close();
    assert.equal(server.connections.length, 2);
    assert.deepEqual(
      server.connections.map((c) => c.after),
      [0, 2],
      'the reconnect resumes after the last persisted id, not after the volatile event that followed it',
    );
    assert.notEqual(server.connections[0]!.ticket, server.connections[1]!.ticket, 'a fresh ticket per connect');
    const persistedIds = events.filter((e) => e.id > 0).map((e) => e.id);
    assert.deepEqual(persistedIds, [1, 2, 3]);
    assert.equal(events.filter((e) => e.type === 'connected').length, 2);
    assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'open', 'closed']);
  });

  it('keeps retrying after transient ticket failures, with backoff', async () => {
    const server = await scriptedServer([(ws) => send(ws, connected())]);
    let calls = 0;
    const { client } = collect({
      connectUrl: async (a) => {
        calls++;
        if (calls <= 2) throw new ApiError(0, 'network', 'Cannot reach the Berth server (ECONNREFUSED)');
        return server.connectUrl(a);
      },
      isPermanentError: (e) => e instanceof ApiError && e.isPermanent,
    });
    client.start();
    await waitFor('open', () => (client.connectionState === 'open' ? true : undefined));
    client.stop();
    await server.close();
    assert.equal(calls, 3);
  });

  it('gives up when the ticket endpoint says the session is gone', async () => {
    let fatal: Error | null = null;
    let calls = 0;
    const { client, states } = collect({
      connectUrl: async () => {
        calls++;
        throw new ApiError(404, 'not_found', 'no such session');
      },
      isPermanentError: (e) => e instanceof ApiError && e.isPermanent,
      onFatal: (e) => (fatal = e),
    });
    client.start();
    await waitFor('fatal', () => fatal ?? undefined);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(calls, 1, 'no reconnect after a permanent error');
    assert.equal(states.at(-1), 'closed');
    assert.match(String(fatal), /no such session/);
  });

  it('drops a silent connection (no pong) and reconnects', async () => {
    const server = await scriptedServer([
      (ws) => {
        send(ws, connected());
        // Simulate a dead peer: stop answering pings.
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      },
      (ws) => send(ws, connected()),
    ]);
    const { client } = collect({ connectUrl: server.connectUrl, pingIntervalMs: 40 });
    client.start();
    await waitFor('second connection', () => (server.connections.length === 2 ? true : undefined), 5000);
    await waitFor('open again', () => (client.connectionState === 'open' ? true : undefined));
    client.stop();
    for (const ws of server.wss.clients) ws.terminate();
    await server.close();
  });

  it('reports open only after the connected snapshot was handed on (never open with the status from before a drop)', async () => {
    const server = await scriptedServer([
      (ws) => {
        send(ws, connected());
        setTimeout(() => ws.terminate(), 30);
      },
      (ws) => send(ws, connected()),
    ]);
    const log: string[] = [];
    const client = new StreamClient({
      sessionId: SESSION,
      backoff: fastBackoff,
      connectUrl: server.connectUrl,
      onEvent: (e) => log.push(`event ${e.type}`),
      onConnectionState: (s) => log.push(`state ${s}`),
    });
    client.start();
    await waitFor('reconnected', () => (server.connections.length === 2 && client.connectionState === 'open' ? true : undefined));
    client.stop();
    await server.close();
    assert.deepEqual(log, ['state connecting', 'event connected', 'state open', 'state reconnecting', 'event connected', 'state open', 'state closed']);
  });
});

describe('StreamClient (real server on loopback)', () => {
  let real: RealServer;
  before(async () => {
    real = await startRealServer({ agentCommand: 'cat' });
  });
  after(async () => {
    await real?.close();
  });

  function follow(sessionId: string) {
    const events: StreamEvent[] = [];
    /** The cursor right after each event was delivered. */
    const cursors: number[] = [];
    const afters: number[] = [];
    const tickets: string[] = [];
    const client = new StreamClient({
      sessionId,
      backoff: fastBackoff,
      connectUrl: async (a) => {
        const { ticket } = await real.api.streamTicket(sessionId);
        afters.push(a);
        tickets.push(ticket);
        return real.api.streamUrl(sessionId, ticket, a);
      },
      isPermanentError: (e) => e instanceof ApiError && e.isPermanent,
      onEvent: (e) => {
        events.push(e);
        cursors.push(client.cursor);
      },
    });
    return { client, events, afters, tickets, cursors };
  }

  const turnDone = (events: StreamEvent[], n = 1) =>
    events.filter((e) => e.type === 'turn_complete').length >= n ? true : undefined;

  it('streams volatile progress then persisted turn events; only persisted ids move the cursor', async () => {
    const { sessionId } = await real.api.startSession({
      repo: { url: real.repoUrl, branch: 'main' },
      prompt: 'hello from the test',
      setup: ['sleep 0.4'],
      autoInitiate: true,
    });
    const { client, events, cursors } = follow(sessionId);
    client.start();
    await waitFor('turn complete', () => turnDone(events));
    client.stop();

    assert.equal(events[0]?.type, 'connected', 'the snapshot comes first');
    assert.ok(events.filter((e) => e.type === 'preparing').length >= 8, 'progress of every step arrived live');
    let newest = 0;
    events.forEach((e, i) => {
      if (e.id > 0) newest = e.id;
      assert.equal(cursors[i], newest, `after ${e.type} #${e.id} the cursor is the newest persisted id`);
    });
    for (const e of events) {
      if (['preparing', 'status', 'connected', 'heartbeat'].includes(e.type)) assert.equal(e.id, 0, `${e.type} is volatile`);
      else assert.ok(e.id > 0, `${e.type} is persisted`);
    }
    const ids = events.filter((e) => e.id > 0).map((e) => e.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'persisted ids in order');
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.equal(client.cursor, Math.max(...ids));
    const readyAt = events.findIndex((e) => e.type === 'preparing' && e.data.step === 'ready');
    assert.ok(readyAt > 0, 'a ready progress event');
    const text = events.flatMap((e) => (e.type === 'assistant_output' ? [e.data.text] : [])).join('');
    assert.equal(text, 'hello from the test', 'the `cat` agent echoes the prompt');
    assert.equal((await real.api.getSession(sessionId)).lastEventId, client.cursor);
  });

  it('reconnects after ready with a new ticket and after=<cursor>: a ready snapshot, no replayed progress, no duplicates', async () => {
    const { sessionId } = await real.api.startSession({
      repo: { url: real.repoUrl },
      prompt: 'first',
      autoInitiate: true,
    });
    const { client, events, afters, tickets } = follow(sessionId);
    client.start();
    await waitFor('first turn', () => turnDone(events));
    await waitFor('ready', async () => ((await real.api.getSession(sessionId)).status === 'ready' ? true : undefined));
    const cursorBefore = client.cursor;
    const seenBefore = events.length;

    client.dropConnection();
    await waitFor('second snapshot', () => (events.filter((e) => e.type === 'connected').length === 2 ? true : undefined));
    const afterReconnect = events.slice(seenBefore);
    assert.equal(afters.length, 2);
    assert.deepEqual(afters, [0, cursorBefore]);
    assert.notEqual(tickets[0], tickets[1], 'tickets are single-use and short-lived: one per connect');
    const snapshot = afterReconnect[0];
    assert.ok(snapshot?.type === 'connected');
    assert.equal(snapshot.data.session.status, 'ready', 'the snapshot says ready');
    assert.equal(afterReconnect.filter((e) => e.type === 'preparing').length, 0, 'old progress is not replayed');
    assert.equal(afterReconnect.filter((e) => e.id > 0 && e.id <= cursorBefore).length, 0, 'nothing redelivered');

    // The resumed stream carries new persisted events.
    await real.api.sendMessage(sessionId, 'second');
    await waitFor('second turn', () => turnDone(events, 2));
    client.stop();
    const ids = events.filter((e) => e.id > 0).map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(client.cursor > cursorBefore);
  });

  it('reconnects in the middle of preparation: cursor still 0, the snapshot says preparing', async () => {
    const { sessionId } = await real.api.startSession({
      repo: { url: real.repoUrl },
      prompt: 'slow',
      setup: ['sleep 1.2'],
      autoInitiate: true,
    });
    const { client, events, afters, cursors } = follow(sessionId);
    client.start();
    await waitFor('setup step', () =>
      events.some((e) => e.type === 'preparing' && e.data.step === 'setup') || events.some((e) => e.type === 'connected' && e.data.session.step === 'setup')
        ? true
        : undefined,
    );
    client.dropConnection();
    await waitFor('second snapshot', () => (events.filter((e) => e.type === 'connected').length === 2 ? true : undefined));
    const second = events.filter((e) => e.type === 'connected')[1];
    assert.ok(second?.type === 'connected');
    assert.equal(second.data.session.status, 'preparing');
    // The only persisted event before `ready` is the prompt's user_message (written on the fast path).
    const persistedBeforeDrop = events.slice(0, events.indexOf(second)).filter((e) => e.id > 0).map((e) => e.id);
    assert.deepEqual(afters, [0, Math.max(0, ...persistedBeforeDrop)], 'volatile progress never moved the cursor');
    const beforeDrop = events.slice(0, events.indexOf(second));
    const lastProgress = beforeDrop.findLastIndex((e) => e.type === 'preparing');
    assert.ok(lastProgress > 0, 'progress arrived before the drop');
    assert.equal(cursors[lastProgress], afters[1], 'the cursor after the last progress event is what the reconnect resumed from');
    await waitFor('turn', () => turnDone(events), 20_000);
    client.stop();
  });

  it('a used ticket is refused; the client recovers with a fresh one', async () => {
    const { sessionId } = await real.api.startSession({ repo: { url: real.repoUrl }, prompt: 'x', autoInitiate: true });
    const { ticket: used } = await real.api.streamTicket(sessionId);
    // Use it once.
    const firstEvents: StreamEvent[] = [];
    const probe = new StreamClient({
      sessionId,
      connectUrl: async (a) => real.api.streamUrl(sessionId, used, a),
      onEvent: (e) => firstEvents.push(e),
    });
    probe.start();
    await waitFor('first use', () => (firstEvents.length > 0 ? true : undefined));
    probe.stop();

    let calls = 0;
    const events: StreamEvent[] = [];
    const client = new StreamClient({
      sessionId,
      backoff: fastBackoff,
      connectUrl: async (a) => {
        calls++;
        const ticket = calls === 1 ? used : (await real.api.streamTicket(sessionId)).ticket;
        return real.api.streamUrl(sessionId, ticket, a);
      },
      onEvent: (e) => events.push(e),
    });
    client.start();
    await waitFor('connected', () => (events.some((e) => e.type === 'connected') ? true : undefined));
    client.stop();
    assert.equal(calls, 2, 'the reused ticket failed, the second attempt used a new one');
  });

  it('stops for good when the session is deleted', async () => {
    const { sessionId } = await real.api.startSession({ repo: { url: real.repoUrl }, prompt: 'bye', autoInitiate: true });
    let fatal: Error | null = null;
    const events: StreamEvent[] = [];
    const client = new StreamClient({
      sessionId,
      backoff: fastBackoff,
      connectUrl: async (a) => real.api.streamUrl(sessionId, (await real.api.streamTicket(sessionId)).ticket, a),
      isPermanentError: (e) => e instanceof ApiError && e.isPermanent,
      onEvent: (e) => events.push(e),
      onFatal: (e) => (fatal = e),
    });
    client.start();
    await waitFor('connected', () => (events.some((e) => e.type === 'connected') ? true : undefined));
    await real.api.deleteSession(sessionId);
    client.dropConnection();
    await waitFor('fatal', () => fatal ?? undefined);
    assert.equal(client.connectionState, 'closed');
  });
});
