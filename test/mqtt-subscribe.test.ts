import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { MqttConnection } from '../src/adapters/mqtt/connection.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * Two handlers asking for one filter while the broker has not answered the first request yet: the
 * second must wait for that answer, not be told at once that it is subscribed, and when the broker
 * refuses the filter, neither handler may stay on it. A broker of a few lines (mqtt-packet, MQTT.js's
 * own codec) holds each SUBACK until the test releases it, which no real broker lets a test do.
 */
describe('MqttConnection: handlers that share a filter still being subscribed', () => {
  let server: Server;
  let url: string;
  /** SUBSCRIBE packets as they arrive, each with the function that answers it. */
  const asked: Array<{ topics: string[]; answer: (granted: number) => void }> = [];
  const sockets = new Set<Socket>();
  const answered = new Set<Packet>();

  before(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      const send = (packet: Packet) => socket.write(mqttPacket.generate(packet, { protocolVersion: 4 }));
      parser.on('packet', (packet: Packet) => {
        if (packet.cmd === 'connect') send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
        else if (packet.cmd === 'pingreq') send({ cmd: 'pingresp' });
        else if (packet.cmd === 'subscribe')
          asked.push({
            topics: packet.subscriptions.map((s) => s.topic),
            answer: (granted) => {
              if (answered.has(packet)) return;
              answered.add(packet);
              send({ cmd: 'suback', messageId: packet.messageId, granted: [granted] });
            },
          });
      });
      socket.on('data', (chunk) => parser.parse(chunk));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    url = `mqtt://127.0.0.1:${address.port}`;
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('the second waits for the broker, and a refusal takes both off the filter', async () => {
    const link = new MqttConnection({ url, clientId: 'subscribe-test' });
    await link.connect();
    try {
      const settled: string[] = [];
      const outcome = (name: string, p: Promise<unknown>) =>
        p.then(
          () => settled.push(`${name} subscribed`),
          (error: Error) => settled.push(`${name} refused: ${error.message}`),
        );
      const first = outcome(
        'first',
        link.subscribe('home/+/state', () => {}),
      );
      const second = outcome(
        'second',
        link.subscribe('home/+/state', () => {}),
      );
      await eventually(() => asked.length === 1);
      // Time for a second promise that does not wait to settle.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(settled.join(', '), '', 'nothing is subscribed before the broker says so');
      assert.equal(asked.length, 1, 'the broker is asked once');

      asked[0].answer(0x80);
      await Promise.all([first, second]);
      assert.deepEqual(settled.map((s) => s.replace(/:.*/, '')).sort(), ['first refused', 'second refused']);

      // Neither stayed on the filter: the next handler for it asks the broker again, and is
      // subscribed when the broker grants it.
      const third = outcome(
        'third',
        link.subscribe('home/+/state', () => {}),
      );
      await eventually(() => asked.length === 2);
      assert.deepEqual(asked[1].topics, ['home/+/state']);
      asked[1].answer(0);
      await third;
      assert.equal(settled.at(-1), 'third subscribed');
    } finally {
      // A request left unanswered by a failed assertion would hold the close up.
      for (const request of asked) request.answer(0);
      await link.close();
    }
  });
});
