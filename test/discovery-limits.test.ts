import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import type { Hub } from '../src/core/hub.ts';
import type { DataSchema } from '../src/model/schema.ts';
import type { Thing } from '../src/model/thing.ts';
import { eventually } from './helpers/hub-process.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * A device's discovery config says what it accepts (a thermostat's min_temp/max_temp, a bulb's
 * min_mireds/max_mireds or min_kelvin/max_kelvin). The hub checked commands only against the
 * vocabulary's generic bounds, so a set point of 33 °C on a 5–30 °C thermostat was accepted with
 * 202, sent, clamped or ignored by the device, and expired as "did not confirm". A real hub with
 * its embedded broker, a real MQTT client as the device, commands through the HTTP API.
 */
describe("a discovered device's own limits are checked before its command is sent", () => {
  let hub: Hub;
  let device: MqttClient;
  /** Every payload the device received, by topic, in the order it came. */
  const received = new Map<string, string[]>();

  /**
   * Announces a device's `component` entity, named `name`, with what `config` says; the thing, and
   * what the device hears on `commandTopic`.
   */
  const announce = async (
    component: string,
    id: string,
    name: string,
    config: Record<string, unknown>,
    commandTopic: string,
  ) => {
    const full = { name, unique_id: `limits_${id}`, ...config };
    await device.publishAsync(`homeassistant/${component}/limits/${id}/config`, JSON.stringify(full), {
      qos: 1,
      retain: true,
    });
    const thing = await eventually(
      () => hub.twins.list(hub.householdId).find((twin) => twin.thing.name === name)?.thing,
      { what: `the thing ${name}` },
    );
    return { thing, sent: await listen(commandTopic) };
  };

  /** Subscribes the device to a command topic; what it receives there. */
  const listen = async (topic: string): Promise<string[]> => {
    const payloads: string[] = [];
    received.set(topic, payloads);
    await device.subscribeAsync(topic, { qos: 1 });
    return payloads;
  };

  const act = (thing: string, action: string, input: Record<string, unknown>) =>
    ownerFetch(hub, `/api/things/${thing}/actions/${action}`, 'POST', input);

  const storedCommands = async () =>
    (await hub.store.listCommandsByStatus(['pending', 'sent', 'confirmed', 'failed', 'expired'])).length;

  /** Asserts the hub refuses the input as it refuses any bad input: 400 invalid_input, naming the field. */
  const refused = async (thing: string, action: string, input: Record<string, unknown>, field: string) => {
    const response = await act(thing, action, input);
    const body = (await response.json()) as { error?: { code: string; message: string } };
    assert.equal(response.status, 400, `${JSON.stringify(input)} is refused: ${JSON.stringify(body)}`);
    assert.equal(body.error?.code, 'invalid_input');
    assert.match(body.error?.message ?? '', new RegExp(`input\\.${field} must be [≥≤]`));
  };

  /** Sends an accepted command; its id. */
  const accepted = async (thing: string, action: string, input: Record<string, unknown>) => {
    const response = await act(thing, action, input);
    const body = (await response.json()) as { commandId?: string };
    assert.equal(response.status, 202, `${JSON.stringify(input)} is accepted: ${JSON.stringify(body)}`);
    assert.ok(body.commandId);
    return body.commandId;
  };

  /**
   * Sends a command the hub must accept, and the one payload the device then hears on `sent`:
   * the hub's one connection delivers in order, so anything a refused command had sent before
   * would come first.
   */
  const obeyed = async (thing: string, action: string, input: Record<string, unknown>, sent: string[]) => {
    const count = sent.length;
    const id = await accepted(thing, action, input);
    await eventually(() => sent.length > count, { what: `${JSON.stringify(input)} on the device` });
    assert.equal(
      sent.length,
      count + 1,
      `only ${JSON.stringify(input)} was sent: ${JSON.stringify(sent.slice(count))}`,
    );
    return { id, payload: sent[count] };
  };

  /** The device reports `payload` on `topic`; waits for the hub to show `value` for `property`. */
  const reported = async (topic: string, payload: string, thing: string, property: string, value: unknown) => {
    await device.publishAsync(topic, payload, { qos: 1 });
    await eventually(() => hub.twins.value(hub.householdId, thing, property) === value, {
      what: `${payload} on ${topic} read as ${String(value)}`,
    });
  };

  const statusOf = async (id: string) => {
    const response = await ownerFetch(hub, `/api/commands/${id}`);
    return ((await response.json()) as { status: string }).status;
  };

  /**
   * The ranges the API shows for an action's input field and for the property it sets, as
   * [minimum, maximum], and the unit the action takes.
   */
  const rangesOf = async (thing: string, action: string, field: string, property: string) => {
    const response = await ownerFetch(hub, `/api/things/${thing}`);
    // A property as the API shows it: its schema's fields beside its value.
    const body = (await response.json()) as Thing & { properties: Record<string, DataSchema> };
    const input = body.actions[action]?.input?.properties?.[field];
    const shown = body.properties[property];
    return { input: [input?.minimum, input?.maximum], property: [shown?.minimum, shown?.maximum], unit: input?.unit };
  };

  /** Announces a thermostat whose set point is read on `limits/<id>/target` and set on `…/set`. */
  const thermostat = (id: string, name: string, config: Record<string, unknown>) =>
    announce(
      'climate',
      id,
      name,
      { temp_stat_t: `limits/${id}/target`, temp_cmd_t: `limits/${id}/target/set`, ...config },
      `limits/${id}/target/set`,
    );

  const setPointRanges = (thing: string) =>
    rangesOf(thing, 'set_target_temperature', 'temperature', 'climate.target_temperature');

  before(async () => {
    // Devices log in anonymously, as on a household broker that lets them.
    hub = await startTriad({ mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true } });
    device = await mqtt.connectAsync(hub.mqttUrl, { clientId: 'discovery-limits-device' });
    device.on('message', (topic, payload) => received.get(topic)?.push(payload.toString()));
  });

  after(async () => {
    await device?.endAsync();
    await hub?.stop();
  });

  it('a 5–30 °C thermostat refuses 33 °C up front, sends and stores nothing, and confirms 22 °C', async () => {
    const { thing, sent } = await thermostat('hall', 'Hall thermostat', {
      min_temp: 5,
      max_temp: 30,
      temp_step: 0.5,
      temperature_unit: 'C',
    });
    assert.deepEqual(await setPointRanges(thing.id), { input: [5, 30], property: [5, 30], unit: '°C' });

    const before = await storedCommands();
    await refused(thing.id, 'set_target_temperature', { temperature: 33 }, 'temperature');
    await refused(thing.id, 'set_target_temperature', { temperature: 4.5 }, 'temperature');
    assert.equal(await storedCommands(), before, 'a refused command is not stored');

    assert.equal(sent.length, 0, 'nothing was sent');
    const { id, payload } = await obeyed(thing.id, 'set_target_temperature', { temperature: 22 }, sent);
    assert.equal(payload, '22');
    await reported('limits/hall/target', '22', thing.id, 'climate.target_temperature', 22);
    await eventually(async () => (await statusOf(id)) === 'confirmed', { what: 'the command confirmed' });

    // Any set point outside the range is refused; any inside is sent as it was asked.
    const outside = fc.oneof(
      fc.double({ min: -90, max: 5, noNaN: true, maxExcluded: true }),
      fc.double({ min: 30, max: 150, noNaN: true, minExcluded: true }),
    );
    await fc.assert(
      fc.asyncProperty(outside, async (temperature) => {
        await refused(thing.id, 'set_target_temperature', { temperature }, 'temperature');
      }),
      { numRuns: 40 },
    );
    const inside = fc.integer({ min: 10, max: 60 }).map((halves) => halves / 2);
    await fc.assert(
      fc.asyncProperty(inside, async (temperature) => {
        const obeying = await obeyed(thing.id, 'set_target_temperature', { temperature }, sent);
        assert.equal(obeying.payload, String(temperature));
      }),
      { numRuns: 25 },
    );
  });

  it('a Fahrenheit thermostat’s range is checked in °C, the unit the action takes', async () => {
    const { thing, sent } = await thermostat('porch', 'Porch thermostat', {
      min_temp: 41,
      max_temp: 86,
      temp_unit: 'F',
    });
    assert.deepEqual(await setPointRanges(thing.id), { input: [5, 30], property: [5, 30], unit: '°C' });
    await refused(thing.id, 'set_target_temperature', { temperature: 31 }, 'temperature');
    await refused(thing.id, 'set_target_temperature', { temperature: 4.9 }, 'temperature');

    // Whatever °C is accepted goes out in °F within the device's own 41–86 °F.
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 5, max: 30, noNaN: true }), async (celsius) => {
        const { payload } = await obeyed(thing.id, 'set_target_temperature', { temperature: celsius }, sent);
        const fahrenheit = Number(payload);
        assert.ok(fahrenheit >= 41 && fahrenheit <= 86, `${celsius} °C went out as ${payload} °F`);
      }),
      { numRuns: 20 },
    );

    // A report at the device's own bound is the bound the action takes, so it is kept.
    await reported('limits/porch/target', '86', thing.id, 'climate.target_temperature', 30);
  });

  it('a thermostat whose range is wider than the vocabulary’s 5–35 °C takes what it says, within what a temperature can be', async () => {
    // A limit written as text is read as Home Assistant reads it; 10⁹ °C is no temperature.
    const { thing, sent } = await thermostat('garage', 'Garage heater', { min_temp: '4', max_temp: 1e9 });
    assert.deepEqual(await setPointRanges(thing.id), { input: [4, 150], property: [4, 150], unit: '°C' });
    await refused(thing.id, 'set_target_temperature', { temperature: 3.5 }, 'temperature');
    assert.equal(sent.length, 0, 'nothing was sent');
    assert.equal((await obeyed(thing.id, 'set_target_temperature', { temperature: 4 }, sent)).payload, '4');
    await reported('limits/garage/target', '4', thing.id, 'climate.target_temperature', 4);
  });

  it('a range that makes no sense (its ends crossing) leaves the vocabulary’s own bounds', async () => {
    const odd = await thermostat('odd', 'Odd thermostat', { min_temp: 30, max_temp: 5 });
    assert.deepEqual(await setPointRanges(odd.thing.id), { input: [5, 35], property: [5, 35], unit: '°C' });
    // A lone end beyond the vocabulary's other one would refuse every set point.
    const cold = await thermostat('cold', 'Cold thermostat', { max_temp: 3 });
    assert.deepEqual(await setPointRanges(cold.thing.id), { input: [5, 35], property: [5, 35], unit: '°C' });
    // A lone end that fits narrows that end only.
    const warm = await thermostat('warm', 'Warm thermostat', { min_temp: 16 });
    assert.deepEqual(await setPointRanges(warm.thing.id), { input: [16, 35], property: [16, 35], unit: '°C' });
  });

  it('a bulb in mireds refuses colour temperatures it cannot make, in Kelvin, and makes those it can', async () => {
    const { thing: bulb, sent } = await announce(
      'light',
      'desk',
      'Desk bulb',
      {
        schema: 'json',
        command_topic: 'limits/desk/set',
        state_topic: 'limits/desk',
        brightness: true,
        supported_color_modes: ['color_temp'],
        min_mirs: 250,
        max_mirs: 454,
      },
      'limits/desk/set',
    );
    // 454 mireds is 2203 K, the warmest; 250 mireds is 4000 K, the coolest.
    assert.deepEqual(await rangesOf(bulb.id, 'turn_on', 'color_temp', 'light.color_temp'), {
      input: [2203, 4000],
      property: [2203, 4000],
      unit: 'K',
    });

    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.integer({ min: 1000, max: 2202 }), fc.integer({ min: 4001, max: 10000 })),
        async (kelvin) => {
          await refused(bulb.id, 'turn_on', { color_temp: kelvin }, 'color_temp');
        },
      ),
      { numRuns: 30 },
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2203, max: 4000 }), async (kelvin) => {
        const { payload } = await obeyed(bulb.id, 'turn_on', { color_temp: kelvin }, sent);
        const mireds = (JSON.parse(payload) as { color_temp: number }).color_temp;
        assert.ok(mireds >= 250 && mireds <= 454, `${kelvin} K went out as ${mireds} mireds`);
      }),
      { numRuns: 20 },
    );
    const { id, payload } = await obeyed(bulb.id, 'turn_on', { color_temp: 4000 }, sent);
    assert.equal((JSON.parse(payload) as { color_temp: number }).color_temp, 250, '4000 K is 250 mireds');
    await reported('limits/desk', JSON.stringify({ state: 'ON', color_temp: 250 }), bulb.id, 'light.color_temp', 4000);
    await eventually(async () => (await statusOf(id)) === 'confirmed', { what: 'the bulb confirmed' });
  });

  it('a bulb in Kelvin refuses what is outside its min_kelvin–max_kelvin', async () => {
    const { thing: bulb, sent } = await announce(
      'light',
      'shelf',
      'Shelf bulb',
      {
        command_topic: 'limits/shelf/set',
        color_temp_command_topic: 'limits/shelf/ct/set',
        color_temp_kelvin: true,
        min_kelvin: 2700,
        max_kelvin: 6500,
      },
      'limits/shelf/ct/set',
    );
    await refused(bulb.id, 'turn_on', { color_temp: 2000 }, 'color_temp');
    await refused(bulb.id, 'turn_on', { color_temp: 7000 }, 'color_temp');
    assert.equal(sent.length, 0, 'nothing was sent');
    assert.equal((await obeyed(bulb.id, 'turn_on', { color_temp: 3000 }, sent)).payload, '3000');
  });
});
