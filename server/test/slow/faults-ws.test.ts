// Issue 7: WebSocket clients that stop reading. A real server streams a large answer to many
// clients that never read and a few that do: the stalled ones are dropped, the server's memory
// stays bounded, and the readers get every event, in order.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { answerOf, makeRepo, tempDir, type ApiClient } from '../helpers';
import { startCli, stop } from './faults';

const STALLED = 40;
const READERS = 4;
const ANSWER_BYTES = 16 * 1024 * 1024;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** A WebSocket upgrade on a raw socket that then never reads a byte. */
async function stalledClient(api: ApiClient, id: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  const ticket = await api.ticket(id);
  const url = new URL(api.baseUrl);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  socket.write(
    `GET /v1/sessions/${id}/stream?ticket=${encodeURIComponent(ticket)}&after=0 HTTP/1.1\r\nHost: ${url.host}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  socket.pause();
  // Once resumed (after the test), counts what it was sent until the server's close.
  const closed = new Promise<number>((resolve) => {
    let bytes = 0;
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.on('close', () => resolve(bytes));
  });
  return { socket, closed };
}

describe('faults: slow WebSocket consumers', () => {
  it(`${STALLED} stalled clients are dropped, memory stays bounded, ${READERS} readers get everything`, async () => {
    const dataDir = tempDir();
    // The answer arrives only once every client is connected (the gate file).
    const gate = `${tempDir('berth-gate-')}/go`;
    const server = await startCli(dataDir, ['--agent-command', `while [ ! -f ${gate} ]; do sleep 0.1; done; head -c ${ANSWER_BYTES} /dev/zero | tr '\\0' x; echo; echo END`]);
    try {
      const { api } = server;
      const r = await api.start({ repo: { url: makeRepo() }, prompt: 'big', autoInitiate: true });
      const id = r.body.sessionId as string;
      await api.waitFor(id, (s) => s.status === 'running', 20_000);
      const readers = await Promise.all(Array.from({ length: READERS }, () => api.stream(id)));
      const stalled = await Promise.all(Array.from({ length: STALLED }, () => stalledClient(api, id)));
      const pid = server.child.pid!;
      const baseline = rssBytes(pid);
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);
      writeFileSync(gate, '');
      try {
        await Promise.all(readers.map((s) => s.waitFor((e) => e.type === 'turn_complete', 120_000, 'turn_complete')));
      } finally {
        clearInterval(sampler);
      }
      for (const s of readers) {
        const persisted = s.persisted();
        assert.deepEqual(persisted.map((e) => e.id), persisted.map((_, i) => i + 1), 'every event, in order');
        const answer = answerOf(s.events);
        assert.equal(answer.length, ANSWER_BYTES + '\nEND\n'.length, 'the whole answer');
        await s.close();
      }
      // The stalled clients were cut off: resumed now, each reads what was buffered, then the close.
      const received = await Promise.all(
        stalled.map(({ socket, closed }) => {
          socket.resume();
          return Promise.race([closed, new Promise<number>((res) => setTimeout(() => res(-1), 10_000))]);
        }),
      );
      const dropped = received.filter((n) => n >= 0 && n < ANSWER_BYTES);
      assert.equal(dropped.length, STALLED, `dropped before the end: ${received.join(',')}`);
      const growth = peak - baseline;
      console.log(`server RSS ${Math.round(baseline / 2 ** 20)} MiB -> peak ${Math.round(peak / 2 ** 20)} MiB with ${STALLED} stalled clients`);
      // Each stalled client may queue up to 4 MiB before it is dropped, but the queued frames are one
      // shared Buffer per event (encoded once), so the growth is about the answer in flight plus
      // garbage. Per-client copies would be up to 40 x 4 MiB; no drop at all, 40 x 16 MiB.
      const bound = 192 * 2 ** 20;
      assert.ok(growth < bound, `server memory grew by ${Math.round(growth / 2 ** 20)} MiB (bound ${Math.round(bound / 2 ** 20)} MiB)`);
      for (const { socket } of stalled) socket.destroy();
    } finally {
      await stop(server);
    }
  });
});
