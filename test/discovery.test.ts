import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { AdapterContext } from '../src/adapters/adapter.ts';
import { EmbeddedBroker } from '../src/adapters/mqtt/broker.ts';
import { MqttConnection } from '../src/adapters/mqtt/connection.ts';
import { HomeAssistantDiscovery } from '../src/adapters/mqtt/discovery.ts';
import { parseRule } from '../src/automation/parse/rule.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Command, Report } from '../src/core/events.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { validate } from '../src/model/schema.ts';
import { type Thing, thingCapabilities } from '../src/model/thing.ts';
import { needService, services } from './helpers/services.ts';

const HOUSEHOLD = 'home';

/**
 * What the hub does for an adapter, reduced to what these tests observe: things by id, values
 * that pass the property's schema (invalid ones are refused, as the hub refuses them), and
 * availability and log lines in the order they happened.
 */
class RecordingHub {
  readonly things = new Map<string, Thing>();
  readonly upserts: Thing[] = [];
  readonly removals: string[] = [];
  readonly accepted: Report[] = [];
  readonly refused: Array<{ report: Report; reason: string }> = [];
  readonly availability: Array<{ thing: string; online: boolean }> = [];
  readonly lines: LogLine[] = [];
  private readonly values = new Map<string, unknown>();
  /** Saves started so far, and what each waits for before it completes. */
  saving = 0;
  saveGate: Promise<void> = Promise.resolve();
  /** Set, saves fail with it, as they do while the store is down. */
  saveError: Error | undefined;
  /** Set, removals fail with it. */
  removeError: Error | undefined;

  readonly ctx: AdapterContext = {
    clock: new VirtualClock(),
    bus: new LocalBus(),
    log: createLogger({ level: 'debug', sink: (line) => this.lines.push(line) }),
    upsertThing: async (thing) => {
      // A test can hold the save, as a busy store does, to see what arrives in the meantime.
      this.saving++;
      await this.saveGate;
      if (this.saveError) throw this.saveError;
      const saved: Thing = { ...structuredClone(thing), createdAt: 'now', updatedAt: 'now' };
      this.things.set(saved.id, saved);
      this.upserts.push(saved);
      return saved;
    },
    removeThing: async (_household, id) => {
      if (this.removeError) throw this.removeError;
      this.things.delete(id);
      this.removals.push(id);
    },
    getThing: (_household, id) => this.things.get(id),
    getValue: (_household, thing, property) => this.values.get(`${thing} ${property}`),
    ingest: (reports) => {
      for (const report of reports) {
        const spec = this.things.get(report.thing)?.properties[report.property];
        const reason = spec ? validate(spec.schema, report.value, report.property) : 'unknown thing or property';
        if (reason) {
          this.refused.push({ report, reason });
          continue;
        }
        this.values.set(`${report.thing} ${report.property}`, report.value);
        this.accepted.push(report);
      }
    },
    setAvailability: (_household, thing, online) => {
      this.availability.push({ thing, online });
    },
  };

  value(thing: string, property: string): unknown {
    return this.values.get(`${thing} ${property}`);
  }

  warnings(): string[] {
    return this.lines.filter((line) => line.level === 'warn').map((line) => line.message);
  }
}

async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = check();
    if (result !== undefined && result !== false) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A field of a thing's meta, asserted present. */
function metaOf<T>(thing: Thing, key: string): T {
  const value = thing.meta?.[key];
  assert.ok(value !== undefined, `thing ${thing.id} has meta.${key}`);
  return value as T;
}

function command(thing: string, action: string, input: Record<string, unknown> = {}): Command {
  return {
    id: `cmd_${randomBytes(4).toString('hex')}`,
    householdId: HOUSEHOLD,
    thing,
    action,
    input,
    status: 'pending',
    expect: null,
    issuedBy: 'test',
    createdAt: 0,
    updatedAt: 0,
    expiresAt: 0,
  };
}

/** A running adapter, the hub it reports to and a plain MQTT client acting as the device. */
interface Rig {
  hub: RecordingHub;
  adapter: HomeAssistantDiscovery;
  device: MqttClient;
  prefix: string;
  /** Publishes like a device: JSON-encodes objects, retains configs. */
  publish(topic: string, payload: unknown, retain?: boolean): Promise<void>;
  /** Waits for a thing, and for the adapter to be listening to its state topics. */
  thing(id: string): Promise<Thing>;
  /** Collects what arrives on a topic (commands the adapter sends to the device). */
  listen(topic: string): Promise<string[]>;
  close(): Promise<void>;
}

let broker: EmbeddedBroker;
let rigCount = 0;

before(async () => {
  broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1' });
  await broker.start();
});

after(async () => {
  await broker.stop();
});

/** Each rig uses its own discovery prefix, so retained configs of one test never reach another. */
async function startRig(url = broker.url, prefix = `ha${++rigCount}`): Promise<Rig> {
  const hub = new RecordingHub();
  const link = new MqttConnection({ url, clientId: `triad-test-${randomBytes(4).toString('hex')}` });
  await link.connect();
  const adapter = new HomeAssistantDiscovery({ link, householdId: HOUSEHOLD, prefix });
  await adapter.start(hub.ctx);
  const device = await mqtt.connectAsync(url, { clientId: `device-${randomBytes(4).toString('hex')}` });
  const heard = new Map<string, string[]>();
  device.on('message', (topic, payload) => heard.get(topic)?.push(payload.toString('utf8')));
  return {
    hub,
    adapter,
    device,
    prefix,
    async publish(topic, payload, retain = false) {
      const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
      await device.publishAsync(topic, body, { retain, qos: 1 });
    },
    async listen(topic) {
      const messages: string[] = [];
      heard.set(topic, messages);
      await device.subscribeAsync(topic, { qos: 1 });
      return messages;
    },
    async thing(id) {
      await waitFor(`thing ${id}`, () => hub.things.get(id));
      // The thing is saved before its state topics are subscribed; states sent now must be heard.
      await adapter.idle();
      return hub.things.get(id) as Thing;
    },
    async close() {
      await adapter.stop();
      await link.close();
      await device.endAsync();
    },
  };
}

/** A Zigbee2MQTT bulb as Zigbee2MQTT announces it: a JSON-schema light plus a linkquality sensor. */
function z2mBulb(prefix: string) {
  const device = {
    identifiers: ['zigbee2mqtt_0x00158d0001a2b3c4'],
    name: 'Hall light',
    manufacturer: 'IKEA',
    model: 'LED1545G12',
    sw_version: '2.3.087',
    suggested_area: 'Hall',
    via_device: 'zigbee2mqtt_bridge_0x00124b0022d2d320',
  };
  const availability = [{ topic: 'zigbee2mqtt/bridge/state', value_template: '{{ value_json.state }}' }];
  return {
    light: {
      topic: `${prefix}/light/0x00158d0001a2b3c4/light/config`,
      config: {
        availability,
        brightness: true,
        brightness_scale: 254,
        color_mode: true,
        supported_color_modes: ['color_temp'],
        max_mireds: 454,
        min_mireds: 250,
        command_topic: 'zigbee2mqtt/Hall light/set',
        device,
        json_attributes_topic: 'zigbee2mqtt/Hall light',
        name: null,
        object_id: 'hall_light',
        origin: { name: 'Zigbee2MQTT', sw: '1.40.0', url: 'https://www.zigbee2mqtt.io' },
        schema: 'json',
        state_topic: 'zigbee2mqtt/Hall light',
        unique_id: '0x00158d0001a2b3c4_light_zigbee2mqtt',
      },
    },
    linkquality: {
      topic: `${prefix}/sensor/0x00158d0001a2b3c4/linkquality/config`,
      config: {
        availability,
        device,
        enabled_by_default: false,
        entity_category: 'diagnostic',
        icon: 'mdi:signal',
        name: 'Linkquality',
        object_id: 'hall_light_linkquality',
        state_class: 'measurement',
        state_topic: 'zigbee2mqtt/Hall light',
        unique_id: '0x00158d0001a2b3c4_linkquality_zigbee2mqtt',
        unit_of_measurement: 'lqi',
        value_template: '{{ value_json.linkquality }}',
      },
    },
  };
}

describe('Home Assistant discovery over a real broker', () => {
  test('a published command is handed to the socket before the publishing code goes on', async () => {
    const link = new MqttConnection({ url: broker.url, clientId: `triad-test-${randomBytes(4).toString('hex')}` });
    await link.connect();
    const listener = await mqtt.connectAsync(broker.url, { clientId: `listener-${randomBytes(4).toString('hex')}` });
    const heard = new Promise<string>((resolve) => listener.once('message', (_t, payload) => resolve(String(payload))));
    await listener.subscribeAsync('triad-test/now/set', { qos: 0 });
    // The socket is MQTT.js's own: reached into only to see whether the bytes are still held back.
    const socket = (link as unknown as { client: { stream: { writableLength: number } } }).client.stream;
    const sending = link.publish('triad-test/now/set', 'ON');
    // Synchronously after publish: nothing held back for a later tick (the bookkeeping that follows
    // a rule's command must not delay it).
    assert.equal(socket.writableLength, 0);
    await sending;
    assert.equal(await heard, 'ON');
    await listener.endAsync();
    await link.close();
  });

  test('publishes that find the socket full share one wait for it to drain, and all arrive in order', async () => {
    const link = new MqttConnection({ url: broker.url, clientId: `triad-test-${randomBytes(4).toString('hex')}` });
    await link.connect();
    const listener = await mqtt.connectAsync(broker.url, { clientId: `listener-${randomBytes(4).toString('hex')}` });
    const count = 20_000;
    const filler = 'x'.repeat(1024);
    let received = 0;
    let outOfOrder = 0;
    const all = new Promise<void>((resolve) =>
      listener.on('message', (_t, payload) => {
        if (Number(String(payload).slice(0, 8)) !== received) outOfOrder++;
        if (++received === count) resolve();
      }),
    );
    await listener.subscribeAsync('triad-test/flood', { qos: 0 });
    const socket = (link as unknown as { client: { stream: import('node:net').Socket } }).client.stream;
    // The broker runs in this process, so it reads nothing until this loop ends: 20 MB fill the socket.
    const sends: Promise<void>[] = [];
    for (let i = 0; i < count; i++) sends.push(link.publish('triad-test/flood', String(i).padStart(8, '0') + filler));
    assert.ok(socket.writableNeedDrain, 'the flood filled the socket, so the waiting path is what is tested');
    // MQTT.js added a listener per publish here (thousands, each later removed with a scan of all).
    assert.ok(socket.listenerCount('drain') <= 2, `${socket.listenerCount('drain')} drain listeners`);
    await Promise.all(sends);
    await all;
    assert.equal(outOfOrder, 0);
    assert.equal(socket.listenerCount('drain'), 0);

    // A connection that closes under a full buffer fails the publishes still waiting, rather than
    // leaving them (and the commands that sent them) waiting for ever.
    const stuck: Promise<void>[] = [];
    for (let i = 0; i < count; i++) stuck.push(link.publish('triad-test/flood', filler));
    assert.ok(socket.writableNeedDrain);
    socket.destroy();
    const settled = await Promise.allSettled(stuck);
    const last = settled[count - 1];
    assert.equal(last.status, 'rejected');
    assert.match(String((last as PromiseRejectedResult).reason), /closed before the message was written/);
    await listener.endAsync();
    await link.close();
  });

  test('a Zigbee2MQTT bulb becomes one thing with its state, availability and commands', async () => {
    const rig = await startRig();
    try {
      const bulb = z2mBulb(rig.prefix);
      await rig.publish(bulb.light.topic, bulb.light.config, true);
      await rig.publish(bulb.linkquality.topic, bulb.linkquality.config, true);
      // Zigbee2MQTT keeps its bridge state retained.
      await rig.publish('zigbee2mqtt/bridge/state', { state: 'online' }, true);
      const thing = await waitFor('both entities on one thing', () => {
        const t = rig.hub.things.get('hall-light');
        return t && Object.keys(t.properties).length === 4 ? t : undefined;
      });
      await rig.adapter.idle();
      assert.equal(thing.kind, 'device');
      assert.equal(thing.name, 'Hall light');
      assert.equal(thing.room, 'Hall');
      assert.equal(thing.adapter, 'mqtt');
      assert.deepEqual(Object.keys(thing.properties).sort(), [
        'light.brightness',
        'light.color_temp',
        'light.on',
        'sensor.linkquality',
      ]);
      assert.deepEqual(thing.properties['sensor.linkquality'].schema, { type: 'number', unit: 'lqi' });
      assert.deepEqual(Object.keys(thing.actions).sort(), ['toggle', 'turn_off', 'turn_on']);
      const entities = metaOf<Record<string, { config: Record<string, unknown> }>>(thing, 'entities');
      assert.equal(entities['light/0x00158d0001a2b3c4/light'].config.command_topic, 'zigbee2mqtt/Hall light/set');
      assert.deepEqual(thing.meta?.problems, []);
      assert.equal(JSON.stringify(JSON.parse(JSON.stringify(thing.meta))), JSON.stringify(thing.meta));

      await rig.publish('zigbee2mqtt/Hall light', { state: 'ON', brightness: 254, color_temp: 370, linkquality: 120 });
      await waitFor('the state', () => rig.hub.value('hall-light', 'sensor.linkquality') === 120);
      assert.equal(rig.hub.value('hall-light', 'light.on'), true);
      assert.equal(rig.hub.value('hall-light', 'light.brightness'), 100);
      assert.equal(rig.hub.value('hall-light', 'light.color_temp'), 2703, '370 mireds is 2703 K');
      assert.ok(rig.hub.accepted.every((r) => r.source === 'mqtt' && r.ts === rig.hub.ctx.clock.now()));
      await waitFor('availability', () => rig.hub.availability.length > 0);
      assert.deepEqual(rig.hub.availability, [{ thing: 'hall-light', online: true }]);

      const sent = await rig.listen('zigbee2mqtt/Hall light/set');
      await rig.adapter.execute(command('hall-light', 'turn_off'), thing);
      await rig.adapter.execute(command('hall-light', 'turn_on', { brightness: 50, color_temp: 4000 }), thing);
      await rig.adapter.execute(command('hall-light', 'light.toggle'), thing);
      await waitFor('three commands', () => sent.length === 3);
      assert.deepEqual(JSON.parse(sent[0]), { state: 'OFF' });
      assert.deepEqual(JSON.parse(sent[1]), { state: 'ON', brightness: 127, color_temp: 250 });
      assert.deepEqual(JSON.parse(sent[2]), { state: 'OFF' }, 'toggle turns off a light that is on');

      await rig.publish('zigbee2mqtt/bridge/state', { state: 'offline' }, true);
      await waitFor('offline', () => rig.hub.availability.length === 2);
      assert.deepEqual(rig.hub.availability[1], { thing: 'hall-light', online: false });
      await rig.publish('zigbee2mqtt/bridge/state', '', true);
    } finally {
      await rig.close();
    }
  });

  test('a Tasmota switch with abbreviated keys and a ~ base topic', async () => {
    const rig = await startRig();
    try {
      await rig.publish(
        `${rig.prefix}/switch/1A2B3C_RL_1/config`,
        {
          name: 'Kitchen plug',
          '~': 'tasmota_1A2B3C/',
          cmd_t: '~cmnd/POWER',
          stat_t: '~stat/RESULT',
          val_tpl: '{{value_json.POWER}}',
          pl_off: 'OFF',
          pl_on: 'ON',
          avty_t: '~tele/LWT',
          pl_avail: 'Online',
          pl_not_avail: 'Offline',
          uniq_id: '1A2B3C_RL_1',
          dev: {
            ids: ['1A2B3C'],
            name: 'Kitchen plug',
            mdl: 'Sonoff Basic',
            sw: '13.2.0',
            mf: 'Tasmota',
            sa: 'Kitchen',
          },
        },
        true,
      );
      const thing = await rig.thing('kitchen-plug');
      assert.equal(thing.room, 'Kitchen');
      assert.deepEqual(thing.meta?.device, {
        identifiers: ['1A2B3C'],
        name: 'Kitchen plug',
        manufacturer: 'Tasmota',
        model: 'Sonoff Basic',
        sw_version: '13.2.0',
        suggested_area: 'Kitchen',
      });
      const entity = metaOf<Record<string, { config: Record<string, unknown> }>>(thing, 'entities')[
        'switch/1A2B3C_RL_1'
      ];
      assert.equal(entity.config.command_topic, 'tasmota_1A2B3C/cmnd/POWER');
      assert.equal(entity.config.state_topic, 'tasmota_1A2B3C/stat/RESULT');

      await rig.publish('tasmota_1A2B3C/tele/LWT', 'Online', true);
      await rig.publish('tasmota_1A2B3C/stat/RESULT', { POWER: 'ON' });
      await waitFor('switch on', () => rig.hub.value('kitchen-plug', 'switch.on') === true);
      await waitFor('online', () => rig.hub.availability.length === 1);
      assert.deepEqual(rig.hub.availability, [{ thing: 'kitchen-plug', online: true }]);

      const sent = await rig.listen('tasmota_1A2B3C/cmnd/POWER');
      await rig.adapter.execute(command('kitchen-plug', 'toggle'), thing);
      await rig.adapter.execute(command('kitchen-plug', 'turn_on'), thing);
      await waitFor('two commands', () => sent.length === 2);
      assert.deepEqual(sent, ['OFF', 'ON']);
      await rig.publish('tasmota_1A2B3C/tele/LWT', '', true);
    } finally {
      await rig.close();
    }
  });

  test('ESPHome sensors read one JSON state topic through their templates, in vocabulary units', async () => {
    const rig = await startRig();
    try {
      const device = { identifiers: ['esp-office'], name: 'Office climate', manufacturer: 'espressif' };
      // The state is retained before the sensors are announced: every sensor must still see it.
      await rig.publish('esphome/office/state', { temperature: 71.6, humidity: 40.5, status: 'ok' }, true);
      const sensor = (object: string, extra: Record<string, unknown>) =>
        rig.publish(
          `${rig.prefix}/sensor/office/${object}/config`,
          { name: object, state_topic: 'esphome/office/state', device, ...extra },
          true,
        );
      await sensor('temperature', {
        device_class: 'temperature',
        unit_of_measurement: '°F',
        value_template: '{{ value_json.temperature }}',
      });
      await sensor('humidity', {
        device_class: 'humidity',
        unit_of_measurement: '%',
        value_template: '{{ value_json.humidity | round(0) }}',
      });
      await sensor('status', { value_template: '{{ value_json.status | upper }}' });
      await waitFor('all three values', () => rig.hub.value('office-climate', 'sensor.status') === 'OK');
      await waitFor('temperature', () => rig.hub.value('office-climate', 'sensor.temperature') !== undefined);
      await waitFor('humidity', () => rig.hub.value('office-climate', 'sensor.humidity') !== undefined);
      assert.equal(rig.hub.value('office-climate', 'sensor.temperature'), 22, '71.6 °F is 22 °C');
      // round(0) as Home Assistant does it (Python's round, ties to even): 40.5 is 40, not 41.
      assert.equal(rig.hub.value('office-climate', 'sensor.humidity'), 40);
      const thing = rig.hub.things.get('office-climate');
      assert.deepEqual(thing?.properties['sensor.status'].schema, { type: 'string', maxLength: 255 });
      assert.deepEqual(thing?.actions, {});
      await rig.publish('esphome/office/state', '', true);
    } finally {
      await rig.close();
    }
  });

  test("a battery in % is the vocabulary's battery.level, found by the battery capability", async () => {
    const rig = await startRig();
    try {
      const device = { identifiers: ['z2m_door_sensor'], name: 'Door sensor' };
      const sensor = (object: string, extra: Record<string, unknown>) =>
        rig.publish(
          `${rig.prefix}/sensor/door_sensor/${object}/config`,
          {
            name: object,
            state_topic: 'zigbee2mqtt/Door sensor',
            value_template: `{{ value_json.${object} }}`,
            device,
            ...extra,
          },
          true,
        );
      await sensor('battery', { device_class: 'battery', unit_of_measurement: '%', entity_category: 'diagnostic' });
      // A battery's voltage is not its level: it keeps its own name and unit.
      await sensor('voltage', { device_class: 'voltage', unit_of_measurement: 'mV' });
      await waitFor(
        'both sensors',
        () => Object.keys(rig.hub.things.get('door-sensor')?.properties ?? {}).length === 2,
      );
      await rig.adapter.idle();
      await rig.publish('zigbee2mqtt/Door sensor', { battery: 87, voltage: 2950 });
      await waitFor('the level', () => rig.hub.value('door-sensor', 'battery.level') === 87);
      const thing = rig.hub.things.get('door-sensor') as Thing;
      assert.deepEqual(Object.keys(thing.properties).sort(), ['battery.level', 'sensor.voltage']);
      assert.deepEqual(thing.properties['battery.level'].schema, {
        type: 'number',
        minimum: 0,
        maximum: 100,
        unit: '%',
      });
      assert.ok(thingCapabilities(thing).includes('battery'), '?capability=battery finds it');
      assert.equal(rig.hub.value('door-sensor', 'sensor.voltage'), 2950);

      // A "battery" sensor without % (a raw reading) is not taken for a level.
      await rig.publish(`${rig.prefix}/sensor/door_sensor/battery/config`, '', true);
      await sensor('battery_raw', { device_class: 'battery', state_class: 'measurement' });
      await waitFor('the raw battery', () => rig.hub.things.get('door-sensor')?.properties['sensor.battery_raw']);
      assert.equal(rig.hub.things.get('door-sensor')?.properties['battery.level'], undefined);
    } finally {
      await rig.close();
    }
  });

  test('a device-based config with shared options and a cmps map', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/device/kitchen-multi/config`;
      const base = {
        dev: { ids: 'kitchen-multi-01', name: 'Kitchen multi', mf: 'Shelly' },
        o: { name: 'shelly-fw', sw: '1.4.0' },
        '~': 'shelly/kitchen/',
        stat_t: '~status',
      };
      await rig.publish(
        topic,
        {
          ...base,
          cmps: {
            temp: { p: 'sensor', dev_cla: 'temperature', unit_of_meas: '°C', val_tpl: '{{ value_json.temp }}' },
            motion: { p: 'binary_sensor', dev_cla: 'motion', val_tpl: '{{ value_json.motion }}' },
            door: {
              p: 'binary_sensor',
              dev_cla: 'door',
              pl_on: true,
              pl_off: false,
              val_tpl: '{{ value_json.open }}',
            },
            relay: { p: 'switch', cmd_t: '~relay/set', val_tpl: '{{ value_json.relay }}' },
          },
        },
        true,
      );
      const thing = await rig.thing('kitchen-multi');
      assert.deepEqual(Object.keys(thing.properties).sort(), [
        'sensor.contact',
        'sensor.motion',
        'sensor.temperature',
        'switch.on',
      ]);
      await rig.publish('shelly/kitchen/status', { temp: 19.5, motion: 'ON', open: true, relay: 'OFF' });
      await waitFor('relay', () => rig.hub.value('kitchen-multi', 'switch.on') === false);
      assert.equal(rig.hub.value('kitchen-multi', 'sensor.temperature'), 19.5);
      assert.equal(rig.hub.value('kitchen-multi', 'sensor.motion'), true);
      assert.equal(rig.hub.value('kitchen-multi', 'sensor.contact'), false, 'an open door has no contact');

      const sent = await rig.listen('shelly/kitchen/relay/set');
      await rig.adapter.execute(command('kitchen-multi', 'turn_on'), thing);
      await waitFor('relay command', () => sent.length === 1);
      assert.deepEqual(sent, ['ON']);

      // A component sent with only its platform is removed; the rest of the device stays.
      const upserts = rig.hub.upserts.length;
      await rig.publish(
        topic,
        {
          ...base,
          cmps: {
            temp: { p: 'sensor', dev_cla: 'temperature', val_tpl: '{{ value_json.temp }}' },
            relay: { p: 'switch' },
          },
        },
        true,
      );
      const updated = await waitFor('the update', () => rig.hub.upserts[upserts]);
      assert.deepEqual(Object.keys(updated.properties), ['sensor.temperature']);
      await rig.publish(topic, '', true);
      await waitFor('removal', () => rig.hub.removals.includes('kitchen-multi'));
    } finally {
      await rig.close();
    }
  });

  test('components with their own ~ each expand the device availability they share, not each other’s', async () => {
    const rig = await startRig();
    try {
      // Two boards behind one device config: each component has its own base topic, and the
      // device's availability list (written with ~) is shared by both.
      await rig.publish(
        `${rig.prefix}/device/greenhouse/config`,
        {
          dev: { ids: 'greenhouse-01', name: 'Greenhouse' },
          avty: [{ t: '~/status' }],
          avty_mode: 'all',
          cmps: {
            vent: { p: 'switch', '~': 'greenhouse/vent', cmd_t: '~/set', stat_t: '~/state' },
            air: { p: 'sensor', '~': 'greenhouse/air', dev_cla: 'temperature', stat_t: '~/temp' },
          },
        },
        true,
      );
      await rig.thing('greenhouse');
      const last = () => rig.hub.availability.filter((a) => a.thing === 'greenhouse').at(-1)?.online;
      await rig.publish('greenhouse/vent/status', 'online');
      await waitFor('online', () => last() === true);
      // Only the air board's own topic says it is gone: heard only if its ~ was used for it.
      await rig.publish('greenhouse/air/status', 'offline');
      await waitFor('offline from the second component’s own availability topic', () => last() === false);
      await rig.publish('greenhouse/air/status', 'online');
      await waitFor('online again', () => last() === true);
    } finally {
      await rig.close();
    }
  });

  test('an empty retained config removes the thing, and an updated config replaces it', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/switch/porch/config`;
      await rig.publish(topic, { name: 'Porch light', command_topic: 'porch/set', state_topic: 'porch/state' }, true);
      const first = await rig.thing('porch');
      assert.deepEqual(first.meta?.device, undefined);

      await rig.publish(
        topic,
        {
          name: 'Porch light',
          command_topic: 'porch/cmd',
          payload_on: '1',
          payload_off: '0',
          state_topic: 'porch/state',
        },
        true,
      );
      const second = await waitFor('the replacement', () => rig.hub.upserts[1]);
      assert.equal(second.id, 'porch');
      const sent = await rig.listen('porch/cmd');
      await rig.adapter.execute(command('porch', 'turn_on'), second);
      await waitFor('command', () => sent.length === 1);
      assert.deepEqual(sent, ['1']);
      await rig.publish('porch/state', '1');
      await waitFor('state with the new payloads', () => rig.hub.value('porch', 'switch.on') === true);

      await rig.publish(topic, '', true);
      await waitFor('removal', () => rig.hub.removals.includes('porch'));
      assert.equal(rig.hub.things.has('porch'), false);
      // Nothing from the removed entity is read any more.
      const accepted = rig.hub.accepted.length;
      await rig.publish('porch/state', '0');
      await rig.publish(`${rig.prefix}/switch/probe/config`, { name: 'Probe', command_topic: 'probe/set' }, true);
      await rig.thing('probe');
      assert.equal(rig.hub.accepted.length, accepted);
      await rig.publish(`${rig.prefix}/switch/probe/config`, '', true);
    } finally {
      await rig.close();
    }
  });

  test('entities that name their device by identifiers alone join the thing named after it', async () => {
    const rig = await startRig();
    try {
      // As many integrations announce a multisensor: the full device block once, then only its
      // identifiers. The thin config's key sorts first, which is what named the thing before.
      const state = 'kitchen/multi/state';
      await rig.publish(
        `${rig.prefix}/sensor/kitchen/temp/config`,
        {
          name: 'Temperature',
          stat_t: state,
          val_tpl: '{{ value_json.temperature }}',
          dev_cla: 'temperature',
          unit_of_meas: '°C',
          dev: { ids: ['kitchen-multi-1'], name: 'Kitchen multi', mf: 'Acme', sa: 'Kitchen' },
        },
        true,
      );
      await rig.thing('kitchen-multi');
      await rig.publish(state, { temperature: 21, humidity: 40 }, true);
      await waitFor('temperature', () => rig.hub.value('kitchen-multi', 'sensor.temperature') === 21);
      await rig.publish(
        `${rig.prefix}/sensor/kitchen/hum/config`,
        {
          name: 'Humidity',
          stat_t: state,
          val_tpl: '{{ value_json.humidity }}',
          dev_cla: 'humidity',
          unit_of_meas: '%',
          dev: { ids: ['kitchen-multi-1'] },
        },
        true,
      );
      await waitFor('humidity', () => rig.hub.value('kitchen-multi', 'sensor.humidity') === 40);
      const thing = rig.hub.things.get('kitchen-multi') as Thing;
      assert.equal(thing.name, 'Kitchen multi');
      assert.equal(thing.room, 'Kitchen');
      assert.equal(metaOf<{ manufacturer?: string }>(thing, 'device').manufacturer, 'Acme');
      assert.deepEqual(Object.keys(thing.properties).sort(), ['sensor.humidity', 'sensor.temperature']);
      assert.deepEqual(rig.hub.removals, [], 'the thing kept its id');
      assert.deepEqual([...rig.hub.things.keys()], ['kitchen-multi']);
    } finally {
      await rig.close();
    }
  });

  test('a device renamed by another of its entities keeps saying whether it is online', async () => {
    const rig = await startRig();
    try {
      await rig.publish(
        `${rig.prefix}/switch/shed/relay/config`,
        { cmd_t: 'shed/set', avty_t: 'shed/status', dev: { ids: ['shed-relay-1'], name: 'Shed' } },
        true,
      );
      await rig.thing('shed');
      await rig.publish('shed/status', 'online');
      await waitFor('online', () => rig.hub.availability.some((a) => a.thing === 'shed' && a.online));

      // A second entity whose device block names the device anew (its key sorts first): the
      // thing moves to the new id, and the relay, which heard its availability already, is not
      // announced again.
      await rig.publish(
        `${rig.prefix}/sensor/shed/power/config`,
        {
          stat_t: 'shed/power',
          dev_cla: 'power',
          unit_of_meas: 'W',
          dev: { ids: ['shed-relay-1'], name: 'Garden shed' },
        },
        true,
      );
      await rig.thing('garden-shed');
      await waitFor('removal of the old id', () => rig.hub.removals.includes('shed'));
      await waitFor('the new id online', () => rig.hub.availability.some((a) => a.thing === 'garden-shed' && a.online));
    } finally {
      await rig.close();
    }
  });

  test('an availability list follows its mode: all needs every topic, any needs one', async () => {
    const rig = await startRig();
    try {
      const availability = [
        { topic: 'net/bridge', payload_available: 'up', payload_not_available: 'down' },
        { t: 'net/plug/avail', val_tpl: '{{ value_json.state }}' },
      ];
      await rig.publish(
        `${rig.prefix}/switch/all-plug/config`,
        { name: 'All plug', command_topic: 'all/set', availability, availability_mode: 'all' },
        true,
      );
      await rig.publish(
        `${rig.prefix}/switch/any-plug/config`,
        { name: 'Any plug', cmd_t: 'any/set', avty: availability, avty_mode: 'any' },
        true,
      );
      await rig.thing('all-plug');
      await rig.thing('any-plug');
      const last = (thing: string) => rig.hub.availability.filter((a) => a.thing === thing).at(-1)?.online;

      await rig.publish('net/bridge', 'up');
      await waitFor('any plug online', () => last('any-plug') === true);
      await waitFor('all plug still offline', () => last('all-plug') === false);
      await rig.publish('net/plug/avail', { state: 'online' });
      await waitFor('all plug online', () => last('all-plug') === true);
      await rig.publish('net/bridge', 'down');
      await waitFor('all plug offline', () => last('all-plug') === false);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(last('any-plug'), true, 'one available topic keeps an "any" entity online');
    } finally {
      await rig.close();
    }
  });

  test('a lock, a thermostat and a cover read and write their own payloads', async () => {
    const rig = await startRig();
    try {
      await rig.publish(
        `${rig.prefix}/lock/front/config`,
        {
          name: 'Front door',
          command_topic: 'front/lock/set',
          state_topic: 'front/lock',
          payload_lock: 'CLOSE',
          payload_unlock: 'OPEN',
          state_locked: 'closed',
          state_unlocked: 'open',
          command_template: '{"lock": "{{ value }}"}',
        },
        true,
      );
      await rig.publish(
        `${rig.prefix}/climate/living/config`,
        {
          name: 'Living thermostat',
          mode_stat_t: 'living/mode',
          mode_cmd_t: 'living/mode/set',
          modes: ['off', 'heat', 'heat_cool'],
          temp_stat_t: 'living/target',
          temp_cmd_t: 'living/target/set',
          curr_temp_t: 'living/state',
          curr_temp_tpl: '{{ value_json.local_temperature }}',
          temperature_unit: 'F',
        },
        true,
      );
      await rig.publish(
        `${rig.prefix}/cover/blind/config`,
        {
          name: 'Bedroom blind',
          cmd_t: 'blind/set',
          pos_t: 'blind/position',
          set_pos_t: 'blind/position/set',
          pos_open: 255,
          pos_clsd: 0,
          pl_open: 'UP',
          pl_cls: 'DOWN',
        },
        true,
      );
      const lock = await rig.thing('front');
      const thermostat = await rig.thing('living');
      const blind = await rig.thing('blind');
      assert.deepEqual(thermostat.actions.set_mode.input?.properties?.mode.enum, ['off', 'heat', 'auto']);

      await rig.publish('front/lock', 'closed');
      await rig.publish('living/mode', 'heat_cool');
      await rig.publish('living/target', '68');
      await rig.publish('living/state', { local_temperature: 71.6 });
      await rig.publish('blind/position', '51');
      await waitFor('blind', () => rig.hub.value('blind', 'cover.position') === 20);
      await waitFor('current', () => rig.hub.value('living', 'climate.current_temperature') === 22);
      assert.equal(rig.hub.value('front', 'lock.locked'), true);
      assert.equal(rig.hub.value('living', 'climate.mode'), 'auto');
      assert.equal(rig.hub.value('living', 'climate.target_temperature'), 20);

      const lockSent = await rig.listen('front/lock/set');
      const modeSent = await rig.listen('living/mode/set');
      const targetSent = await rig.listen('living/target/set');
      const blindSent = await rig.listen('blind/set');
      const positionSent = await rig.listen('blind/position/set');
      await rig.adapter.execute(command('front', 'unlock'), lock);
      await rig.adapter.execute(command('living', 'set_mode', { mode: 'auto' }), thermostat);
      await rig.adapter.execute(command('living', 'set_target_temperature', { temperature: 21 }), thermostat);
      await rig.adapter.execute(command('blind', 'open'), blind);
      await rig.adapter.execute(command('blind', 'set_position', { position: 40 }), blind);
      await waitFor(
        'all commands',
        () => lockSent.length + modeSent.length + targetSent.length + blindSent.length + positionSent.length === 5,
      );
      assert.deepEqual(lockSent, ['{"lock": "OPEN"}']);
      assert.deepEqual(modeSent, ['heat_cool']);
      assert.deepEqual(targetSent, ['69.8']);
      assert.deepEqual(blindSent, ['UP']);
      assert.deepEqual(positionSent, ['102']);
      await assert.rejects(
        rig.adapter.execute(command('living', 'set_mode', { mode: 'cool' }), thermostat),
        /has no mode "cool"/,
      );
    } finally {
      await rig.close();
    }
  });

  test('a jammed lock says so in lock.jammed, with its own payload or the default, and rules can trigger on it', async () => {
    const rig = await startRig();
    try {
      await rig.publish(
        `${rig.prefix}/lock/front/config`,
        {
          name: 'Front door',
          command_topic: 'front/lock/set',
          state_topic: 'front/lock',
          state_locked: 'closed',
          state_unlocked: 'open',
          state_jammed: 'stuck',
        },
        true,
      );
      await rig.publish(
        `${rig.prefix}/lock/back/config`,
        { name: 'Back door', cmd_t: 'back/lock/set', stat_t: 'back/lock' },
        true,
      );
      const front = await rig.thing('front');
      await rig.thing('back');
      assert.deepEqual(front.properties['lock.jammed'], { schema: { type: 'boolean' } });

      await rig.publish('front/lock', 'closed');
      await waitFor('locked', () => rig.hub.value('front', 'lock.locked') === true);
      assert.equal(rig.hub.value('front', 'lock.jammed'), false);
      await rig.publish('front/lock', 'stuck');
      await rig.publish('back/lock', 'JAMMED');
      await waitFor('front jammed', () => rig.hub.value('front', 'lock.jammed') === true);
      await waitFor('back jammed', () => rig.hub.value('back', 'lock.jammed') === true);
      // Jammed is not unlocked: the bolt is where the lock last said it was.
      assert.equal(rig.hub.value('front', 'lock.locked'), true);
      assert.equal(rig.hub.value('back', 'lock.locked'), undefined);
      await rig.publish('front/lock', 'open');
      await waitFor('unjammed', () => rig.hub.value('front', 'lock.jammed') === false);
      assert.equal(rig.hub.value('front', 'lock.locked'), false);
      // Home Assistant's moving states end a jam too, leaving lock.locked until the lock says where
      // it ended; OPEN is unlocked.
      await rig.publish('back/lock', 'UNLOCKING');
      await waitFor('back unjammed', () => rig.hub.value('back', 'lock.jammed') === false);
      assert.equal(rig.hub.value('back', 'lock.locked'), undefined);
      await rig.publish('back/lock', 'LOCKED');
      await waitFor('back locked', () => rig.hub.value('back', 'lock.locked') === true);
      await rig.publish('back/lock', 'JAMMED');
      await waitFor('back jammed again', () => rig.hub.value('back', 'lock.jammed') === true);
      await rig.publish('back/lock', 'OPEN');
      await waitFor('back open', () => rig.hub.value('back', 'lock.locked') === false);
      assert.equal(rig.hub.value('back', 'lock.jammed'), false);
      assert.deepEqual(rig.hub.refused, []);
      assert.deepEqual(
        rig.hub.warnings().filter((line) => line.startsWith('state on')),
        [],
      );

      const rule = parseRule(
        {
          id: 'door-jammed',
          triggers: [{ trigger: 'state', thing: 'front', property: 'lock.jammed', to: true }],
          actions: [{ action: 'lock', thing: 'back' }],
        },
        {
          householdId: HOUSEHOLD,
          thing: (id) => rig.hub.things.get(id),
          hasLocation: false,
          origin: { kind: 'draft' },
        },
      );
      assert.equal(rule.id, 'door-jammed');
    } finally {
      await rig.close();
    }
  });

  /** Waits for the hub's log to say it could not save `thing`. */
  const failedSave = (rig: Awaited<ReturnType<typeof startRig>>, thing: string) =>
    waitFor('the failed save', () =>
      rig.hub.lines.some((line) => line.level === 'error' && line.message.startsWith(`cannot save thing ${thing}`)),
    );

  test('a config whose thing could not be saved is read again when it is sent again', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/switch/heater/config`;
      const config = { name: 'Heater', command_topic: 'heater/set', state_topic: 'heater/state' };
      rig.hub.saveError = new Error('the store is down');
      await rig.publish(topic, config, true);
      await failedSave(rig, 'heater');
      assert.equal(rig.hub.things.get('heater'), undefined);
      // The store is back; the device (or the broker, re-delivering the retained config) sends it again.
      rig.hub.saveError = undefined;
      await rig.publish(topic, config, true);
      await rig.thing('heater');
      await rig.publish('heater/state', 'ON');
      await waitFor('the state', () => rig.hub.value('heater', 'switch.on') === true);
    } finally {
      await rig.close();
    }
  });

  test('an update whose thing cannot be saved keeps the thing and its subscriptions; sent again, it is taken', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/switch/boiler/config`;
      await rig.publish(topic, { name: 'Boiler', command_topic: 'boiler/set', state_topic: 'boiler/state' }, true);
      await rig.thing('boiler');
      const update = { name: 'Boiler', command_topic: 'boiler/cmd', state_topic: 'boiler/status' };
      rig.hub.saveError = new Error('the store is down');
      await rig.publish(topic, update, true);
      await failedSave(rig, 'boiler');
      await rig.adapter.idle();
      assert.deepEqual(rig.hub.removals, [], 'a thing is not removed because its update could not be saved');
      assert.ok(rig.hub.things.has('boiler'));
      // The previous config still reads the device, and is the one in force: sent again, it is unchanged.
      await rig.publish('boiler/state', 'ON');
      await waitFor('the state on the previous topic', () => rig.hub.value('boiler', 'switch.on') === true);
      const saves = rig.hub.saving;
      await rig.publish(topic, { name: 'Boiler', command_topic: 'boiler/set', state_topic: 'boiler/state' }, true);
      await rig.publish(`${rig.prefix}/switch/marker/config`, { name: 'Marker', command_topic: 'marker/set' }, true);
      await waitFor('the marker to be tried', () => rig.hub.saving > saves);
      await rig.adapter.idle();
      assert.equal(rig.hub.saving, saves + 1, 'only the marker is tried, not the unchanged config');

      rig.hub.saveError = undefined;
      await rig.publish(topic, update, true);
      await waitFor('the update', () => rig.hub.upserts.length === 2);
      await rig.adapter.idle();
      await rig.publish('boiler/status', 'OFF');
      await waitFor('the state on the new topic', () => rig.hub.value('boiler', 'switch.on') === false);
      const sent = await rig.listen('boiler/cmd');
      await rig.adapter.execute(command('boiler', 'turn_on'), rig.hub.things.get('boiler') as Thing);
      await waitFor('the command on the new topic', () => sent.length === 1);
      // The previous topic is let go.
      await rig.publish('boiler/state', 'ON');
      await rig.publish(`${rig.prefix}/switch/probe/config`, { name: 'Probe', command_topic: 'probe/set' }, true);
      await rig.thing('probe');
      assert.equal(rig.hub.value('boiler', 'switch.on'), false);
    } finally {
      await rig.close();
    }
  });

  test('an update moving an entity to a renamed device, refused by the store, removes nothing and is taken later', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/switch/shed/config`;
      await rig.publish(topic, { name: 'Shed', command_topic: 'shed/set', state_topic: 'shed/state' }, true);
      await rig.thing('shed');
      // Another group and another id: the old thing is stale only once the new one is saved.
      const update = {
        name: null,
        command_topic: 'shed/set',
        state_topic: 'shed/state',
        device: { identifiers: ['garden-1'], name: 'Garden shed' },
      };
      rig.hub.saveError = new Error('the store is down');
      await rig.publish(topic, update, true);
      await failedSave(rig, 'garden-shed');
      await rig.adapter.idle();
      assert.deepEqual(rig.hub.removals, []);
      await rig.publish('shed/state', 'ON');
      await waitFor('the state of the old thing', () => rig.hub.value('shed', 'switch.on') === true);

      rig.hub.saveError = undefined;
      await rig.publish(topic, update, true);
      await rig.thing('garden-shed');
      await waitFor('the old thing removed', () => rig.hub.removals.includes('shed'));
      assert.equal(rig.hub.things.has('shed'), false);
      await rig.publish('shed/state', 'OFF');
      await waitFor('the state of the new thing', () => rig.hub.value('garden-shed', 'switch.on') === false);
    } finally {
      await rig.close();
    }
  });

  test('a removal the store refuses keeps the entity; the empty config sent again removes it', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/switch/kettle/config`;
      const config = { name: 'Kettle', command_topic: 'kettle/set', state_topic: 'kettle/state' };
      await rig.publish(topic, config, true);
      await rig.thing('kettle');
      rig.hub.removeError = new Error('the store is down');
      await rig.publish(topic, '', true);
      await waitFor('the failed removal', () => rig.hub.lines.some((line) => line.level === 'error'));
      await rig.adapter.idle();
      assert.ok(rig.hub.things.has('kettle'));
      // Still stored, so still read, and its config still the one in force: sent again, it is unchanged.
      await rig.publish('kettle/state', 'ON');
      await waitFor('the state', () => rig.hub.value('kettle', 'switch.on') === true);
      const saves = rig.hub.saving;
      await rig.publish(topic, config, true);
      await rig.publish(`${rig.prefix}/switch/marker/config`, { name: 'Marker', command_topic: 'marker/set' }, true);
      await rig.thing('marker');
      assert.equal(rig.hub.saving, saves + 1, 'only the marker is saved, not the unchanged config');

      rig.hub.removeError = undefined;
      await rig.publish(topic, '', true);
      await waitFor('the removal', () => rig.hub.removals.includes('kettle'));
      assert.equal(rig.hub.things.has('kettle'), false);
      // The device comes back with the same config: read again, not skipped as unchanged.
      await rig.publish(topic, config, true);
      await rig.thing('kettle');
    } finally {
      await rig.close();
    }
  });

  test('commands the entity cannot carry out fail with a clear error', async () => {
    const rig = await startRig();
    try {
      await rig.publish(
        `${rig.prefix}/sensor/cellar/config`,
        { name: 'Cellar', state_topic: 'cellar/t', device_class: 'temperature' },
        true,
      );
      await rig.publish(`${rig.prefix}/switch/fan/config`, { name: 'Fan', state_topic: 'fan/state' }, true);
      const cellar = await rig.thing('cellar');
      const fan = await rig.thing('fan');
      await assert.rejects(rig.adapter.execute(command('cellar', 'turn_on'), cellar), /Cellar has no action "turn_on"/);
      assert.deepEqual(fan.actions, {}, 'a switch without a command topic offers no actions');
      await assert.rejects(rig.adapter.execute(command('fan', 'turn_on'), fan), /Fan has no action "turn_on"/);
      // A thing whose stored meta lost its command topic (e.g. saved by an older version) still fails cleanly.
      const broken = structuredClone(fan);
      broken.actions = { turn_on: { capability: 'switch' } };
      metaOf<Record<string, { actions: string[] }>>(broken, 'entities')['switch/fan'].actions = ['turn_on'];
      await assert.rejects(rig.adapter.execute(command('fan', 'turn_on'), broken), /fan has no command_topic/);
    } finally {
      await rig.close();
    }
  });

  test('a state sent while the new thing is being saved is read once it exists', async () => {
    const rig = await startRig();
    try {
      let release = () => {};
      rig.hub.saveGate = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Sent plainly, not retained, as many devices send their first state after their config.
      await rig.publish(`${rig.prefix}/switch/heater/config`, { name: 'Heater', state_topic: 'heater/state' }, false);
      await waitFor('the save to start', () => rig.hub.saving === 1);
      // The subscription asked for with the config has reached the broker by now (its SUBSCRIBE
      // went out before the save began, over loopback; 200 ms leaves a loaded machine room); the
      // device's state comes while the save still waits.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await rig.publish('heater/state', 'ON', false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(rig.hub.things.get('heater'), undefined, 'the save is still held');
      release();
      await rig.thing('heater');
      await waitFor('the early state', () => rig.hub.value('heater', 'switch.on') === true);
    } finally {
      await rig.close();
    }
  });

  test('two devices with the same name get distinct, stable ids', async () => {
    const rig = await startRig();
    try {
      const lamp = (id: string) => ({
        name: null,
        command_topic: `${id}/set`,
        device: { identifiers: [id], name: 'Lamp' },
      });
      await rig.publish(`${rig.prefix}/switch/a/config`, lamp('lamp-a'), true);
      await rig.thing('lamp');
      await rig.publish(`${rig.prefix}/switch/b/config`, lamp('lamp-b'), true);
      const second = await waitFor('second lamp', () => rig.hub.upserts.find((t) => t.id !== 'lamp'));
      assert.match(second.id, /^lamp-[0-9a-f]{6}$/);
      // Re-announcing with a change keeps each device on its own id.
      await rig.publish(`${rig.prefix}/switch/b/config`, { ...lamp('lamp-b'), payload_on: 'on' }, true);
      await waitFor('update', () => rig.hub.upserts.length === 3);
      assert.equal(rig.hub.upserts[2].id, second.id);
      assert.deepEqual(rig.hub.removals, []);
    } finally {
      await rig.close();
    }
  });
});

describe('a device with two relays', () => {
  test('the second relay gets its own thing, since one thing has one switch.on', async () => {
    const rig = await startRig();
    try {
      const device = { identifiers: ['shelly2-AABBCC'], name: 'Relay box' };
      await rig.publish(`${rig.prefix}/switch/shelly2/relay_0/config`, {
        name: 'Pump',
        command_topic: 'r/0/set',
        device,
      });
      await rig.publish(`${rig.prefix}/switch/shelly2/relay_1/config`, {
        name: 'Heater',
        command_topic: 'r/1/set',
        device,
      });
      await rig.thing('relay-box');
      const second = await rig.thing('relay-box-relay_1');
      assert.equal(second.name, 'Relay box Heater');
      const sent = await rig.listen('r/1/set');
      await rig.adapter.execute(command(second.id, 'turn_on'), second);
      await waitFor('second relay command', () => sent.length === 1);
      // Removing the second relay removes only its thing.
      await rig.publish(`${rig.prefix}/switch/shelly2/relay_1/config`, '');
      await waitFor('removal', () => rig.hub.removals.length === 1);
      assert.deepEqual(rig.hub.removals, ['relay-box-relay_1']);
      assert.ok(rig.hub.things.has('relay-box'));
    } finally {
      await rig.close();
    }
  });
});

describe("a template's value is compared and stored as the text Home Assistant renders", () => {
  // Home Assistant renders a value template to text and compares that text with the entity's
  // payloads, so a float prints as Python prints it (`1.0`), also one read from a JSON payload
  // written with a fraction, and a list or dict as Python's str prints it. The payloads are sent
  // as text: JSON.stringify would write 1.0 as 1.
  test('a float result matches payloads written as floats, for every kind of entity', async () => {
    const rig = await startRig();
    try {
      const config = (component: string, object: string, extra: Record<string, unknown>) =>
        rig.publish(`${rig.prefix}/${component}/${object}/config`, { name: object, ...extra }, true);
      await config('binary_sensor', 'hall_motion', {
        state_topic: 'hall/motion',
        device_class: 'motion',
        value_template: '{{ value_json.occupancy }}',
        payload_on: '1.0',
        payload_off: '0.0',
      });
      await config('binary_sensor', 'porch_motion', {
        state_topic: 'porch/motion',
        device_class: 'motion',
        value_template: '{{ value | float }}',
        payload_on: '1.0',
        payload_off: '0.0',
      });
      await config('switch', 'pump', {
        state_topic: 'pump/state',
        command_topic: 'pump/set',
        value_template: '{{ value_json.relay * 1.0 }}',
        state_on: '1.0',
        state_off: '0.0',
      });
      await config('lock', 'gate', {
        state_topic: 'gate/state',
        command_topic: 'gate/set',
        value_template: '{{ value_json.bolt }}',
        state_locked: '1.0',
        state_unlocked: '0.0',
        state_jammed: '2.0',
      });
      await config('cover', 'awning', {
        state_topic: 'awning/state',
        command_topic: 'awning/set',
        value_template: '{{ value_json.open }}',
        state_open: '1.0',
        state_closed: '0.0',
      });
      await config('light', 'lamp', {
        state_topic: 'lamp/state',
        command_topic: 'lamp/set',
        state_value_template: '{{ value_json.power }}',
        payload_on: '1.0',
        payload_off: '0.0',
      });
      await config('switch', 'heater', {
        state_topic: 'heater/state',
        command_topic: 'heater/set',
        availability: [{ topic: 'heater/status', value_template: '{{ value_json.link }}', payload_available: '1.0' }],
      });
      for (const id of ['hall_motion', 'porch_motion', 'pump', 'gate', 'awning', 'lamp', 'heater']) await rig.thing(id);

      await rig.publish('hall/motion', '{"occupancy": 1.0}');
      await rig.publish('porch/motion', '1');
      await rig.publish('pump/state', '{"relay": 1}');
      await rig.publish('gate/state', '{"bolt": 2.0}');
      await rig.publish('awning/state', '{"open": 1.0}');
      await rig.publish('lamp/state', '{"power": 1.0}');
      await rig.publish('heater/status', '{"link": 1.0}');
      await waitFor('the lamp', () => rig.hub.value('lamp', 'light.on') === true);
      await waitFor('the heater online', () => rig.hub.availability.some((a) => a.thing === 'heater' && a.online));
      assert.equal(rig.hub.value('hall_motion', 'sensor.motion'), true);
      assert.equal(rig.hub.value('porch_motion', 'sensor.motion'), true);
      assert.equal(rig.hub.value('pump', 'switch.on'), true);
      assert.equal(rig.hub.value('gate', 'lock.jammed'), true);
      assert.equal(rig.hub.value('awning', 'cover.position'), 100);

      await rig.publish('hall/motion', '{"occupancy": 0.0}');
      await rig.publish('porch/motion', '0');
      await rig.publish('pump/state', '{"relay": 0}');
      await rig.publish('gate/state', '{"bolt": 1.0}');
      await rig.publish('awning/state', '{"open": 0e0}');
      await rig.publish('lamp/state', '{"power": 0.0}');
      await waitFor('the lamp off', () => rig.hub.value('lamp', 'light.on') === false);
      assert.equal(rig.hub.value('hall_motion', 'sensor.motion'), false);
      assert.equal(rig.hub.value('porch_motion', 'sensor.motion'), false);
      assert.equal(rig.hub.value('pump', 'switch.on'), false);
      assert.equal(rig.hub.value('gate', 'lock.locked'), true);
      assert.equal(rig.hub.value('gate', 'lock.jammed'), false);
      assert.equal(rig.hub.value('awning', 'cover.position'), 0);

      // An int in the payload is an int, as in Home Assistant: `1` is not the payload `1.0`.
      await rig.publish('hall/motion', '{"occupancy": 1}');
      await rig.publish('lamp/state', '{"power": 1.0}');
      await waitFor('the lamp on again', () => rig.hub.value('lamp', 'light.on') === true);
      assert.equal(rig.hub.value('hall_motion', 'sensor.motion'), false);
      assert.deepEqual(rig.hub.refused, []);
    } finally {
      await rig.close();
    }
  });

  test('a text sensor stores what Home Assistant shows; a numeric one still stores the number', async () => {
    const rig = await startRig();
    try {
      const device = { identifiers: ['weather-station'], name: 'Weather station' };
      const sensor = (object: string, extra: Record<string, unknown>) =>
        rig.publish(
          `${rig.prefix}/sensor/station/${object}/config`,
          { name: object, state_topic: 'station/state', device, ...extra },
          true,
        );
      await sensor('reading', { value_template: '{{ value_json.t }}' });
      await sensor('temperature', {
        device_class: 'temperature',
        unit_of_measurement: '°C',
        value_template: '{{ value_json.t }}',
      });
      await sensor('flags', { value_template: '{{ value_json.flags }}' });
      await sensor('config', { value_template: '{{ value_json.config }}' });
      await rig.thing('weather-station');
      await rig.publish(
        'station/state',
        '{"t": 21.0, "flags": ["a", 1, true, null, 2.0], "config": {"unit": "it\'s °C", "step": 0.50, "n": [1e3]}}',
      );
      await waitFor('the reading', () => rig.hub.value('weather-station', 'sensor.reading') !== undefined);
      await waitFor('the config', () => rig.hub.value('weather-station', 'sensor.config') !== undefined);
      assert.equal(rig.hub.value('weather-station', 'sensor.reading'), '21.0');
      assert.equal(rig.hub.value('weather-station', 'sensor.temperature'), 21);
      assert.equal(rig.hub.value('weather-station', 'sensor.flags'), "['a', 1, True, None, 2.0]");
      assert.equal(
        rig.hub.value('weather-station', 'sensor.config'),
        `{'unit': "it's °C", 'step': 0.5, 'n': [1000.0]}`,
      );
      await rig.publish('station/state', '{"t": 21, "flags": [], "config": {}}');
      await waitFor('the int reading', () => rig.hub.value('weather-station', 'sensor.reading') === '21');
      await waitFor('the empty config', () => rig.hub.value('weather-station', 'sensor.config') === '{}');
      assert.equal(rig.hub.value('weather-station', 'sensor.flags'), '[]');
      assert.deepEqual(rig.hub.refused, []);
    } finally {
      await rig.close();
    }
  });
});

describe('bad input is reported and changes nothing', () => {
  const good = { name: 'Good plug', command_topic: 'good/set' };
  const cases: Array<{ what: string; payload: string | Buffer | object; topic?: string; reason: RegExp }> = [
    { what: 'malformed JSON', payload: '{"name": "x", ', reason: /malformed JSON/ },
    { what: 'a JSON array', payload: [1, 2], reason: /must be a JSON object/ },
    { what: 'a JSON number', payload: '42', reason: /must be a JSON object/ },
    {
      what: 'an unknown component',
      topic: 'teleporter/x/config',
      payload: good,
      reason: /"teleporter" is not a Home Assistant component/,
    },
    {
      what: 'a switch without topics',
      payload: { name: 'No topics' },
      reason: /needs one of state_topic, command_topic/,
    },
    {
      what: 'a sensor without a state topic',
      topic: 'sensor/x/config',
      payload: { name: 's' },
      reason: /needs one of state_topic/,
    },
    {
      what: 'a light with an unknown schema',
      topic: 'light/x/config',
      payload: { schema: 'template', command_topic: 'x' },
      reason: /schema "template"/,
    },
    {
      what: 'a device config without cmps',
      topic: 'device/x/config',
      payload: { dev: { ids: 'x' } },
      reason: /needs a "cmps"/,
    },
    { what: 'an oversized payload', payload: Buffer.alloc(70 * 1024, 0x20), reason: /over the 64 KiB limit/ },
  ];
  for (const { what, payload, topic, reason } of cases) {
    test(what, async () => {
      const rig = await startRig();
      try {
        const badTopic = `${rig.prefix}/${topic ?? 'switch/bad/config'}`;
        await rig.publish(badTopic, payload);
        await rig.publish(`${rig.prefix}/switch/good/config`, good);
        await rig.thing('good');
        assert.deepEqual(
          rig.hub.upserts.map((t) => t.id),
          ['good'],
        );
        const warning = rig.hub.warnings().find((line) => line.includes(badTopic));
        assert.ok(warning, `a warning names ${badTopic}: ${rig.hub.warnings().join(' | ')}`);
        assert.match(warning, reason);
      } finally {
        await rig.close();
      }
    });
  }

  test('a state the entity cannot read is logged once a minute; a partial update for another entity is not', async () => {
    const rig = await startRig();
    try {
      await rig.publish(`${rig.prefix}/switch/fan/config`, { name: 'Fan', state_topic: 'fan/state' });
      await rig.publish(`${rig.prefix}/sensor/porch/config`, {
        name: 'Porch',
        state_topic: 'porch/state',
        device_class: 'temperature',
        unit_of_measurement: '°C',
        value_template: '{{ value_json.temperature }}',
      });
      const bulb = z2mBulb(rig.prefix);
      await rig.publish(bulb.light.topic, bulb.light.config);
      await rig.publish(bulb.linkquality.topic, bulb.linkquality.config);
      await rig.thing('fan');
      await rig.thing('porch');
      await rig.thing('hall-light');
      await rig.publish('fan/state', 'BANANA');
      await rig.publish('fan/state', 'MANGO');
      await rig.publish('porch/state', '{"temperature": 2');
      await rig.publish('zigbee2mqtt/Hall light', { linkquality: 90 });
      await rig.publish('fan/state', 'ON');
      await waitFor('the good state', () => rig.hub.value('fan', 'switch.on') === true);
      const notRead = rig.hub.warnings().filter((line) => line.includes(' not read: '));
      assert.equal(notRead.length, 2, notRead.join('\n'));
      assert.match(notRead[0], /^state on fan\/state not read: "BANANA" is not a value this switch knows/);
      assert.match(
        notRead[1],
        /^state on porch\/state not read: it is not valid JSON \(payload "\{\\"temperature\\": 2"\)/,
      );
      assert.deepEqual(rig.hub.refused, []);
      assert.equal(rig.hub.value('porch', 'sensor.temperature'), undefined);
      assert.equal(rig.hub.value('hall-light', 'light.on'), undefined);
    } finally {
      await rig.close();
    }
  });

  test('a bad update keeps the previous config', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/switch/keep/config`;
      await rig.publish(topic, { name: 'Keep', command_topic: 'keep/set' });
      const thing = await rig.thing('keep');
      await rig.publish(topic, '{oops');
      await rig.publish(`${rig.prefix}/switch/good/config`, good);
      await rig.thing('good');
      assert.deepEqual(rig.hub.removals, []);
      const sent = await rig.listen('keep/set');
      await rig.adapter.execute(command('keep', 'turn_on'), thing);
      await waitFor('command', () => sent.length === 1);
    } finally {
      await rig.close();
    }
  });

  test('a config whose command topic holds a wildcard, or whose state topic is no filter, is refused', async () => {
    const rig = await startRig();
    try {
      // Published to, `cmd/#` would make the broker drop the hub's connection at every command.
      await rig.publish(`${rig.prefix}/switch/wild-cmd/config`, { cmd_t: 'wild/#', stat_t: 'wild/state' });
      await rig.publish(`${rig.prefix}/light/plus-cmd/config`, {
        cmd_t: 'plus/set',
        bri_cmd_t: 'plus/+/brightness',
      });
      await rig.publish(`${rig.prefix}/sensor/bad-filter/config`, { stat_t: 'bad/#/state' });
      await rig.publish(`${rig.prefix}/binary_sensor/bad-avty/config`, {
        stat_t: 'ok/state',
        avty: [{ t: 'avail/a+b' }],
      });
      // A well-formed filter is a topic like any other to read.
      await rig.publish(`${rig.prefix}/sensor/any-room/config`, { stat_t: 'rooms/+/temperature' });
      await rig.thing('any-room');
      await rig.adapter.idle();
      assert.deepEqual([...rig.hub.things.keys()], ['any-room']);
      const refusals = rig.hub.warnings().filter((w) => w.includes(' ignored: '));
      assert.equal(refusals.length, 4, refusals.join('\n'));
      assert.match(refusals[0], /command_topic "wild\/#" holds a wildcard/);
      assert.match(refusals[1], /brightness_command_topic "plus\/\+\/brightness" holds a wildcard/);
      assert.match(refusals[2], /state_topic "bad\/#\/state" is not a valid topic filter/);
      assert.match(refusals[3], /availability\.topic "avail\/a\+b" is not a valid topic filter/);
    } finally {
      await rig.close();
    }
  });

  test('a name with control characters, only spaces or thousands of characters is shown cleaned', async () => {
    const rig = await startRig();
    try {
      const announce = (id: string, name: string, entity?: string) =>
        rig.publish(`${rig.prefix}/switch/${id}/config`, {
          ...(entity === undefined ? {} : { name: entity }),
          cmd_t: `${id}/set`,
          dev: { ids: [id], name, sa: `Hall\u0000${name}` },
        });
      await announce('escape', 'Red\u001b[31m lamp\u0000');
      const escaped = await rig.thing('red-31m-lamp');
      assert.equal(escaped.name, 'Red [31m lamp');
      assert.equal(escaped.room, 'Hall Red [31m lamp');
      // Hidden characters that would hide in the name or reorder it are dropped; a joiner stays.
      await announce('bidi', 'Garage\u202e plug\u200b \u{1F468}\u200d\u{1F527}');
      assert.equal((await rig.thing('garage-plug')).name, 'Garage plug \u{1F468}\u200d\u{1F527}');
      // A device name of spaces says nothing: the entity's own name is used.
      await announce('blank', '   ', 'Porch switch');
      assert.equal((await rig.thing('blank')).name, 'Porch switch');
      await announce('long', `Lamp ${'x'.repeat(5000)}`);
      const long = await waitFor('the long one', () =>
        [...rig.hub.things.values()].find((t) => t.id.startsWith('lamp')),
      );
      assert.equal(long.name.length, 200);
    } finally {
      await rig.close();
    }
  });

  test('out-of-range and oversized states are refused without stopping the adapter', async () => {
    const rig = await startRig();
    try {
      const bulb = z2mBulb(rig.prefix);
      await rig.publish(bulb.light.topic, bulb.light.config);
      await rig.thing('hall-light');
      await rig.publish('zigbee2mqtt/Hall light', { state: 'ON', brightness: 300 });
      await rig.publish('zigbee2mqtt/Hall light', Buffer.alloc(70 * 1024, 0x20));
      await rig.publish('zigbee2mqtt/Hall light', 'not json');
      await rig.publish('zigbee2mqtt/Hall light', { state: 'OFF', brightness: 127 });
      await waitFor('the good state', () => rig.hub.value('hall-light', 'light.brightness') === 50);
      assert.deepEqual(
        rig.hub.refused.map((r) => [r.report.property, r.report.value]),
        [['light.brightness', 118]],
      );
      assert.ok(rig.hub.warnings().some((line) => /state on zigbee2mqtt\/Hall light ignored: .* 64 KiB/.test(line)));
      assert.equal(rig.hub.value('hall-light', 'light.on'), false);
    } finally {
      await rig.close();
    }
  });

  test('an unsupported template keeps the entity, records the problem and reads no value', async () => {
    const rig = await startRig();
    try {
      const topic = `${rig.prefix}/sensor/outside/config`;
      await rig.publish(topic, {
        name: 'Outside',
        state_topic: 'outside/state',
        device_class: 'temperature',
        unit_of_measurement: '°C',
        value_template: "{{ states('sensor.x') | float }}",
      });
      const thing = await rig.thing('outside');
      assert.deepEqual(Object.keys(thing.properties), ['sensor.temperature']);
      assert.equal(metaOf<string[]>(thing, 'problems').length, 1);
      assert.match(metaOf<string[]>(thing, 'problems')[0], /outside: value_template: function calls such as states/);
      assert.ok(rig.hub.warnings().some((line) => line.includes(topic) && line.includes('value_template')));
      await rig.publish('outside/state', '12.5');
      await rig.publish(`${rig.prefix}/switch/good/config`, good);
      await rig.thing('good');
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(rig.hub.value('outside', 'sensor.temperature'), undefined);
      assert.deepEqual(rig.hub.refused, []);
    } finally {
      await rig.close();
    }
  });
});

const mosquittoSkip = await needService('mqtt');

describe('against the machine Mosquitto', () => {
  test('a retained config published before the adapter starts is picked up', { skip: mosquittoSkip }, async () => {
    const prefix = `triad-test-${randomBytes(4).toString('hex')}`;
    const topic = `${prefix}/switch/garden/config`;
    const publisher = await mqtt.connectAsync(services.mqtt);
    try {
      await publisher.publishAsync(
        topic,
        JSON.stringify({ name: 'Garden pump', command_topic: `${prefix}/garden/set` }),
        {
          retain: true,
          qos: 1,
        },
      );
      const rig = await startRig(services.mqtt, prefix);
      try {
        const thing = await rig.thing('garden');
        assert.deepEqual(Object.keys(thing.actions).sort(), ['toggle', 'turn_off', 'turn_on']);
      } finally {
        await rig.close();
      }
    } finally {
      // Leave the shared broker as it was found.
      await publisher.publishAsync(topic, '', { retain: true, qos: 1 });
      await publisher.endAsync();
    }
  });
});

describe('a flood of reports in one read (the machine Mosquitto)', () => {
  test('is handled a slice at a time, so what each report starts in promise callbacks can finish', {
    skip: mosquittoSkip,
  }, async () => {
    const topic = `triad-test-${randomBytes(4).toString('hex')}/flood`;
    const link = new MqttConnection({ url: services.mqtt, clientId: `triad-test-${randomBytes(4).toString('hex')}` });
    await link.connect();
    const publisher = await mqtt.connectAsync(services.mqtt);
    try {
      const count = 5_000;
      // Like a rule's run after its command went out: a few promise callbacks from its end.
      let unfinished = 0;
      let mostUnfinished = 0;
      const seen: number[] = [];
      const all = new Promise<void>((resolve) => {
        void link.subscribe(topic, (_t, payload) => {
          seen.push(Number(String(payload)));
          unfinished++;
          mostUnfinished = Math.max(mostUnfinished, unfinished);
          void Promise.resolve()
            .then(() => undefined)
            .then(() => {
              unfinished--;
            });
          if (seen.length === count) resolve();
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One synchronous loop: the reports leave in a few large writes and arrive in large reads.
      for (let i = 0; i < count; i++) publisher.publish(topic, String(i), { qos: 0 });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${seen.length} of ${count} reports arrived in 20 s`)), 20_000);
      });
      await Promise.race([all, late]).finally(() => clearTimeout(timer));
      assert.deepEqual(
        seen,
        Array.from({ length: count }, (_, i) => i),
      );
      // Without slices, thousands of reports came in one turn and none of their callbacks ran.
      assert.ok(mostUnfinished <= 256, `${mostUnfinished} reports with their promise callbacks still to run`);
      assert.ok(mostUnfinished > 1, 'the flood arrived faster than one report a turn');
    } finally {
      await publisher.endAsync();
      await link.close();
    }
  });
});
