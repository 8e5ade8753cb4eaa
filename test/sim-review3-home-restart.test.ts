import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { DEMO_STATE_FILE } from '../src/sim/demo.ts';
import { SimulatedHome } from '../src/sim/home.ts';
import { createTriad } from '../src/triad.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { ownerJson } from './helpers/owner-api.ts';

/**
 * The demo's home devices come back after a restart as the household left them (the front door
 * unlocked, the hall light on and dimmed, the thermostat's mode and set-point, the coffee machine
 * on), as the car and the phones already did; a saved state that is damaged or tampered with
 * starts the devices afresh, says so in the log, and the demo runs.
 */

/** `triad start --demo` in this process on `dataDir`; its log lines go to `lines`. */
async function startDemo(dataDir: string, lines: LogLine[] = []): Promise<Hub> {
  const hub = createTriad({
    dataDir,
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    demo: true,
    log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
  });
  await hub.start();
  return hub;
}

const state = async (hub: Hub, thing: string) =>
  (await ownerJson<{ state: Record<string, unknown> }>(hub, `/api/things/${thing}`)).state;

/** What the user set, as the hub shows it. */
const userSettings = async (hub: Hub) => {
  const [door, hall, thermostat, coffee] = await Promise.all(
    ['front-door', 'hall-light', 'thermostat', 'coffee-machine'].map((thing) => state(hub, thing)),
  );
  return {
    door: door['lock.locked'],
    hall: { on: hall['light.on'], brightness: hall['light.brightness'] },
    thermostat: [thermostat['climate.mode'], thermostat['climate.target_temperature']],
    coffee: coffee['switch.on'],
  };
};

/** The demo's devices as they start on a new data folder. */
const AS_NEW = {
  door: true,
  hall: { on: false, brightness: 79 },
  thermostat: ['heat', 21],
  coffee: false,
};

describe('the demo home started again on the same data folder', () => {
  let dataDir = '';
  let hub: Hub | null = null;

  before(async () => {
    dataDir = await tempDir('triad-sim-review3-home-');
    hub = await startDemo(dataDir);
  });

  after(async () => {
    await hub?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the lock, light, thermostat and switch as they were set through the API', async () => {
    const h = hub!;
    assert.deepEqual(await userSettings(h), AS_NEW, 'the devices start as new on a new data folder');
    await ownerJson(h, '/api/things/front-door/actions/unlock', 'POST', {});
    await ownerJson(h, '/api/things/hall-light/actions/turn_on', 'POST', { brightness: 40 });
    await ownerJson(h, '/api/things/thermostat/actions/set_mode', 'POST', { mode: 'auto' });
    await ownerJson(h, '/api/things/thermostat/actions/set_target_temperature', 'POST', { temperature: 23.5 });
    await ownerJson(h, '/api/things/coffee-machine/actions/turn_on', 'POST', {});
    const set = await eventually(
      async () => {
        const now = await userSettings(h);
        const expected = { door: false, hall: { on: true, brightness: 40 }, thermostat: ['auto', 23.5], coffee: true };
        return JSON.stringify(now) === JSON.stringify(expected) && now;
      },
      { what: 'the devices to confirm the commands' },
    );
    await h.stop();
    hub = await startDemo(dataDir);
    // The devices announce themselves at start: what the hub shows then is what they came back as.
    assert.deepEqual(await userSettings(hub), set);
  });

  it('starts the devices afresh from a damaged or tampered state, says so, and runs', async () => {
    await hub!.stop();
    hub = null;
    const path = join(dataDir, DEMO_STATE_FILE);
    const saved = JSON.parse(await readFile(path, 'utf8')) as { home: Record<string, unknown> };
    const ieee = Object.keys(saved.home);
    assert.equal(ieee.length, 7, 'every device is saved, by its IEEE address');
    // The front door, the hall light, the thermostat and the sensor with values no command would
    // set; the rest as they were.
    const tampered = {
      ...saved,
      home: {
        ...saved.home,
        '0x000d6f0011e5f605': { state: 'OPEN_SESAME' },
        '0x000b57fffe1a2b01': [1, 2, 3],
        '0x00124b0022c3d707': { system_mode: 'heat', occupied_heating_setpoint: 1e308, local_temperature: 'hot' },
        '0x00158d0004a1b206': { temperature: -500, humidity: 45 },
        ['__proto__']: { state: 'ON' },
      },
    };
    await writeFile(path, JSON.stringify(tampered));
    const lines: LogLine[] = [];
    hub = await startDemo(dataDir, lines);
    const now = await userSettings(hub);
    assert.equal(now.door, true, 'the front door starts locked, as a new one');
    assert.deepEqual(now.hall, AS_NEW.hall);
    assert.deepEqual(now.thermostat, ['heat', 21]);
    assert.equal(now.coffee, true, 'a device whose state was whole keeps it');
    const warned = lines
      .filter((line) => line.level === 'warn' && /simulated device/.test(line.message))
      .map((line) => line.fields?.device);
    assert.deepEqual(new Set(warned), new Set(['Front door', 'Hall light', 'Thermostat', 'Living room sensor']));

    // A file that is not JSON at all: everything starts afresh, and the demo runs.
    await hub.stop();
    hub = null;
    await writeFile(path, '{"home": {"0x000d6f0011e5f605": {"state": "UNLO');
    hub = await startDemo(dataDir);
    assert.equal((await state(hub, 'front-door'))['lock.locked'], true);
    await ownerJson(hub, '/api/things/front-door/actions/unlock', 'POST', {});
    await eventually(async () => (await state(hub!, 'front-door'))['lock.locked'] === false, {
      what: 'the front door to answer a command after starting afresh',
    });
  });
});

describe('SimulatedHome.restore', () => {
  const home = () =>
    new SimulatedHome({ brokerUrl: 'mqtt://127.0.0.1:1', clock: new VirtualClock(0), random: () => 0.5 });

  it('takes back what saved() gave, device by device', () => {
    const first = home();
    first.device('Front door').restore({ state: 'UNLOCK' });
    first.device('Living room lamp').restore({ state: 'ON', brightness: 30, color_temp: 400 });
    first.device('Thermostat').restore({ system_mode: 'cool', occupied_heating_setpoint: 19, local_temperature: 24 });
    first.device('Living room sensor').restore({ temperature: 18.4, humidity: 60 });
    const second = home();
    second.restore(JSON.parse(JSON.stringify(first.saved())));
    assert.deepEqual(second.saved(), first.saved());
    assert.equal(second.device('Front door').state.state, 'UNLOCK');
    assert.equal(second.device('Thermostat').state.running_state, 'cool', 'the unit decides afresh from the room');
  });

  it('leaves a device as new for a value a command could not set, and ignores what is not a device', () => {
    const h = home();
    const fresh = home().saved();
    h.restore({
      '0x000b57fffe1a2b01': { state: 'ON', brightness: 9999 },
      '0x0017880108a2b302': { state: 'ON', color_temp: Number.NaN },
      '0x00124b0022c3d707': { system_mode: 'sauna' },
      '0x00158d0004a1b206': { temperature: '21' },
      '0x842e14fffe3c4d03': 'ON',
      constructor: { state: 'ON' },
      toString: null,
    });
    assert.deepEqual(h.saved(), fresh);
    for (const raw of [null, 'home', 42, [], [{ state: 'ON' }]]) {
      const other = home();
      other.restore(raw);
      assert.deepEqual(other.saved(), fresh, JSON.stringify(raw));
    }
  });
});
