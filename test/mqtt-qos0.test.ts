import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import mqtt from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { EmbeddedBroker } from '../src/adapters/mqtt/broker.ts';
import { MqttConnection } from '../src/adapters/mqtt/connection.ts';
import { PublishReader } from '../src/adapters/mqtt/publish-reader.ts';
import { encodePublish } from '../src/adapters/mqtt/publish-writer.ts';
import { selfSignedCertificate } from './helpers/certificate.ts';
import { eventually, startHubProcess } from './helpers/hub-process.ts';
import { needService, services } from './helpers/services.ts';

const mosquittoSkip = await needService('mqtt');

// Packets are encoded by mqtt-packet (MQTT.js's own codec), not by the code under test.
const encode = (packet: Packet) => mqttPacket.generate(packet, { protocolVersion: 4 });

interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Feeds `chunks` to a reader; returns what it took out and the bytes it handed on. */
function read(chunks: Buffer[]): { publishes: Seen[]; forwarded: Buffer } {
  const publishes: Seen[] = [];
  const forwarded: Buffer[] = [];
  const reader = new PublishReader(
    (topic, payload, retain) => publishes.push({ topic, payload: payload.toString('utf8'), retain }),
    (bytes) => forwarded.push(Buffer.from(bytes)),
  );
  for (const chunk of chunks) reader.feed(chunk);
  return { publishes, forwarded: Buffer.concat(forwarded) };
}

/** Parses bytes with MQTT.js's parser, as MQTT.js would receive them. */
function parse(bytes: Buffer): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  parser.on('packet', (p) => packets.push(p));
  parser.on('error', (e) => {
    throw e;
  });
  parser.parse(bytes);
  return packets;
}

function publish(topic: string, payload: string | Buffer, options: { qos?: 0 | 1; retain?: boolean } = {}): Packet {
  const qos = options.qos ?? 0;
  return {
    cmd: 'publish',
    topic,
    payload,
    qos,
    retain: options.retain ?? false,
    dup: false,
    ...(qos > 0 ? { messageId: 7 } : {}),
  } as Packet;
}

/** A session's worth of packets: acknowledgements and pings among QoS 0 and QoS 1 messages. */
const SESSION: Packet[] = [
  { cmd: 'connack', returnCode: 0, sessionPresent: false },
  publish('home/hall/temperature', '{"temperature":21.5}', { retain: true }),
  { cmd: 'suback', messageId: 1, granted: [0] },
  publish('home/qos1', 'acknowledge me', { qos: 1 }),
  publish('home/kitchen/ünïcødé/🌡', 'x'.repeat(200)),
  { cmd: 'pingresp' },
  publish('home/big', randomBytes(20_000).toString('hex')),
  publish('home/empty', ''),
  { cmd: 'unsuback', messageId: 2, granted: [] },
  publish('home/last', 'bye'),
];
const WHOLE = Buffer.concat(SESSION.map(encode));
const EXPECTED_PUBLISHES: Seen[] = SESSION.flatMap((p) =>
  p.cmd === 'publish' && p.qos === 0 ? [{ topic: p.topic, payload: String(p.payload), retain: p.retain }] : [],
);
const EXPECTED_FORWARDED = Buffer.concat(SESSION.filter((p) => !(p.cmd === 'publish' && p.qos === 0)).map(encode));

describe('the PUBLISH reader in front of MQTT.js', () => {
  test('takes out QoS 0 messages and hands every other packet on, byte for byte and in order', () => {
    const { publishes, forwarded } = read([WHOLE]);
    assert.deepEqual(publishes, EXPECTED_PUBLISHES);
    assert.deepEqual(forwarded, EXPECTED_FORWARDED);
    assert.deepEqual(
      parse(forwarded).map((p) => p.cmd),
      ['connack', 'suback', 'publish', 'pingresp', 'unsuback'],
    );
  });

  test('a stream cut at any byte reads the same', () => {
    for (let cut = 1; cut < WHOLE.length; cut += cut < 300 ? 1 : 97) {
      const { publishes, forwarded } = read([WHOLE.subarray(0, cut), WHOLE.subarray(cut)]);
      assert.deepEqual(publishes, EXPECTED_PUBLISHES, `cut at ${cut}`);
      assert.deepEqual(forwarded, EXPECTED_FORWARDED, `cut at ${cut}`);
    }
  });

  test('random packets in random chunks read as MQTT.js reads them whole', () => {
    const packet = fc.oneof(
      fc
        .record({
          topic: fc.string({ minLength: 1, maxLength: 40 }),
          payload: fc.uint8Array({ maxLength: 600 }),
          qos: fc.constantFrom<0 | 1>(0, 0, 1),
          retain: fc.boolean(),
        })
        .map(({ topic, payload, qos, retain }) => publish(topic, Buffer.from(payload), { qos, retain })),
      fc.constant<Packet>({ cmd: 'pingresp' }),
      fc.integer({ min: 1, max: 65535 }).map((messageId): Packet => ({ cmd: 'puback', messageId })),
    );
    fc.assert(
      fc.property(fc.array(packet, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 10 }), (packets, cuts) => {
        const bytes = Buffer.concat(packets.map(encode));
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...at].map((from, i) => bytes.subarray(from, i < at.length ? at[i] : bytes.length));
        const { publishes, forwarded } = read(chunks);
        const all = parse(bytes);
        const expected = all.flatMap((p) =>
          p.cmd === 'publish' && p.qos === 0
            ? [{ topic: p.topic, payload: Buffer.from(p.payload).toString('utf8'), retain: p.retain }]
            : [],
        );
        assert.deepEqual(publishes, expected);
        assert.deepEqual(
          parse(forwarded),
          all.filter((p) => !(p.cmd === 'publish' && p.qos === 0)),
        );
      }),
      { numRuns: 300 },
    );
  });

  test('a message longer than many chunks is joined once it is whole', () => {
    const payload = randomBytes(300_000);
    const bytes = encode(publish('home/camera/snapshot', payload));
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 65_536) chunks.push(bytes.subarray(at, at + 65_536));
    const taken: Buffer[] = [];
    const reader = new PublishReader(
      (_topic, p) => taken.push(p),
      () => assert.fail('nothing to forward'),
    );
    for (const chunk of chunks) reader.feed(chunk);
    assert.equal(taken.length, 1);
    assert.deepEqual(taken[0], payload);
  });

  test('bytes that are not MQTT go to MQTT.js from there on, so its parser reports them', () => {
    const good = encode(publish('home/ok', '1'));
    const ping = encode({ cmd: 'pingresp' });
    // A remaining length that does not end within four bytes.
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]);
    const later = encode(publish('home/after', '2'));
    const { publishes, forwarded } = read([Buffer.concat([good, ping, bad]), later]);
    assert.deepEqual(publishes, [{ topic: 'home/ok', payload: '1', retain: false }]);
    assert.deepEqual(forwarded, Buffer.concat([ping, bad, later]));
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const errors: Error[] = [];
    parser.on('error', (e) => errors.push(e));
    parser.parse(Buffer.concat([bad, later]));
    assert.equal(errors.length, 1, "MQTT.js's parser refuses what the reader handed on");
  });

  test('a PUBLISH whose topic runs past its end is left to MQTT.js', () => {
    // Remaining length 4: a topic length of 10 cannot fit.
    const broken = Buffer.from([0x30, 0x04, 0x00, 0x0a, 0x61, 0x62]);
    const { publishes, forwarded } = read([broken]);
    assert.deepEqual(publishes, []);
    assert.deepEqual(forwarded, broken);
  });
});

describe('QoS 0 messages the hub writes as one buffer', () => {
  test("MQTT.js's parser reads them as written, at every length the remaining-length field changes size", () => {
    // Remaining length = 2 + topic + payload; one byte up to 127, two up to 16,383, three up to 2,097,151.
    for (const remaining of [2 + 5, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const payload = Buffer.alloc(remaining - 2 - 5, 0x61);
      const packets = parse(encodePublish('a/b/c', payload, remaining % 2 === 0));
      assert.equal(packets.length, 1, `remaining length ${remaining}`);
      const [p] = packets as Array<Packet & { cmd: 'publish' }>;
      assert.equal(p.topic, 'a/b/c');
      assert.equal(p.qos, 0);
      assert.equal(p.retain, remaining % 2 === 0);
      assert.equal(p.payload.length, payload.length);
    }
  });

  test('any topic and payload, text or bytes, round-trips through MQTT.js and through the reader', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 60, unit: 'grapheme' }),
        fc.oneof(fc.string({ maxLength: 300, unit: 'grapheme' }), fc.uint8Array({ maxLength: 300 })),
        fc.boolean(),
        (topic, payload, retain) => {
          const bytes = encodePublish(topic, typeof payload === 'string' ? payload : Buffer.from(payload), retain);
          const expected = Buffer.from(payload);
          const [p] = parse(bytes) as Array<Packet & { cmd: 'publish' }>;
          assert.equal(p.topic, topic);
          assert.deepEqual(Buffer.from(p.payload), expected);
          assert.equal(p.retain, retain);
          const { publishes } = read([bytes]);
          assert.deepEqual(publishes, [{ topic, payload: expected.toString('utf8'), retain }]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a topic MQTT cannot carry is refused with a clear error', () => {
    assert.throws(() => encodePublish('', 'x', false), /topic cannot be empty/);
    assert.throws(() => encodePublish('t'.repeat(70_000), 'x', false), /at most 65,535 bytes; this one is 70000/);
  });
});

describe('the hub connection reads and writes QoS 0 messages itself (the machine Mosquitto)', () => {
  test("messages, retained ones and a 1 MB one arrive whole and in order, MQTT.js parses none of them and writes none of the hub's", {
    skip: mosquittoSkip,
  }, async () => {
    const base = `triad-test-${randomBytes(4).toString('hex')}`;
    const publisher = await mqtt.connectAsync(services.mqtt);
    const link = new MqttConnection({ url: services.mqtt, clientId: `${base}-hub` });
    try {
      const big = randomBytes(1_000_000);
      await publisher.publishAsync(`${base}/retained`, 'kept', { qos: 1, retain: true });
      await link.connect();
      // The connection's MQTT.js client: whatever reaches its packet handler is counted.
      const client = (link as unknown as { client: mqtt.MqttClient }).client;
      const handledByMqttJs: string[] = [];
      client.on('packetreceive', (packet) => handledByMqttJs.push(packet.cmd));
      let bigArrivedWhole = false;
      const seen: Array<{ topic: string; size: number; retain: boolean; text?: string }> = [];
      const count = 2_000;
      const done = new Promise<void>((resolve) => {
        const handler = (topic: string, payload: Buffer, meta: { retain: boolean }) => {
          seen.push({
            topic,
            size: payload.length,
            retain: meta.retain,
            text: payload.length < 100 ? String(payload) : undefined,
          });
          // Compared here, while the payload is the view the reader handed over.
          if (topic.endsWith('/big')) bigArrivedWhole = payload.equals(big);
          if (seen.length === count + 2) resolve();
        };
        void link.subscribe(`${base}/#`, handler);
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      // QoS 1 from the publisher: the hub subscribes at QoS 0, so it still arrives as QoS 0.
      await publisher.publishAsync(`${base}/big`, big, { qos: 1 });
      for (let i = 0; i < count; i++) publisher.publish(`${base}/n`, String(i), { qos: 0 });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        done,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${seen.length} of ${count + 2} messages in 20 s`)), 20_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(seen[0], { topic: `${base}/retained`, size: 4, retain: true, text: 'kept' });
      assert.deepEqual(seen[1], { topic: `${base}/big`, size: big.length, retain: false, text: undefined });
      assert.ok(bigArrivedWhole, 'the 1 MB payload arrived byte for byte');
      assert.deepEqual(
        seen.slice(2).map((s) => s.text),
        Array.from({ length: count }, (_, i) => String(i)),
      );
      const parsedByMqttJs = handledByMqttJs.filter((cmd) => cmd === 'publish').length;
      assert.equal(parsedByMqttJs, 0, `MQTT.js parsed ${parsedByMqttJs} of the messages`);
      // Acknowledgements still reach MQTT.js: an unsubscribe and a QoS 1 publish are answered.
      const unsubscribe = await link.subscribe(`${base}/other`, () => {});
      await unsubscribe();
      await link.publish(`${base}/from-hub`, 'acknowledged', { qos: 1 });
      // A QoS 0 message from the hub is written by the hub itself and comes back like any other.
      const sentByMqttJs: string[] = [];
      client.on('packetsend', (packet) => sentByMqttJs.push(packet.cmd));
      const echoed = new Promise<string>((resolve) => {
        void link.subscribe(`${base}/echo`, (_topic, payload) => resolve(String(payload)));
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await link.publish(`${base}/echo`, 'ünïcødé 🌡', { qos: 0 });
      assert.equal(await echoed, 'ünïcødé 🌡');
      assert.deepEqual(sentByMqttJs, ['subscribe'], 'MQTT.js sent the subscription, not the message');
      assert.ok(handledByMqttJs.includes('suback') && handledByMqttJs.includes('unsuback'));
      assert.ok(handledByMqttJs.includes('puback'));
    } finally {
      await publisher.publishAsync(`${base}/retained`, '', { qos: 1, retain: true });
      await publisher.endAsync();
      await link.close();
    }
  });
});

describe("the hub's answers to one read go out in one write (the machine Mosquitto)", () => {
  test('fifty reports sent together are answered in order, with no more socket writes than reads', {
    skip: mosquittoSkip,
  }, async () => {
    const base = `triad-test-${randomBytes(4).toString('hex')}`;
    const link = new MqttConnection({ url: services.mqtt, clientId: `${base}-hub` });
    const listener = await mqtt.connectAsync(services.mqtt);
    const publisher = await mqtt.connectAsync(services.mqtt);
    try {
      await link.connect();
      const socket = (link as unknown as { client: mqtt.MqttClient }).client.stream as unknown as Socket;
      // Every read of the socket that carries a report, and every write the hub makes to it.
      let reads = 0;
      let writes = 0;
      socket.on('data', (chunk: Buffer) => {
        if (chunk.includes(`${base}/in`)) reads++;
      });
      const spied = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
      for (const method of ['_write', '_writev'] as const) {
        const original = spied[method].bind(socket);
        spied[method] = (...args: unknown[]) => {
          writes++;
          return original(...args);
        };
      }
      const count = 50;
      await link.subscribe(`${base}/in`, (_topic, payload) => {
        void link.publish(`${base}/out`, `answer ${payload}`);
      });
      const answers: string[] = [];
      const all = new Promise<void>((resolve) => {
        listener.on('message', (_topic, payload) => {
          answers.push(String(payload));
          if (answers.length === count) resolve();
        });
      });
      await listener.subscribeAsync(`${base}/out`);
      // Counted from here: the subscription was a write of its own.
      reads = 0;
      writes = 0;
      // Published in one turn: MQTT.js sends them in one segment, and the broker passes them on
      // as fast as it reads them, mostly several to a read of the hub's socket.
      for (let i = 0; i < count; i++) publisher.publish(`${base}/in`, String(i));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        all,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${answers.length} of ${count} answers in 10 s`)), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(
        answers,
        Array.from({ length: count }, (_, i) => `answer ${i}`),
      );
      assert.ok(reads < count, `the broker sent the ${count} reports in ${reads} reads: nothing to coalesce`);
      assert.ok(writes <= reads, `${writes} writes for ${count} answers that came in ${reads} reads`);
    } finally {
      await publisher.endAsync();
      await listener.endAsync();
      await link.close();
    }
  });
});

describe('after the broker restarts', () => {
  test('the hub reconnects, subscribes again, and reads and writes through the new socket', async () => {
    let broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1' });
    await broker.start();
    const port = broker.port;
    const link = new MqttConnection({ url: broker.url, clientId: `triad-test-${randomBytes(4).toString('hex')}` });
    const heard: string[] = [];
    let onHeard = () => {};
    try {
      await link.connect();
      let parsedByMqttJs = 0;
      (link as unknown as { client: mqtt.MqttClient }).client.on('packetreceive', (packet) => {
        if (packet.cmd === 'publish') parsedByMqttJs++;
      });
      await link.subscribe('home/+/state', (topic, payload) => {
        heard.push(`${topic}=${payload}`);
        onHeard();
      });
      const publishAndHear = async (text: string, withinMs: number) => {
        const arrived = new Promise<void>((resolve) => {
          onHeard = resolve;
        });
        await link.publish('home/fan/state', text);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          arrived,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`"${text}" did not come back within ${withinMs} ms`)), withinMs);
          }),
        ]).finally(() => clearTimeout(timer));
      };
      await publishAndHear('before', 5_000);
      await broker.stop();
      broker = new EmbeddedBroker({ port, host: '127.0.0.1' });
      await broker.start();
      // MQTT.js reconnects a second after the loss and holds a QoS 0 publish until then; it may
      // go out before the subscription is renewed, so the hub tries again until it hears one.
      const deadline = Date.now() + 10_000;
      while (!heard.includes('home/fan/state=after') && Date.now() < deadline) {
        await publishAndHear('after', 500).catch(() => {});
      }
      assert.deepEqual(heard.slice(0, 1), ['home/fan/state=before']);
      assert.ok(heard.includes('home/fan/state=after'), `heard ${heard.join(', ')}`);
      assert.equal(parsedByMqttJs, 0, 'the new socket is read by the reader too');
    } finally {
      await link.close();
      await broker.stop();
    }
  });
});

describe('a hub on an mqtts:// broker (its own process, as a user starts it)', () => {
  test('reads a device over TLS, and its command reaches the device', async () => {
    const { certFile, keyFile } = await selfSignedCertificate();
    const broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1', tls: { port: 0, cert: certFile, key: keyFile } });
    await broker.start();
    // The device side speaks plain MQTT to the same broker.
    const device = await mqtt.connectAsync(broker.url);
    // NODE_EXTRA_CA_CERTS is how a user has Node trust a broker's private certificate.
    const hub = await startHubProcess({
      args: ['--mqtt-url', `mqtts://127.0.0.1:${broker.tlsPort}`],
      env: { NODE_EXTRA_CA_CERTS: certFile },
    });
    try {
      const commands: string[] = [];
      device.on('message', (topic, payload) => {
        if (topic === 'tls-test/fan/set') commands.push(String(payload));
      });
      await device.subscribeAsync('tls-test/fan/set');
      const node = { identifiers: ['tls-test-fan'], name: 'TLS fan' };
      await device.publishAsync(
        'homeassistant/switch/tls-test-fan/power/config',
        JSON.stringify({
          name: 'Power',
          command_topic: 'tls-test/fan/set',
          state_topic: 'tls-test/fan/state',
          unique_id: 'tls-test-fan-power',
          device: node,
        }),
        { qos: 1, retain: true },
      );
      const fan = await eventually(
        async () => {
          const things = (await (await hub.api('/api/things')).json()) as Array<{ id: string; name: string }>;
          return things.find((t) => t.name === 'TLS fan')?.id;
        },
        { timeoutMs: 15_000, what: 'the fan to be discovered over TLS' },
      );
      await device.publishAsync('tls-test/fan/state', 'ON');
      await eventually(
        async () => {
          const body = (await (await hub.api(`/api/things/${fan}/properties/switch.on`)).json()) as { value: unknown };
          return body.value === true;
        },
        { timeoutMs: 10_000, what: "the fan's state to arrive over TLS" },
      );
      const response = await hub.api(`/api/things/${fan}/actions/turn_off`, { method: 'POST', body: '{}' });
      assert.equal(response.status, 202);
      await eventually(() => commands.includes('OFF'), { timeoutMs: 10_000, what: 'the command to reach the fan' });
    } finally {
      await hub.stop();
      await device.publishAsync('homeassistant/switch/tls-test-fan/power/config', '', { qos: 1, retain: true });
      await device.endAsync();
      await broker.stop();
    }
  });
});
