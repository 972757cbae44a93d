// The user-level stream: a snapshot of the user's sessions, then each status change of any of them
// (from any instance), and nothing of anybody else's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { UserStreamEvent, type SessionView } from '@berth/protocol';
import { ApiClient, makeRepo, startTestServer, TEST_PG_URL, testStoreFor, wsStatus, type TestServer } from './helpers';

class UserStream {
  readonly events: UserStreamEvent[] = [];
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => this.events.push(UserStreamEvent.parse(JSON.parse(raw.toString('utf8')))));
  }

  static async open(api: ApiClient): Promise<UserStream> {
    const ws = new WebSocket(await userUrl(api));
    const stream = new UserStream(ws); // listening before the snapshot can arrive
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return stream;
  }

  /** Views of one session received so far, in order. */
  views(sessionId: string): SessionView[] {
    return this.events.flatMap((e) => (e.type === 'session' && e.session.id === sessionId ? [e.session] : []));
  }

  async waitFor<T>(what: string, pick: () => T | undefined, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = pick();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`user stream: no ${what}; got ${JSON.stringify(this.events.map((e) => (e.type === 'session' ? `${e.session.id}:${e.session.status}` : e.type)))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.ws.close();
  }
}

async function userUrl(api: ApiClient, ticket?: string): Promise<string> {
  const t = ticket ?? (await api.request<{ ticket: string }>('POST', '/v1/stream-ticket')).body.ticket;
  return `${api.baseUrl.replace(/^http/, 'ws')}/v1/stream?ticket=${encodeURIComponent(t)}`;
}

describe('user-level stream', { concurrency: false }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ agentCommand: 'cat' });
  });
  after(async () => {
    await t?.close();
  });

  it('starts with the user’s sessions, then carries every status change of hers and none of others’', async () => {
    const alice = t.api('alice');
    const bob = t.api('bob');
    const earlier = (await alice.start({ repo: { url: makeRepo() }, prompt: 'earlier', autoInitiate: true })).body.sessionId as string;
    await alice.waitFor(earlier, (s) => s.status === 'ready', 30_000);
    const stream = await UserStream.open(alice);
    const snapshot = await stream.waitFor('snapshot', () => stream.events.find((e) => e.type === 'sessions'));
    assert.ok(snapshot.type === 'sessions' && snapshot.sessions.some((s) => s.id === earlier));

    const bobs = (await bob.start({ repo: { url: makeRepo() }, prompt: 'bob', autoInitiate: true })).body.sessionId as string;
    const id = (await alice.start({ repo: { url: makeRepo() }, prompt: 'watch me', autoInitiate: true })).body.sessionId as string;
    // Ready with its first prompt sent (a quick turn may end before preparation settles: no `running` then).
    await stream.waitFor('the turn ending', () => stream.views(id).find((v) => v.status === 'ready' && v.initiatedAt !== null));
    assert.equal(stream.views(id)[0]?.status, 'preparing', stream.views(id).map((v) => v.status).join(' → '));
    await bob.waitFor(bobs, (s) => s.status === 'ready', 30_000);
    assert.equal(stream.views(bobs).length, 0, "bob's session never reaches alice");

    await alice.request('POST', `/v1/sessions/${earlier}/stop`);
    await stream.waitFor('the stopped session', () => stream.views(earlier).find((v) => v.status === 'sleeping'));
    stream.close();
  });

  it('takes only a user ticket, once', async () => {
    const alice = t.api('alice');
    const id = (await alice.start({ repo: { url: makeRepo() } })).body.sessionId as string;
    const userTicket = (await alice.request<{ ticket: string }>('POST', '/v1/stream-ticket')).body.ticket;
    const sessionStream = (ticket: string) => `${alice.baseUrl.replace(/^http/, 'ws')}/v1/sessions/${id}/stream?ticket=${encodeURIComponent(ticket)}`;
    assert.equal(await wsStatus(sessionStream(userTicket)), 401, 'a user ticket opens no session stream');
    assert.equal(await wsStatus(await userUrl(alice, await alice.ticket(id))), 401, 'a session ticket opens no user stream');
    const url = await userUrl(alice);
    assert.equal(await wsStatus(url), 101);
    assert.equal(await wsStatus(url), 401, 'used once');
    assert.equal((await new ApiClient(t.url, 'nobody-token-123').request('POST', '/v1/stream-ticket')).status, 401);
  });
});

describe('user-level stream across instances', { concurrency: false, skip: TEST_PG_URL ? false : 'needs BERTH_TEST_PG_URL' }, () => {
  it('a stream on one instance hears the status changes made on another', async () => {
    const a = await startTestServer({ agentCommand: 'cat', maxConcurrentPreparations: 1 });
    const b = await startTestServer({ agentCommand: 'cat', store: await testStoreFor(a.dataDir), maxConcurrentPreparations: 1 });
    try {
      const stream = await UserStream.open(b.api('alice'));
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await a.api('alice').start({ repo: { url: makeRepo() }, prompt: `n${i}`, autoInitiate: true })).body.sessionId as string);
      for (const id of ids) await stream.waitFor(`ready of ${id}`, () => stream.views(id).find((v) => v.status === 'ready'), 60_000);
      const instances = new Set(await Promise.all(ids.map(async (id) => (await a.server.ctx.store.getSession(id))?.instance)));
      assert.ok(instances.size >= 1);
      stream.close();
    } finally {
      await b.close();
      await a.close();
    }
  });
});
