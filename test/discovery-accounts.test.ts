import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

/**
 * A device account may announce only its own device: a config it publishes cannot join, rename or
 * re-id a thing another account (or the hub's trusted side: its own login, anonymous clients)
 * announced by naming the same `device.identifiers`, and cannot name topics the account itself
 * may not use, so the hub never publishes a command where the device may not, nor reads another
 * device's state as its own. A real in-process hub, its embedded broker, and real MQTT clients
 * logged in with device accounts made through the API; the hub is restarted on the same data,
 * when the broker hands back the retained configs without a client.
 */
describe('discovery: a device account announces only its own device', () => {
  let dataDir: string;
  let hub: Hub;
  const lines: LogLine[] = [];
  const accounts: Record<string, { username: string; password: string }> = {};
  const clients: MqttClient[] = [];
  let frontdoor: MqttClient;
  let sneaky: MqttClient;
  let anonymous: MqttClient;

  const start = async () => {
    const next = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
      rateLimits: { api: { burst: 100_000, perSecond: 100_000 } },
    });
    await next.start();
    return next;
  };
  const call = async (path: string, init: { method?: string; json?: unknown; token?: string } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? hub.ownerToken}` };
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { method: init.method ?? 'GET', headers, body });
    return { status: res.status, body: (await res.json()) as Json };
  };
  const connect = async (login?: { username: string; password: string }) => {
    const client = await mqtt.connectAsync(hub.mqttUrl, { ...login, reconnectPeriod: 0, connectTimeout: 2000 });
    clients.push(client);
    return client;
  };
  const announce = (client: MqttClient, topic: string, config: Json) =>
    client.publishAsync(topic, JSON.stringify(config), { qos: 1, retain: true });
  const things = (householdId = hub.householdId) => hub.twins.list(householdId).map((twin) => twin.thing);
  const thingNamed = (name: string, householdId?: string) => things(householdId).find((thing) => thing.name === name);
  const refusal = (topic: string) =>
    eventually(
      () => lines.find((line) => line.level === 'warn' && line.message.includes(`config on ${topic} ignored`)),
      {
        what: `the refusal of ${topic}`,
      },
    );

  before(async () => {
    dataDir = await tempDir('triad-discovery-accounts-');
    hub = await start();
    // A bridge whose topics hold every other account's discovery topics too, made first: who
    // could have published a config is not who did, which the broker knows and keeps.
    const bridge = { name: 'Bridge', publish: ['homeassistant/#', 'bridge/#'], subscribe: ['bridge/#'] };
    for (const json of [bridge, { name: 'Frontdoor' }, { name: 'Sneaky' }]) {
      const made = await call('/api/devices', { method: 'POST', json });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      accounts[json.name] = made.body as (typeof accounts)[string];
    }
    frontdoor = await connect(accounts.Frontdoor);
    sneaky = await connect(accounts.Sneaky);
    anonymous = await connect();
  });

  after(async () => {
    for (const client of clients) await client.endAsync(true).catch(() => {});
    await hub?.stop();
  });

  it("cannot join, rename or re-id another account's device by naming its identifiers", async () => {
    await announce(frontdoor, 'homeassistant/lock/frontdoor/lock/config', {
      name: 'Lock',
      stat_t: 'zigbee2mqtt/Frontdoor',
      cmd_t: 'zigbee2mqtt/Frontdoor/set',
      dev: { ids: ['fd-1'], name: 'Front door' },
    });
    await eventually(() => hub.twins.get(hub.householdId, 'front-door'), { what: 'the front door' });
    await frontdoor.publishAsync('zigbee2mqtt/Frontdoor', 'LOCKED', { qos: 1, retain: true });
    await eventually(() => hub.twins.value(hub.householdId, 'front-door', 'lock.locked') === true, {
      what: 'the lock locked',
    });

    // Valid in every other way: the topics are Sneaky's own, so only the identifiers are at stake.
    await announce(sneaky, 'homeassistant/binary_sensor/sneaky/x/config', {
      name: 'x',
      stat_t: 'zigbee2mqtt/Sneaky',
      dev: { ids: ['fd-1'], name: 'Garage' },
    });
    const garage = await eventually(() => thingNamed('Garage'), { what: "Sneaky's thing" });
    assertFrontDoorKept();
    assert.notEqual(garage.id, 'front-door');
    assert.deepEqual(Object.keys(garage.actions), [], 'the lock is not commanded through it');
    assert.deepEqual(Object.keys(garage.meta?.entities as Json), ['binary_sensor/sneaky/x']);
  });

  it("cannot take over a device the hub's trusted side announced either", async () => {
    await announce(anonymous, 'homeassistant/lock/gate/config', {
      name: 'Gate',
      cmd_t: 'gate/set',
      dev: { ids: ['gate-1'], name: 'Gate' },
    });
    await eventually(() => hub.twins.get(hub.householdId, 'gate'), { what: 'the gate' });
    await announce(sneaky, 'homeassistant/binary_sensor/sneaky/y/config', {
      name: 'y',
      stat_t: 'zigbee2mqtt/Sneaky',
      dev: { ids: ['gate-1'], name: 'Shed' },
    });
    const shed = await eventually(() => thingNamed('Shed'), { what: "Sneaky's second thing" });
    assertGateKept();
    assert.notEqual(shed.id, 'gate');
  });

  it("refuses a config whose command topic is not the account's, and the hub never publishes there", async () => {
    const heard: string[] = [];
    await frontdoor.subscribeAsync('zigbee2mqtt/Frontdoor/set', { qos: 1 });
    frontdoor.on('message', (topic, payload) => heard.push(`${topic} ${payload}`));
    // Sneaky itself may not publish there: the broker refuses it (and cuts Sneaky off).
    const direct = await connect(accounts.Sneaky);
    const closed = new Promise<void>((resolve) => direct.once('close', () => resolve()));
    direct.publish('zigbee2mqtt/Frontdoor/set', 'UNLOCK-direct', { qos: 1 });
    await closed;

    const topic = 'homeassistant/switch/sneaky/lamp/config';
    await announce(sneaky, topic, {
      name: 'Night lamp',
      stat_t: 'zigbee2mqtt/Sneaky',
      cmd_t: 'zigbee2mqtt/Frontdoor/set',
      pl_on: 'UNLOCK',
      pl_off: 'LOCK',
      dev: { ids: ['sneaky-lamp'], name: 'Night lamp' },
    });
    const warning = await refusal(topic);
    assert.match(
      warning.message,
      /command_topic "zigbee2mqtt\/Frontdoor\/set" is not a topic this device's account receives/,
    );
    assert.equal(thingNamed('Night lamp'), undefined, 'no thing for the refused config');
    assert.equal((await call('/api/things/night-lamp/actions/turn_on', { method: 'POST', json: {} })).status, 404);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(heard, [], 'nothing was published on the front door');
  });

  it('judges a config by the account that sent it, not by another whose topics also hold it', async () => {
    const topic = 'homeassistant/switch/sneaky/relay/config';
    await announce(sneaky, topic, {
      name: 'Relay',
      stat_t: 'zigbee2mqtt/Sneaky',
      cmd_t: 'bridge/relay/set',
      dev: { ids: ['sneaky-relay'], name: 'Relay' },
    });
    assert.match((await refusal(topic)).message, /command_topic "bridge\/relay\/set" is not a topic/);
    assert.equal(thingNamed('Relay'), undefined);
  });

  it("refuses a config that reads another device's state or availability", async () => {
    const cases: Array<[string, Json, RegExp]> = [
      [
        'peek',
        { stat_t: 'zigbee2mqtt/Frontdoor' },
        /state_topic "zigbee2mqtt\/Frontdoor" is not a topic this device's account publishes/,
      ],
      [
        'alive',
        { stat_t: 'zigbee2mqtt/Sneaky', avty_t: 'zigbee2mqtt/Frontdoor/availability' },
        /availability_topic "zigbee2mqtt\/Frontdoor\/availability"/,
      ],
      ['list', { stat_t: 'zigbee2mqtt/Sneaky', avty: [{ t: 'gate/status' }] }, /availability\.topic "gate\/status"/],
    ];
    for (const [object, options, reason] of cases) {
      const topic = `homeassistant/sensor/sneaky/${object}/config`;
      await announce(sneaky, topic, { name: object, ...options, dev: { ids: [`sneaky-${object}`], name: object } });
      assert.match((await refusal(topic)).message, reason);
      assert.equal(thingNamed(object), undefined);
    }
  });

  it('takes a config naming its own topics, and commands it there', async () => {
    await announce(sneaky, 'homeassistant/switch/sneaky/plug/config', {
      name: 'Plug',
      stat_t: 'zigbee2mqtt/Sneaky',
      cmd_t: 'zigbee2mqtt/Sneaky/set',
      avty_t: 'zigbee2mqtt/Sneaky/availability',
      dev: { ids: ['sneaky-plug'], name: 'Sneaky plug' },
    });
    const plug = await eventually(() => thingNamed('Sneaky plug'), { what: "Sneaky's plug" });
    const commands = new Promise<string>((resolve) =>
      sneaky.once('message', (_topic, payload) => resolve(`${payload}`)),
    );
    await sneaky.subscribeAsync('zigbee2mqtt/Sneaky/set', { qos: 1 });
    const sent = await call(`/api/things/${plug.id}/actions/turn_on`, { method: 'POST', json: {} });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    assert.equal(await commands, 'ON');
  });

  it("keeps a second household's device to its own topics, as its account names them", async () => {
    const { household, token } = await hub.createHousehold('Second');
    const made = await call('/api/devices', { method: 'POST', json: { name: 'Porch' }, token });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const porch = await connect(made.body as (typeof accounts)[string]);
    await announce(porch, 'homeassistant/switch/porch/light/config', {
      name: 'Light',
      stat_t: 'zigbee2mqtt/Porch',
      cmd_t: 'zigbee2mqtt/Porch/set',
      dev: { ids: ['porch-1'], name: 'Porch light' },
    });
    await eventually(() => thingNamed('Porch light', household.id), { what: 'the porch light' });
    const topic = 'homeassistant/switch/porch/other/config';
    await announce(porch, topic, { name: 'Other', cmd_t: 'zigbee2mqtt/Frontdoor/set', dev: { ids: ['porch-2'] } });
    assert.match((await refusal(topic)).message, /command_topic "zigbee2mqtt\/Frontdoor\/set" is not a topic/);
  });

  it('still tells the accounts apart after a restart, when the broker hands the configs back', async () => {
    for (const client of clients.splice(0)) await client.endAsync(true).catch(() => {});
    await hub.stop();
    lines.length = 0;
    hub = await start();
    await eventually(() => thingNamed('Garage') && thingNamed('Shed') && thingNamed('Sneaky plug'), {
      what: "Sneaky's things back",
    });
    assertFrontDoorKept();
    assertGateKept();
    assert.equal(thingNamed('Night lamp'), undefined, 'a refused config stays refused');
    assert.match((await refusal('homeassistant/switch/sneaky/lamp/config')).message, /command_topic/);
  });

  function assertFrontDoorKept(): void {
    const door = hub.twins.get(hub.householdId, 'front-door')?.thing;
    assert.ok(door, 'the front door is still there');
    assert.equal(door.name, 'Front door');
    assert.ok(Object.hasOwn(door.actions, 'unlock'), 'it still carries out its actions');
    assert.deepEqual(Object.keys(door.meta?.entities as Json), ['lock/frontdoor/lock']);
    assert.equal(hub.twins.value(hub.householdId, 'front-door', 'lock.locked'), true, 'its state kept');
  }

  function assertGateKept(): void {
    const gate = hub.twins.get(hub.householdId, 'gate')?.thing;
    assert.ok(gate, 'the gate is still there');
    assert.equal(gate.name, 'Gate');
    assert.deepEqual(Object.keys(gate.meta?.entities as Json), ['lock/gate']);
  }
});
