import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { VirtualClock } from '../src/core/clock.ts';
import { SimulatedHome } from '../src/sim/home.ts';
import { suiteBroker } from './helpers/embedded-broker.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * A home device answers a command after a short delay, as a real one takes a moment to act. A
 * demo stopped within that delay saved the device without the command it had received: the front
 * door unlocked through the app came back locked. Real devices on a real embedded broker, the
 * command sent by a plain MQTT client, as the hub's MQTT adapter sends it.
 */

describe('a simulated home stopped while a device is acting on a command', () => {
  const broker = suiteBroker();

  it('carries the command out before it stops, so the state saved and published has it', async () => {
    const ns = `t${randomBytes(4).toString('hex')}`;
    const options = {
      brokerUrl: broker().url,
      prefix: `${ns}/zigbee2mqtt`,
      discoveryPrefix: `${ns}/homeassistant`,
      commandDelayMs: 50,
    };
    const clock = new VirtualClock();
    const home = new SimulatedHome({ ...options, clock });
    await home.start();
    const door = home.device('Front door');
    const client = await mqtt.connectAsync(broker().url, { clientId: `sender-${ns}` });
    try {
      assert.equal(door.state.state, 'LOCK', 'the door starts locked');
      const waiting = clock.pending;
      await client.publishAsync(`${door.baseTopic}/set`, JSON.stringify({ state: 'UNLOCK' }), { qos: 1 });
      // The device has the command once its answer waits on the clock, which does not move here.
      await eventually(() => clock.pending === waiting + 1, { what: 'the door to receive the command' });
      assert.equal(door.state.state, 'LOCK', 'still acting on it');

      await home.stop();
      const saved = home.saved();
      assert.equal(door.state.state, 'UNLOCK');
      assert.equal((saved[door.identity.ieee] as { state?: string }).state, 'UNLOCK', 'saved as unlocked');
      assert.equal(clock.pending, 0, 'nothing of the stopped home is left to run later');

      // The state it left retained on the broker says so too: the hub reads the door as unlocked.
      const retained = await new Promise<string>((resolve) => {
        client.on('message', (topic, payload) => topic === door.baseTopic && resolve(payload.toString('utf8')));
        void client.subscribeAsync(door.baseTopic, { qos: 1 });
      });
      assert.equal(JSON.parse(retained).state, 'UNLOCK');

      // And the home started again from what was saved has the door as it was left.
      const again = new SimulatedHome({ ...options, clock: new VirtualClock() });
      again.restore(saved);
      assert.equal(again.device('Front door').state.state, 'UNLOCK');
    } finally {
      await client.endAsync();
      await home.remove();
    }
  });
});
