import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { topicMatches } from '../src/adapters/mqtt/connection.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { SimDevice } from '../src/sim/devices/device.ts';
import { SimulatedHome, type SimulatedHomeOptions } from '../src/sim/home.ts';
import { suiteBroker } from './helpers/embedded-broker.ts';
import { needService, services } from './helpers/services.ts';

interface Seen {
  topic: string;
  text: string;
  retain: boolean;
}

/** A plain MQTT client that records everything it sees, standing in for Triad or Home Assistant. */
class Observer {
  readonly seen: Seen[] = [];
  private probes = 0;

  private constructor(
    private readonly client: MqttClient,
    private readonly probeTopic: string,
  ) {
    client.on('message', (topic, payload, packet) => {
      this.seen.push({ topic, text: payload.toString('utf8'), retain: packet.retain });
    });
  }

  /**
   * Subscribes and, when `retained` names topics, waits until each one's retained message has
   * arrived: Aedes sends retained messages asynchronously, so a later mark in `seen` would
   * otherwise catch them as if they were live reports.
   */
  static async connect(url: string, filters: string[], retained: string[] = []): Promise<Observer> {
    const client = await mqtt.connectAsync(url, { clientId: `observer-${randomBytes(4).toString('hex')}` });
    const probeTopic = `observer-probe/${randomBytes(4).toString('hex')}`;
    const observer = new Observer(client, probeTopic);
    await client.subscribeAsync([...filters, probeTopic], { qos: 1 });
    for (const topic of retained) await observer.next((m) => m.topic === topic && m.retain, 0);
    return observer;
  }

  /**
   * Resolves to what a fresh subscriber finds retained under `filter`. A retained marker of our
   * own is found with them, and a short grace covers brokers that deliver them in any order.
   */
  static async retainedUnder(url: string, prefix: string): Promise<Seen[]> {
    const marker = `${prefix}/observer-marker`;
    const client = await mqtt.connectAsync(url, { clientId: `observer-${randomBytes(4).toString('hex')}` });
    await client.publishAsync(marker, 'here', { retain: true, qos: 1 });
    const observer = new Observer(client, marker);
    await client.subscribeAsync(`${prefix}/#`, { qos: 1 });
    await observer.next((m) => m.topic === marker, 0);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await client.publishAsync(marker, '', { retain: true, qos: 1 });
    await client.endAsync();
    return observer.seen.filter((m) => m.topic !== marker);
  }

  /** Resolves once a message published now has made the round trip through the broker. */
  async flush(): Promise<void> {
    const body = String(++this.probes);
    const from = this.seen.length;
    await this.client.publishAsync(this.probeTopic, body, { qos: 1 });
    await this.next((m) => m.topic === this.probeTopic && m.text === body, from);
  }

  on(filter: string, from = 0): Seen[] {
    return this.seen.slice(from).filter((m) => topicMatches(filter, m.topic));
  }

  async next(match: (m: Seen) => boolean, from: number, timeoutMs = 3000): Promise<Seen> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.seen.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('timed out waiting for an MQTT message');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** The next state report on `topic` after position `from`, parsed. */
  async state(topic: string, from: number): Promise<Record<string, unknown>> {
    const message = await this.next((m) => m.topic === topic && m.text !== '', from);
    return JSON.parse(message.text) as Record<string, unknown>;
  }

  /** Waits until every state report `device` has sent since `reportsThen` (its count at `from`) arrived. */
  async caughtUp(device: SimDevice, from: number, reportsThen: number): Promise<Record<string, unknown>[]> {
    const topic = device.baseTopic;
    const deadline = Date.now() + 3000;
    while (this.on(topic, from).length < device.reports - reportsThen) {
      if (Date.now() > deadline) throw new Error(`missing reports from ${device.name}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.on(topic, from).map((m) => JSON.parse(m.text) as Record<string, unknown>);
  }

  async send(topic: string, payload: string): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

/** Deterministic randomness, so the sensor's drift is the same on every run. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EXPECTED_CONFIGS = 9; // 2 lights, 2 switches, 1 lock, 3 sensor entities, 1 climate

describe('simulated home over an embedded broker', () => {
  const broker = suiteBroker();

  /** A home under its own topic namespace, plus an observer watching that namespace. */
  async function setUp(options: Partial<SimulatedHomeOptions> = {}) {
    const ns = `t${randomBytes(4).toString('hex')}`;
    const clock = new VirtualClock();
    const home = new SimulatedHome({
      brokerUrl: broker().url,
      clock,
      prefix: `${ns}/zigbee2mqtt`,
      discoveryPrefix: `${ns}/homeassistant`,
      commandDelayMs: 0,
      random: seeded(7),
      ...options,
    });
    await home.start();
    const observer = await Observer.connect(broker().url, [`${ns}/#`], home.retainedTopics());
    const z = (name: string) => `${ns}/zigbee2mqtt/${name}`;
    const cleanup = async () => {
      await observer.close();
      await home.remove();
    };
    return { ns, clock, home, observer, z, cleanup };
  }

  test('announces every entity with retained Zigbee2MQTT-style discovery configs', async () => {
    const { ns, observer, z, cleanup } = await setUp();
    try {
      const configs = observer.on(`${ns}/homeassistant/+/+/+/config`);
      assert.equal(configs.length, EXPECTED_CONFIGS);
      const uniqueIds = new Set<string>();
      for (const message of configs) {
        assert.equal(message.retain, true, `${message.topic} is retained`);
        const [, , component, ieee, object] = message.topic.split('/');
        assert.match(ieee, /^0x[0-9a-f]{16}$/);
        const config = JSON.parse(message.text);
        assert.equal(config.unique_id, `${ieee}_${object}_zigbee2mqtt`);
        uniqueIds.add(config.unique_id);
        assert.deepEqual(config.device.identifiers, [`zigbee2mqtt_${ieee}`]);
        assert.ok(config.device.name && config.device.manufacturer && config.device.model);
        assert.ok(config.device.suggested_area);
        assert.equal(typeof config.object_id, 'string');
        assert.deepEqual(config.availability[0], {
          topic: `${ns}/zigbee2mqtt/bridge/state`,
          value_template: '{{ value_json.state }}',
        });
        const stateTopic = config.state_topic ?? config.mode_state_topic;
        assert.equal(stateTopic, z(config.device.name));
        if (component !== 'sensor')
          assert.ok((config.command_topic ?? config.mode_command_topic).startsWith(`${stateTopic}/set`));
      }
      assert.equal(uniqueIds.size, EXPECTED_CONFIGS, 'unique ids are unique');

      const byName = (component: string, name: string, object = component) => {
        const found = configs
          .map((m) => ({ topic: m.topic, config: JSON.parse(m.text) }))
          .find(
            (c) =>
              c.topic.split('/')[2] === component && c.topic.split('/')[4] === object && c.config.device.name === name,
          );
        assert.ok(found, `${component} ${name}`);
        return found.config;
      };
      const hall = byName('light', 'Hall light');
      assert.equal(hall.schema, 'json');
      assert.equal(hall.brightness, true);
      assert.equal(hall.brightness_scale, 254);
      assert.equal(hall.color_temp, true);
      assert.equal(hall.command_topic, `${z('Hall light')}/set`);
      assert.equal(hall.device.suggested_area, 'Hall');
      const coffee = byName('switch', 'Coffee machine');
      assert.deepEqual(
        [coffee.payload_on, coffee.payload_off, coffee.value_template],
        ['ON', 'OFF', '{{ value_json.state }}'],
      );
      byName('switch', 'Living room fan');
      byName('light', 'Living room lamp');
      const door = byName('lock', 'Front door');
      assert.deepEqual(
        [door.payload_lock, door.payload_unlock, door.state_locked, door.state_unlocked],
        ['LOCK', 'UNLOCK', 'LOCK', 'UNLOCK'],
      );
      const temperature = byName('sensor', 'Living room sensor', 'temperature');
      assert.deepEqual(
        [temperature.device_class, temperature.unit_of_measurement, temperature.value_template],
        ['temperature', '°C', '{{ value_json.temperature }}'],
      );
      const humidity = byName('sensor', 'Living room sensor', 'humidity');
      assert.deepEqual([humidity.device_class, humidity.unit_of_measurement], ['humidity', '%']);
      const climate = byName('climate', 'Thermostat');
      assert.deepEqual(climate.modes, ['off', 'heat', 'cool', 'auto']);
      assert.equal(climate.mode_command_topic, `${z('Thermostat')}/set/system_mode`);
      assert.equal(climate.temperature_command_topic, `${z('Thermostat')}/set/occupied_heating_setpoint`);
      assert.equal(climate.current_temperature_template, '{{ value_json.local_temperature }}');
      assert.ok(climate.min_temp < climate.max_temp);

      const bridge = observer.on(`${ns}/zigbee2mqtt/bridge/state`);
      assert.deepEqual(
        bridge.map((m) => [m.retain, JSON.parse(m.text)]),
        [[true, { state: 'online' }]],
      );
      for (const name of ['Hall light', 'Front door', 'Living room sensor', 'Thermostat']) {
        const [state] = observer.on(z(name));
        assert.ok(state?.retain, `${name} state is retained`);
        JSON.parse(state.text);
      }
    } finally {
      await cleanup();
    }
  });

  test('a light obeys state, brightness and colour temperature commands and confirms them', async () => {
    const { observer, z, home, cleanup } = await setUp();
    const topic = z('Hall light');
    try {
      let from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"state":"ON"}');
      assert.equal((await observer.state(topic, from)).state, 'ON');

      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"state":"OFF"}');
      assert.equal((await observer.state(topic, from)).state, 'OFF');
      assert.equal(home.device('Hall light').state.state, 'OFF');

      // Brightness is on Zigbee's 0–254 scale; a brightness alone switches the light on.
      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"brightness":127}');
      assert.deepEqual(pick(await observer.state(topic, from), 'state', 'brightness'), {
        state: 'ON',
        brightness: 127,
      });

      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"state":"ON","brightness":254,"color_temp":300}');
      assert.deepEqual(pick(await observer.state(topic, from), 'brightness', 'color_temp'), {
        brightness: 254,
        color_temp: 300,
      });

      // Outside the bulb's own mired range the value is clamped, as Zigbee2MQTT does.
      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"color_temp":600}');
      assert.equal((await observer.state(topic, from)).color_temp, 454);

      // Brightness 0 switches off and keeps the level for the next switch-on.
      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"brightness":0}');
      assert.deepEqual(pick(await observer.state(topic, from), 'state', 'brightness'), {
        state: 'OFF',
        brightness: 254,
      });
      from = observer.seen.length;
      await observer.send(`${topic}/set`, 'TOGGLE');
      assert.deepEqual(pick(await observer.state(topic, from), 'state', 'brightness'), {
        state: 'ON',
        brightness: 254,
      });
    } finally {
      await cleanup();
    }
  });

  test('a switch takes a JSON or a bare ON/OFF/TOGGLE command', async () => {
    const { observer, z, cleanup } = await setUp();
    const topic = z('Coffee machine');
    try {
      let from = observer.seen.length;
      await observer.send(`${topic}/set`, 'ON');
      assert.equal((await observer.state(topic, from)).state, 'ON');
      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"state":"toggle"}');
      assert.equal((await observer.state(topic, from)).state, 'OFF');
      from = observer.seen.length;
      await observer.send(`${z('Living room fan')}/set/state`, 'ON');
      assert.equal((await observer.state(z('Living room fan'), from)).state, 'ON');
    } finally {
      await cleanup();
    }
  });

  test('the front door unlocks and locks', async () => {
    const { observer, z, home, cleanup } = await setUp();
    const topic = z('Front door');
    try {
      assert.equal(home.device('Front door').state.state, 'LOCK');
      let from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"state": "UNLOCK"}');
      assert.deepEqual(pick(await observer.state(topic, from), 'state', 'lock_state'), {
        state: 'UNLOCK',
        lock_state: 'unlocked',
      });
      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"state": "LOCK"}');
      assert.deepEqual(pick(await observer.state(topic, from), 'state', 'lock_state'), {
        state: 'LOCK',
        lock_state: 'locked',
      });
    } finally {
      await cleanup();
    }
  });

  test('the thermostat takes a set-point and a mode on its attribute topics and as JSON', async () => {
    const { observer, z, cleanup } = await setUp();
    const topic = z('Thermostat');
    try {
      let from = observer.seen.length;
      await observer.send(`${topic}/set/occupied_heating_setpoint`, '23.5');
      assert.equal((await observer.state(topic, from)).occupied_heating_setpoint, 23.5);

      from = observer.seen.length;
      await observer.send(`${topic}/set/system_mode`, 'cool');
      const cooling = await observer.state(topic, from);
      assert.equal(cooling.system_mode, 'cool');
      assert.equal(cooling.running_state, 'idle', 'a 19.5 °C room needs no cooling to 23.5 °C');

      from = observer.seen.length;
      await observer.send(`${topic}/set`, '{"system_mode":"heat","occupied_heating_setpoint":20.2}');
      const heating = await observer.state(topic, from);
      assert.deepEqual(pick(heating, 'system_mode', 'occupied_heating_setpoint', 'running_state'), {
        system_mode: 'heat',
        occupied_heating_setpoint: 20, // held on the unit's 0.5 °C grid
        running_state: 'heat',
      });
    } finally {
      await cleanup();
    }
  });

  test('malformed commands change nothing and report nothing', async () => {
    const { observer, z, home, cleanup } = await setUp();
    const light = z('Hall light');
    const thermostat = z('Thermostat');
    try {
      const lightBefore = home.device('Hall light').state;
      const thermostatBefore = home.device('Thermostat').state;
      const from = observer.seen.length;
      for (const bad of [
        'not json{',
        '{"state":"BANANA"}',
        '{"brightness":"high"}',
        '{"brightness":300}',
        '{"state":"ON","brightness":-1}',
        '{"color_temp":null}',
        '[1,2]',
        '{"transition":"slow","state":"ON"}',
        '{"unknown":1}',
        '',
      ]) {
        await observer.send(`${light}/set`, bad);
      }
      await observer.send(`${thermostat}/set/system_mode`, 'dry');
      await observer.send(`${thermostat}/set/occupied_heating_setpoint`, '99');
      await observer.send(`${thermostat}/set`, '{"system_mode":"heat","occupied_heating_setpoint":"warm"}');
      await observer.send(`${z('Front door')}/set`, '{"state":"OPEN"}');

      // A valid command after the bad ones: its report must be the first one, and show that
      // nothing else moved.
      await observer.send(`${light}/set`, '{"color_temp":260}');
      const report = await observer.state(light, from);
      assert.deepEqual(report, { ...lightBefore, color_temp: 260 });
      assert.equal(observer.on(light, from).length, 1);
      await observer.send(`${thermostat}/set`, '{}');
      await observer.send(`${thermostat}/set/system_mode`, 'auto');
      const thermostatReport = await observer.state(thermostat, from);
      assert.deepEqual(
        { ...thermostatReport, running_state: thermostatBefore.running_state },
        { ...thermostatBefore, system_mode: 'auto' },
      );
      assert.equal(home.device('Front door').state.state, 'LOCK');
      assert.equal(observer.on(z('Front door'), from).length, 0);
    } finally {
      await cleanup();
    }
  });

  test('with a command delay the report waits for the clock', async () => {
    const { observer, z, clock, home, cleanup } = await setUp({ commandDelayMs: 50 });
    const topic = z('Coffee machine');
    try {
      const idleTimers = clock.pending;
      const from = observer.seen.length;
      await observer.send(`${topic}/set`, 'ON');
      const deadline = Date.now() + 3000;
      while (clock.pending === idleTimers) {
        assert.ok(Date.now() < deadline, 'the device never received the command');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await clock.advance(49);
      assert.equal(home.device('Coffee machine').state.state, 'OFF');
      await observer.flush();
      assert.equal(observer.on(topic, from).length, 0, 'no report before the delay');
      await clock.advance(1);
      assert.equal((await observer.state(topic, from)).state, 'ON');
    } finally {
      await cleanup();
    }
  });

  test('the living room sensor drifts slowly as time passes', async () => {
    const { observer, z, clock, home, cleanup } = await setUp();
    const topic = z('Living room sensor');
    try {
      const sensor = home.device('Living room sensor');
      const start = sensor.state;
      const from = observer.seen.length;
      const reportsThen = sensor.reports;
      await clock.advance(60_000);
      const first = await observer.state(topic, from);
      assert.notEqual(first.temperature, start.temperature);

      await clock.advance(60 * 60_000);
      const readings = [start, ...(await observer.caughtUp(sensor, from, reportsThen))] as Array<
        Record<string, number>
      >;
      // Reports come every 30–60 s: between 60 and 122 in the 61 minutes.
      assert.ok(readings.length > 60 && readings.length <= 123, `${readings.length} reports`);
      for (let i = 1; i < readings.length; i++) {
        const step = Math.abs(readings[i].temperature - readings[i - 1].temperature);
        assert.ok(step > 0 && step <= 0.31, `temperature step ${step}`);
        assert.ok(Math.abs(readings[i].humidity - readings[i - 1].humidity) <= 1.21);
      }
      const temperatures = readings.map((r) => r.temperature as number);
      assert.ok(Math.min(...temperatures) >= 18 && Math.max(...temperatures) <= 24, 'stays plausible for a room');

      const injected = observer.seen.length;
      home.setSensor('Living room sensor', { temperature: 16.2 });
      assert.equal((await observer.state(topic, injected)).temperature, 16.2);
      assert.throws(() => home.setSensor('Living room sensor', { temperature: Number.NaN }), RangeError);
      assert.throws(() => home.setSensor('Hall light', { temperature: 20 }), /not a temperature sensor/);
    } finally {
      await cleanup();
    }
  });

  test('a heating thermostat brings the room up to the set-point over minutes', async () => {
    const { observer, clock, home, cleanup } = await setUp();
    const thermostat = home.device('Thermostat');
    try {
      const from = observer.seen.length;
      const reportsThen = thermostat.reports;
      await clock.advance(5 * 60_000);
      type Report = { local_temperature: number; running_state: string };
      const early = (await observer.caughtUp(thermostat, from, reportsThen)) as unknown as Report[];
      const warmed = early.at(-1);
      assert.ok(warmed && warmed.local_temperature > 19.5 && warmed.local_temperature < 21, 'warmer, not there yet');
      assert.equal(warmed.running_state, 'heat');

      await clock.advance(10 * 60_000);
      const reports = (await observer.caughtUp(thermostat, from, reportsThen)) as unknown as Report[];
      const reached = reports.findIndex((r) => r.running_state === 'idle');
      assert.ok(reached > 0, 'stops heating within 15 minutes');
      assert.ok(reports[reached].local_temperature >= 21, 'stops at the set-point');
      const climb = reports.slice(0, reached + 1).map((r) => r.local_temperature);
      assert.deepEqual(
        climb,
        [...climb].sort((x, y) => x - y),
        'rises steadily while heating',
      );
      // From then on the hysteresis holds the room close to the set-point.
      for (const r of reports.slice(reached)) {
        assert.ok(Math.abs(r.local_temperature - 21) <= 0.5, `${r.local_temperature} °C`);
      }
    } finally {
      await cleanup();
    }
  });

  test('re-announces discovery when Home Assistant comes online, as Zigbee2MQTT does', async () => {
    const { ns, observer, cleanup } = await setUp();
    try {
      const from = observer.seen.length;
      await observer.send(`${ns}/homeassistant/status`, 'online');
      await observer.next(
        () => observer.on(`${ns}/homeassistant/+/+/+/config`, from).length === EXPECTED_CONFIGS,
        from,
      );
    } finally {
      await cleanup();
    }
  });

  test('stopping marks devices offline but leaves discovery; remove() clears it', async () => {
    const { ns, observer, z, home, cleanup } = await setUp();
    try {
      const from = observer.seen.length;
      await home.stop();
      assert.deepEqual(await observer.state(`${ns}/zigbee2mqtt/bridge/state`, from), { state: 'offline' });
      assert.deepEqual(await observer.state(`${z('Hall light')}/availability`, from), { state: 'offline' });

      const discovery = home.retainedTopics().filter((t) => t.endsWith('/config'));
      assert.equal(discovery.length, EXPECTED_CONFIGS);
      const late = await Observer.connect(broker().url, [`${ns}/#`], discovery);
      await late.close();

      await home.remove();
      assert.deepEqual(await Observer.retainedUnder(broker().url, ns), [], 'nothing retained after remove()');
    } finally {
      await cleanup();
    }
  });
});

test('discovery is retained on the machine’s Mosquitto', { skip: await needService('mqtt') }, async () => {
  const ns = `triadtest-${randomBytes(4).toString('hex')}`;
  const home = new SimulatedHome({
    brokerUrl: services.mqtt,
    clock: new VirtualClock(),
    prefix: `${ns}/zigbee2mqtt`,
    discoveryPrefix: `${ns}/homeassistant`,
    commandDelayMs: 0,
  });
  await home.start();
  try {
    const observer = await Observer.connect(services.mqtt, [`${ns}/#`], home.retainedTopics());
    const configs = observer.on(`${ns}/homeassistant/+/+/+/config`);
    await observer.close();
    assert.equal(configs.length, EXPECTED_CONFIGS);
    assert.ok(configs.every((m) => m.retain));
    for (const m of configs) assert.equal(typeof JSON.parse(m.text).unique_id, 'string');
  } finally {
    await home.remove();
  }
  assert.deepEqual(await Observer.retainedUnder(services.mqtt, ns), [], 'retained messages cleaned up');
});

function pick(object: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, object[k]]));
}
