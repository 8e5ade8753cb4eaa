import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { eventually, type HubProcess, startHubProcess, tempDir } from './helpers/hub-process.ts';
import { needService, services } from './helpers/services.ts';

const skip = await needService('mqtt');

/**
 * A device announced as several entities (a multi-sensor with a fan switch) is one thing. When the
 * hub starts again, the broker hands its retained configs back one at a time; the thing stored
 * before the restart must keep every property meanwhile, so no rule on it is unloaded, and a `for:`
 * that was waiting fires when it is due. A broken rules file is reported once, not at every
 * change of a thing.
 */
describe('a multi-entity discovered device across a hub restart', { skip }, () => {
  const run = randomBytes(4).toString('hex');
  const node = `triadtest_${run}`;
  const base = `triadtest-${run}`;
  const thingId = `multi-${run}`;
  const device = { identifiers: [`triadtest_multi_${run}`], name: `Multi ${run}` };
  const sensors = ['temperature', 'humidity', 'pressure', 'battery', 'illuminance'];
  const units: Record<string, string> = { temperature: '°C', humidity: '%', pressure: 'hPa', battery: '%' };
  const configs: Record<string, unknown> = {
    [`homeassistant/switch/${node}/fan/config`]: {
      unique_id: `${node}_fan`,
      name: 'Fan',
      command_topic: `${base}/fan/set`,
      state_topic: `${base}/fan`,
      device,
    },
  };
  for (const sensor of sensors) {
    configs[`homeassistant/sensor/${node}/${sensor}/config`] = {
      unique_id: `${node}_${sensor}`,
      name: sensor,
      device_class: sensor,
      unit_of_measurement: units[sensor] ?? 'lx',
      state_topic: `${base}/state`,
      value_template: `{{ value_json.${sensor} }}`,
      device,
    };
  }
  let client: MqttClient | undefined;
  let dataDir = '';
  const hubs: HubProcess[] = [];

  after(async () => {
    // The shared broker is left as it was found: every retained config cleared.
    for (const topic of Object.keys(configs)) await client?.publishAsync(topic, '', { retain: true, qos: 1 });
    await client?.endAsync();
    for (const hub of hubs) if (hub.child.exitCode === null && hub.child.signalCode === null) await hub.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps its rules and timer, says a broken file once, and drops an entity only when told', async () => {
    dataDir = await tempDir('triad-restart-rules-');
    const args = ['--mqtt-url', services.mqtt];
    client = await mqtt.connectAsync(services.mqtt, { clientId: `triadtest-${run}` });
    const fanCommands: number[] = [];
    await client.subscribeAsync(`${base}/fan/set`, { qos: 1 });
    client.on('message', (topic) => {
      if (topic === `${base}/fan/set`) fanCommands.push(Date.now());
    });

    let hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    for (const [topic, config] of Object.entries(configs))
      await client.publishAsync(topic, JSON.stringify(config), { retain: true, qos: 1 });
    const properties = (t: { properties?: Record<string, unknown> }) => Object.keys(t.properties ?? {}).sort();
    await eventually(
      async () => {
        const response = await hub.api(`/api/things/${thingId}`);
        if (response.status !== 200) return false;
        return properties((await response.json()) as { properties: Record<string, unknown> }).length === 6;
      },
      { what: 'the multi-sensor with all six properties', timeoutMs: 10_000 },
    );
    const before = properties(
      (await (await hub.api(`/api/things/${thingId}`)).json()) as { properties: Record<string, unknown> },
    );

    // A rule on each entity's property, so whichever config comes back last, some rule needs it;
    // and a file whose rule names a thing no device announces.
    const folder = join(dataDir, 'automations');
    await mkdir(folder, { recursive: true });
    const measured = before.filter((property) => property !== 'switch.on');
    const ruleId = (property: string) => `${property.replace('.', '-')}-${run}`;
    const rules = measured.map((property) => ({
      id: ruleId(property),
      triggers: [
        {
          trigger: 'numeric_state',
          thing: thingId,
          property,
          ...(property === 'sensor.humidity' ? { above: 60, for: '15s' } : { above: 100_000 }),
        },
      ],
      actions: [{ action: 'turn_on', thing: thingId }],
    }));
    await writeFile(join(folder, `multi-${run}.yaml`), rules.map((r) => `---\n${JSON.stringify(r)}\n`).join(''));
    await writeFile(
      join(folder, `broken-${run}.yaml`),
      `id: broken-${run}\ntriggers:\n  - trigger: state\n    thing: nowhere-${run}\n    property: switch.on\nactions:\n  - action: turn_on\n    thing: ${thingId}\n`,
    );
    for (const property of measured) {
      await eventually(
        async () => {
          const rule = (await (await hub.api(`/api/automations/${ruleId(property)}`)).json()) as { status?: string };
          return rule.status === 'active';
        },
        { what: `rule ${ruleId(property)} loaded`, timeoutMs: 10_000 },
      );
    }

    // The humidity crosses 60: the rule waits 15 s. The hub restarts while it waits.
    await client.publishAsync(`${base}/state`, JSON.stringify({ humidity: 50, temperature: 20 }), { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const crossed = Date.now();
    await client.publishAsync(`${base}/state`, JSON.stringify({ humidity: 70, temperature: 20 }), { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await hub.stop(), 0);
    hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);

    await eventually(() => fanCommands.length > 0, {
      what: 'the fan turned on by the waiting rule',
      timeoutMs: 25_000,
    });
    const late = fanCommands[0] - (crossed + 15_000);
    assert.ok(late < 1500, `the waiting rule fired on time, not ${late} ms late`);

    const after = properties(
      (await (await hub.api(`/api/things/${thingId}`)).json()) as { properties: Record<string, unknown> },
    );
    assert.deepEqual(after, before);
    const log = hub.output();
    assert.doesNotMatch(log, /rule no longer valid; unloaded/, 'no rule was unloaded while the configs came back');
    for (const property of measured) {
      const rule = (await (await hub.api(`/api/automations/${ruleId(property)}`)).json()) as { status?: string };
      assert.equal(rule.status, 'active', `rule ${ruleId(property)} is loaded`);
    }
    const notApplied = log
      .split('\n')
      .filter((l) => l.includes('rules file not applied') && l.includes(`broken-${run}`));
    assert.equal(notApplied.length, 1, `the broken file is reported once at start:\n${notApplied.join('\n')}`);

    // An entity really removed (an empty retained config, as Home Assistant does) still goes.
    await client.publishAsync(`homeassistant/sensor/${node}/pressure/config`, '', { retain: true, qos: 1 });
    await eventually(
      async () => {
        const thing = (await (await hub.api(`/api/things/${thingId}`)).json()) as {
          properties: Record<string, unknown>;
        };
        return !('sensor.pressure' in thing.properties) && 'sensor.humidity' in thing.properties;
      },
      { what: 'the pressure sensor removed by its empty config', timeoutMs: 5000 },
    );

    // A config gone from the broker while the hub was down is no removal the hub heard: the
    // entity stays on its thing, read from the store, and its state is still read, as Home
    // Assistant keeps an entity it knows until it is removed.
    assert.equal(await hub.stop(), 0);
    await client.publishAsync(`homeassistant/sensor/${node}/illuminance/config`, '', { retain: true, qos: 1 });
    hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    const kept = await eventually(
      async () => {
        // Sent plainly, and again until read: the hub may not read the topic yet just after start.
        await client?.publishAsync(`${base}/state`, JSON.stringify({ humidity: 71, illuminance: 123 }), { qos: 1 });
        const thing = (await (await hub.api(`/api/things/${thingId}`)).json()) as {
          properties: Record<string, unknown>;
          state: Record<string, unknown>;
        };
        return thing.state['sensor.humidity'] === 71 && thing.state['sensor.illuminance'] === 123 ? thing : null;
      },
      { what: 'the illuminance still read after its config was cleared while the hub was down', timeoutMs: 5000 },
    );
    assert.deepEqual(
      Object.keys(kept.properties).sort(),
      before.filter((p) => p !== 'sensor.pressure'),
    );
  });
});
