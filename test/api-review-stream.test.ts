import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { eventually } from './helpers/hub-process.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * The stream under a hostile or merely unusual client: a large household's snapshot reaches a
 * client that reads it, a client that stops answering pings is let go, and a message whose
 * fields are of the wrong kind is refused and changes nothing.
 */

type Json = Record<string, unknown>;

async function openStream(hub: Hub, options: WebSocket.ClientOptions = {}) {
  const socket = new WebSocket(`${hub.httpUrl.replace(/^http/, 'ws')}/api/stream`, {
    ...options,
    headers: { authorization: `Bearer ${hub.ownerToken}` },
  });
  const messages: Json[] = [];
  let closed: { code: number; reason: string } | null = null;
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Json));
  socket.on('close', (code, reason) => {
    closed = { code, reason: String(reason) };
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return { socket, messages, closed: () => closed as { code: number; reason: string } | null };
}

async function lights(hub: Hub, count: number, prefix = 'light') {
  await hub.core.upsertThings(
    Array.from({ length: count }, (_, i) => ({
      id: `${prefix}-${i}`,
      householdId: hub.householdId,
      kind: 'device',
      name: `Light ${i} of a house with a great many lights`,
      adapter: 'test',
      properties: vocabularyProperties([
        'light.on',
        'light.brightness',
        'light.color_temp',
        'sensor.power',
        'sensor.energy',
        'sensor.temperature',
      ]),
      actions: vocabularyActions('light'),
    })),
  );
}

describe('API review: the stream', () => {
  let hub: Hub;
  before(async () => {
    hub = await startTriad();
    await lights(hub, 8000);
  });
  after(async () => {
    await hub?.stop();
  });

  it("sends a large household's whole snapshot to a client that reads it, rather than cutting it off as too slow", async () => {
    const stream = await openStream(hub);
    stream.socket.send(JSON.stringify({ type: 'subscribe', things: ['*'], snapshot: true }));
    await eventually(() => stream.messages.some((m) => m.type === 'snapshot.end') || stream.closed(), {
      timeoutMs: 60_000,
      what: 'the end of the snapshot',
    });
    assert.equal(stream.closed(), null, 'the stream stayed open');
    const things = stream.messages.filter((m) => m.type === 'thing').length;
    assert.equal(things, hub.twins.list(hub.householdId).length);
    // Still live after it.
    hub.core.ingest([
      {
        householdId: hub.householdId,
        thing: 'light-7',
        property: 'light.on',
        value: true,
        ts: Date.now(),
        source: 't',
      },
    ]);
    await eventually(() => stream.messages.some((m) => m.type === 'state' && m.thing === 'light-7'), {
      what: 'a change after the snapshot',
    });
    stream.socket.close();
  });

  it('refuses a subscription whose things is null or whose unsubscribe names things, changing nothing', async () => {
    const stream = await openStream(hub);
    stream.socket.send(JSON.stringify({ type: 'subscribe', things: ['light-1'] }));
    await eventually(() => stream.messages.some((m) => m.type === 'subscribed'), { what: 'the subscription' });
    const errors = () => stream.messages.filter((m) => m.type === 'error') as Array<{ error: { code: string } }>;
    stream.socket.send(JSON.stringify({ type: 'subscribe', things: null }));
    await eventually(() => errors().length === 1, { what: 'a refusal of things: null' });
    stream.socket.send(JSON.stringify({ type: 'unsubscribe', things: ['light-1'] }));
    await eventually(() => errors().length === 2, { what: 'a refusal of an unsubscribe that names things' });
    stream.socket.send(JSON.stringify({ type: 'unsubscribe', snapshot: true }));
    await eventually(() => errors().length === 3, { what: 'a refusal of an unsubscribe with a snapshot' });
    assert.ok(errors().every((e) => e.error.code === 'bad_message'));
    assert.ok(!stream.messages.some((m) => m.type === 'unsubscribed'));
    // The first subscription is as it was: light-1 only.
    hub.core.ingest([
      {
        householdId: hub.householdId,
        thing: 'light-2',
        property: 'light.on',
        value: true,
        ts: Date.now(),
        source: 't',
      },
      {
        householdId: hub.householdId,
        thing: 'light-1',
        property: 'light.on',
        value: true,
        ts: Date.now(),
        source: 't',
      },
    ]);
    await eventually(() => stream.messages.some((m) => m.type === 'state' && m.thing === 'light-1'), {
      what: "light-1's change",
    });
    assert.ok(!stream.messages.some((m) => m.type === 'state' && m.thing !== 'light-1'));
    stream.socket.close();
  });
});

describe('API review: streams open at once', () => {
  let hub: Hub;
  before(async () => {
    hub = await startTriad();
  });
  after(async () => {
    await hub?.stop();
  });

  /** The status of an upgrade the hub refuses, or 101 when it opens. */
  const tryOpen = () =>
    new Promise<{ status: number; body: string; socket?: WebSocket }>((resolve, reject) => {
      const socket = new WebSocket(`${hub.httpUrl.replace(/^http/, 'ws')}/api/stream`, {
        headers: { authorization: `Bearer ${hub.ownerToken}` },
      });
      socket.once('open', () => resolve({ status: 101, body: '', socket }));
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      socket.once('error', reject);
    });

  it('refuses more than 32 streams at once with one token (429, saying so), and opens one again once another closes', async () => {
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 32; i++) {
      const opened = await tryOpen();
      assert.equal(opened.status, 101, `stream ${i + 1}: ${opened.body}`);
      sockets.push(opened.socket as WebSocket);
    }
    const refused = await tryOpen();
    assert.equal(refused.status, 429);
    const { error } = JSON.parse(refused.body) as { error: { code: string; message: string } };
    assert.equal(error.code, 'too_many_streams');
    assert.match(error.message, /^32 streams are open with this token already/);
    // The open ones still work.
    sockets[5].send(JSON.stringify({ type: 'subscribe', things: ['*'] }));
    await new Promise((resolve) => sockets[5].once('message', resolve));
    sockets.pop()?.close();
    const again = await eventually(
      async () => {
        const attempt = await tryOpen();
        return attempt.status === 101 ? attempt : null;
      },
      { what: 'a stream once another closed' },
    );
    sockets.push(again.socket as WebSocket);
    for (const socket of sockets) socket.close();
  });
});

describe('API review: the stream lets go of a client that stops answering pings', () => {
  let hub: Hub;
  const clock = new VirtualClock(Date.now());
  before(async () => {
    hub = await startTriad({ clock });
  });
  after(async () => {
    await hub?.stop();
  });

  /** Waits until the client has the hub's next ping and the hub has the client's pong to it. */
  const pingAnswered = (socket: WebSocket) =>
    new Promise<void>((resolve) => {
      // The pong goes out before this listener runs; the hub answers the client's own ping after it.
      socket.once('ping', () => {
        socket.once('pong', () => resolve());
        socket.ping();
      });
    });

  it('closes a stream whose client never answers a ping, and keeps one that does', async () => {
    const silent = await openStream(hub, { autoPong: false });
    const healthy = await openStream(hub);
    for (const stream of [silent, healthy]) {
      stream.socket.send(JSON.stringify({ type: 'subscribe', things: ['*'] }));
      await eventually(() => stream.messages.some((m) => m.type === 'subscribed'), { what: 'the subscription' });
    }
    // Many intervals in a moment of real time (a virtual clock's jump) cut off nobody: no client
    // could have answered in it.
    const first = pingAnswered(healthy.socket);
    await clock.advance(10 * 30_000);
    await first;
    assert.equal(silent.closed(), null, 'not cut off within a moment');
    // Ten seconds of real time later, the next interval finds the silent one gone.
    await new Promise((resolve) => setTimeout(resolve, 10_500));
    const second = pingAnswered(healthy.socket);
    await clock.advance(30_000);
    await second;
    await eventually(() => silent.closed(), { what: 'the silent client let go' });
    assert.equal(healthy.closed(), null, 'the client that answers stays');
    healthy.socket.close();
  });
});
