import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import { createLogger } from '../src/core/log.ts';
import { SimulatedChargePoint } from '../src/sim/charger/charge-point.ts';
import { SimulatedHome } from '../src/sim/home.ts';
import { DEMO_HOME, DEMO_WORK, SimulatedPhones } from '../src/sim/people.ts';
import { needService, services } from './helpers/services.ts';

/** Waits on real I/O (a broker, a socket), never on simulated time. */
async function eventually<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether `work` finished within `ms` (real time). */
function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  return Promise.race([
    work.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
  ]);
}

/**
 * A TCP relay in front of the machine's Mosquitto: `cut()` drops every connection through it
 * without an MQTT DISCONNECT, as a Wi-Fi blip or a NAT timeout would, so the broker publishes the
 * clients' last wills; the relay keeps listening, so the clients can come back.
 */
class Relay {
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  url = '';

  static async open(target: string): Promise<Relay> {
    const { hostname, port } = new URL(target);
    const relay = new Relay();
    const server = createServer((inbound) => {
      const outbound = connect(Number(port), hostname);
      for (const s of [inbound, outbound]) {
        relay.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          relay.sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    relay.server = server;
    relay.url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
    return relay;
  }

  cut(): void {
    for (const s of [...this.sockets]) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

describe('simulated home devices after a dropped connection', async () => {
  const skip = await needService('mqtt');

  test('every device and the bridge say they are online again once reconnected, after the broker published their wills', {
    skip,
  }, async () => {
    const ns = `sim-review-${randomBytes(4).toString('hex')}`;
    const relay = await Relay.open(services.mqtt);
    const home = new SimulatedHome({
      brokerUrl: relay.url,
      clock: new VirtualClock(),
      prefix: `${ns}/zigbee2mqtt`,
      discoveryPrefix: `${ns}/homeassistant`,
      commandDelayMs: 0,
    });
    const watcher = await mqtt.connectAsync(services.mqtt, { clientId: `${ns}-watcher` });
    const availability = new Map<string, string>();
    watcher.on('message', (topic, payload) => {
      if (topic.endsWith('/availability') || topic.endsWith('/bridge/state'))
        availability.set(topic, payload.toString());
    });
    const topics = [home.bridgeTopic, ...home.devices.map((d) => d.availabilityTopic)];
    try {
      await home.start();
      await watcher.subscribeAsync(`${ns}/zigbee2mqtt/#`, { qos: 1 });
      const all = (state: string) => topics.every((t) => availability.get(t) === JSON.stringify({ state }));
      await eventually('everything online', () => all('online'));

      relay.cut();
      // The broker saw the connections die without a DISCONNECT: every will goes out.
      await eventually('the wills', () => all('offline'));
      // The devices reconnect on their own (through the relay, still listening) and say so.
      await eventually('everything online again', () => all('online'), 15_000);
    } finally {
      await home.remove().catch(() => {});
      await watcher.endAsync();
      await relay.close();
    }
  });
});

/** A central system of the test's own on a real WebSocket: it records every CALL and answers it. */
async function centralSystem(
  answers: Record<string, (payload: Record<string, unknown>) => Record<string, unknown>>,
  listenOn = 0,
) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: listenOn, handleProtocols: () => 'ocpp1.6' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const calls: Array<{ connection: number; action: string; payload: Record<string, unknown> }> = [];
  const sockets: WsSocket[] = [];
  server.on('connection', (socket) => {
    sockets.push(socket);
    const connection = sockets.length;
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as unknown[];
      if (frame[0] !== 2) return;
      const [, id, action, payload] = frame as [number, string, string, Record<string, unknown>];
      calls.push({ connection, action, payload });
      const answer = answers[action]?.(payload) ?? {};
      socket.send(JSON.stringify([3, id, answer]));
    });
  });
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    calls,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of server.clients) s.terminate();
        server.close(() => resolve());
      }),
  };
}

const accepted = (clock: VirtualClock, interval: number) => () => ({
  status: 'Accepted',
  currentTime: new Date(clock.now()).toISOString(),
  interval,
});

function parkedCar() {
  return {
    plugged: () => false,
    soc: () => 60,
    maxCurrentA: 16,
    acceptKw: (kw: number) => kw,
    charged: () => {},
  };
}

describe('simulated OCPP 1.6J charge point', () => {
  const open: Array<() => Promise<void>> = [];

  /** A charge point with a parked car, started against `url`; stopped after the suite. */
  async function chargePoint(url: string, id: string, clock: VirtualClock): Promise<SimulatedChargePoint> {
    const cp = new SimulatedChargePoint({
      url,
      chargePointId: id,
      password: 'x'.repeat(16),
      clock,
      log: createLogger({ level: 'silent' }),
      car: parkedCar(),
    });
    open.push(() => cp.stop());
    await cp.start();
    return cp;
  }
  after(async () => {
    for (const close of open) await close();
  });

  test('sends a Heartbeat at the interval the central system gave in its BootNotification answer', async () => {
    const clock = new VirtualClock();
    const cs = await centralSystem({ BootNotification: accepted(clock, 120) });
    open.push(cs.close);
    await chargePoint(cs.url, 'REVIEW-HB', clock);
    assert.equal(cs.calls[0]?.action, 'BootNotification', 'BootNotification comes first');
    const heartbeats = () => cs.calls.filter((c) => c.action === 'Heartbeat').length;
    assert.equal(heartbeats(), 0);
    for (let minute = 1; minute <= 10; minute++) await clock.advance(60_000);
    // Ten minutes at a 120 s interval: five heartbeats (the meter samples do not stand in for them).
    await eventually('five heartbeats', () => heartbeats() >= 5);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(heartbeats(), 5);
  });

  test('boots again after the central system dropped it, retrying with backoff until it is back', async () => {
    const clock = new VirtualClock();
    let cs = await centralSystem({ BootNotification: accepted(clock, 300) });
    const { port } = new URL(cs.url);
    await chargePoint(cs.url, 'REVIEW-RC', clock);
    await cs.close();
    // The central system is gone for a while (a hub restart): the charge point keeps trying.
    for (let i = 0; i < 10; i++) await clock.advance(10_000);
    // Back on the same port, so the charge point's URL leads to it again.
    cs = await centralSystem({ BootNotification: accepted(clock, 300) }, Number(port));
    open.push(cs.close);
    // Backoff never waits longer than a minute or so between tries.
    for (let i = 0; i < 12 && !cs.calls.some((c) => c.action === 'StatusNotification'); i++) {
      await clock.advance(10_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await eventually('a new boot and status', () => cs.calls.some((c) => c.action === 'StatusNotification'));
    assert.equal(cs.calls[0]?.action, 'BootNotification', 'the new connection starts with BootNotification');
  });
});

describe('simulated OwnTracks phones while their broker is away', async () => {
  const skip = await needService('mqtt');

  test('keep running (no unheard MQTT error kills the process) and stop promptly', { skip }, async () => {
    const username = `sim-review-${randomBytes(4).toString('hex')}`;
    const relay = await Relay.open(services.mqtt);
    const clock = new VirtualClock();
    const phones = new SimulatedPhones({
      clock,
      hubUrl: 'http://127.0.0.1:9',
      brokerUrl: relay.url,
      phones: [
        {
          person: 'Alex',
          transport: 'mqtt',
          username,
          password: 'not checked by this broker',
          home: DEMO_HOME,
          work: DEMO_WORK,
        },
      ],
    });
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.prependListener('uncaughtException', record);
    try {
      await phones.start();
      // The broker goes away for good: every reconnect the client tries is refused.
      await relay.close();
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await clock.advance(60_000);
      assert.deepEqual(
        uncaught.map((e) => String(e)),
        [],
        'no error escaped the phones',
      );
      assert.equal(await within(5_000, phones.stop()), true, 'stop() resolved while the broker was away');
    } finally {
      process.removeListener('uncaughtException', record);
      await within(5_000, phones.stop());
      // The retained location the phone left on the machine's broker.
      const cleaner = await mqtt.connectAsync(services.mqtt, { clientId: `${username}-cleaner` });
      await cleaner.publishAsync(`owntracks/${username}/phone`, '', { retain: true, qos: 1 });
      await cleaner.endAsync();
    }
  });
});
