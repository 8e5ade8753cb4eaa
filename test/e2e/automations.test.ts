import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { Browser } from 'playwright-core';
import type { Trace } from '../../web/src/api/types.ts';
import { browserMissing, launchChromium, type WatchedPage } from '../helpers/browser.ts';
import { signIn } from '../helpers/demo-dashboard.ts';
import { eventually, freePort, type HubProcess, startHubProcess, tempDir } from '../helpers/hub-process.ts';
import { runTriad } from '../helpers/run-cli.ts';

/**
 * The automation contract through the real `triad start` process and its embedded broker. A
 * Zigbee2MQTT-style sensor and fan, played here by one MQTT client, are the devices; the rule is
 * a YAML file dropped into `<data>/automations/`, as a user would. The contract's `for: 10m`
 * becomes `for: 4s` and later `for: 10s`, because real time passes here.
 */
describe('automations, end to end through `triad start`', () => {
  const ieee = (n: number) => `0x00158d00${randomBytes(3).toString('hex')}${n}`;
  const sensorIeee = ieee(1);
  const fanIeee = ieee(2);
  const sensorTopic = 'zigbee2mqtt/Living room sensor';
  const fanTopic = 'zigbee2mqtt/Living room fan';
  let dataDir = '';
  let mqttPort = 0;
  let hub: HubProcess;
  let device: MqttClient;
  /** When each ON command reached the fan, by the wall clock. */
  const fanOn: number[] = [];

  const rule = (forSeconds: number) => `id: fan-when-hot
name: Fan on when the living room is hot
mode: single
triggers:
  - trigger: numeric_state
    thing: living-room-sensor
    property: sensor.temperature
    above: 25
    for: ${forSeconds}s
actions:
  - action: turn_on
    thing: living-room-fan
`;

  async function announce(): Promise<void> {
    const device = (id: string, name: string) => ({
      identifiers: [`zigbee2mqtt_${id}`],
      name,
      manufacturer: 'Test',
      model: 'T1',
    });
    await client().publishAsync(
      `homeassistant/sensor/${sensorIeee}/temperature/config`,
      JSON.stringify({
        name: 'Temperature',
        object_id: 'living_room_sensor_temperature',
        unique_id: `${sensorIeee}_temperature_zigbee2mqtt`,
        state_topic: sensorTopic,
        device_class: 'temperature',
        state_class: 'measurement',
        unit_of_measurement: '°C',
        value_template: '{{ value_json.temperature }}',
        device: device(sensorIeee, 'Living room sensor'),
      }),
      { retain: true, qos: 1 },
    );
    await client().publishAsync(
      `homeassistant/switch/${fanIeee}/switch/config`,
      JSON.stringify({
        name: null,
        object_id: 'living_room_fan',
        unique_id: `${fanIeee}_switch_zigbee2mqtt`,
        state_topic: fanTopic,
        command_topic: `${fanTopic}/set`,
        value_template: '{{ value_json.state }}',
        payload_on: 'ON',
        payload_off: 'OFF',
        device: device(fanIeee, 'Living room fan'),
      }),
      { retain: true, qos: 1 },
    );
  }

  const client = () => device;
  const report = (temperature: number) =>
    device.publishAsync(sensorTopic, JSON.stringify({ temperature, humidity: 50 }), { qos: 1 });

  async function start(): Promise<void> {
    hub = await startHubProcess({ dataDir, args: ['--mqtt-port', String(mqttPort)] });
    // The embedded broker's retained messages go with the process: announce again to each one.
    await eventually(() => device.connected, { what: 'the device client to (re)connect', timeoutMs: 10_000 });
    await announce();
    await eventually(
      async () => {
        const things = (await (await hub.api('/api/things')).json()) as Array<{ id: string }>;
        const ids = things.map((t) => t.id);
        return ids.includes('living-room-sensor') && ids.includes('living-room-fan');
      },
      { what: 'the sensor and the fan in /api/things', timeoutMs: 10_000 },
    );
  }

  before(async () => {
    dataDir = await tempDir('triad-e2e-auto-');
    mqttPort = await freePort();
    hub = await startHubProcess({ dataDir, args: ['--mqtt-port', String(mqttPort)] });
    // The embedded broker takes only known clients: make the devices an account, as a user would.
    const account = await hub.api('/api/devices', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Living room devices',
        publish: ['zigbee2mqtt/#', 'homeassistant/#'],
        subscribe: ['zigbee2mqtt/#'],
      }),
    });
    assert.equal(account.status, 201, await account.clone().text());
    const login = (await account.json()) as { username: string; password: string };
    device = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: `e2e-devices-${randomBytes(3).toString('hex')}`,
      username: login.username,
      password: login.password,
      reconnectPeriod: 200,
    });
    // The fan: obeys its set topic and reports its new state, as Zigbee2MQTT does.
    device.on('message', (topic, payload) => {
      if (topic !== `${fanTopic}/set`) return;
      const state = payload.toString().includes('OFF') ? 'OFF' : 'ON';
      if (state === 'ON') fanOn.push(Date.now());
      void device.publishAsync(fanTopic, JSON.stringify({ state }), { qos: 1 });
    });
    await device.subscribeAsync(`${fanTopic}/set`, { qos: 1 });
    await hub.stop();
    await start();
  });

  after(async () => {
    await device?.endAsync(true);
    await hub?.stop();
  });

  it('a YAML file dropped into <data>/automations/ shows up in GET /api/automations', async () => {
    await mkdir(join(dataDir, 'automations'), { recursive: true });
    await writeFile(join(dataDir, 'automations', 'fan.yaml'), rule(4));
    const listed = await eventually(
      async () => {
        const rules = (await (await hub.api('/api/automations')).json()) as Array<Record<string, unknown>>;
        return rules.find((r) => r.id === 'fan-when-hot' && r.status === 'active');
      },
      { what: 'the rule from the file', timeoutMs: 10_000 },
    );
    assert.equal(listed.origin, 'file');
    assert.equal(listed.file, 'fan.yaml');
    assert.equal(listed.mode, 'single');
  });

  it('fires after `for:` above 25 °C, and not when the temperature drops back within it', async () => {
    await report(22);
    // Taken before the publish: the hub can hear the report (and start its 4 s) before the
    // broker's acknowledgement reaches us, so a time taken after it ran late by a few ms.
    const reported = Date.now();
    await report(27);
    await eventually(() => fanOn.length === 1, { what: 'the fan command', timeoutMs: 10_000 });
    assert.ok(fanOn[0] - reported >= 4000, `fired ${fanOn[0] - reported} ms after the report, not before 4 s`);

    const traces = await eventually(
      async () => {
        const list = (await (await hub.api('/api/automations/fan-when-hot/traces')).json()) as Array<{
          status: string;
          steps: Array<{ commands?: Array<{ status: string }> }>;
        }>;
        return list[0]?.steps[0]?.commands?.[0]?.status === 'confirmed' && list;
      },
      { what: 'the confirmed trace' },
    );
    assert.equal(traces[0].status, 'finished');

    await report(22);
    await report(28);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await report(23);
    // Well past the 4 s the rule waits: had the drop not cancelled it, the fan would have run.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    assert.equal(fanOn.length, 1, 'a drop within the wait cancels it');
  });

  it('a pending `for:` survives SIGTERM and a restart and fires at the right time, once', async () => {
    await writeFile(join(dataDir, 'automations', 'fan.yaml'), rule(10));
    await eventually(
      async () => {
        const rules = (await (await hub.api('/api/automations')).json()) as Array<{
          id: string;
          rule: { triggers: Array<{ for: string }> };
        }>;
        return rules.find((r) => r.id === 'fan-when-hot')?.rule.triggers[0].for === '10s';
      },
      { what: 'the changed rule', timeoutMs: 10_000 },
    );
    await report(22);
    const reported = Date.now();
    await report(29);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(await hub.stop('SIGTERM'), 0, 'the hub stops cleanly on SIGTERM');
    await start();
    await eventually(() => fanOn.length === 2, { what: 'the fan command after the restart', timeoutMs: 20_000 });
    const after = fanOn[1] - reported;
    assert.ok(after >= 10_000, `fired ${after} ms after the report, not before its 10 s`);
    // The wait is measured from the report, not restarted by the restart.
    assert.ok(after < 10_000 + 3000, `fired ${after} ms after the report, close to its 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(fanOn.length, 2, 'and only once');
  });

  it('`triad replay` over the recorded history returns the runs and sends nothing', async () => {
    const from = new Date(Date.now() - 10 * 60_000).toISOString();
    const to = new Date().toISOString();
    await hub.stop();
    const sentBefore = fanOn.length;
    await writeFile(join(dataDir, 'replay-rule.yaml'), rule(4));
    const { code, stdout, stderr } = await runTriad([
      'replay',
      join(dataDir, 'replay-rule.yaml'),
      ...['--from', from, '--to', to, '--data', dataDir],
    ]);
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as {
      runs: Array<{ at: string; actions: Array<{ action: string; thing: string }> }>;
    };
    // 27 °C held past 4 s and 29 °C held past 4 s (until the end of the record) are runs; 28 °C
    // dropped back after 1.5 s and is not.
    assert.equal(result.runs.length, 2, stdout);
    for (const run of result.runs) {
      assert.deepEqual(
        run.actions.map((a) => [a.action, a.thing]),
        [['turn_on', 'living-room-fan']],
      );
    }
    assert.ok(Date.parse(result.runs[0].at) < Date.parse(result.runs[1].at));
    assert.equal(fanOn.length, sentBefore, 'the fan received nothing');
  });
});

/**
 * A long run's trace keeps its first and last steps (the hub's TRACE_STEPS, 100); the dashboard's
 * trace view, in Debian's Chromium, says where the rest were left out and how many. Needs
 * `npm run build` after web/src changes.
 */
describe('a long run in the dashboard’s trace view', { skip: browserMissing() ?? false }, () => {
  const ROUNDS = 2000;
  let hub: HubProcess;
  let browser: Browser;
  const watched: WatchedPage[] = [];

  before(async () => {
    hub = await startHubProcess({
      dataDir: await tempDir('triad-e2e-long-trace-'),
      args: ['--mqtt-port', String(await freePort()), '--log-level', 'warn'],
    });
    const created = await hub.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({
        id: 'count-a-lot',
        name: 'Count a lot',
        triggers: [{ trigger: 'webhook', webhook_id: 'long-run-hook-71c3e9' }],
        actions: [{ repeat: { count: ROUNDS, sequence: [{ variables: { round: 1 } }] } }],
      }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it('shows the first steps, a line for those not kept, then the last steps', async () => {
    const fired = await hub.api('/api/automations/webhooks/long-run-hook-71c3e9', { method: 'POST', body: '{}' });
    assert.equal(fired.status, 200, await fired.clone().text());
    const [trace] = await eventually(
      async () => {
        const list = (await (await hub.api('/api/automations/count-a-lot/traces')).json()) as Trace[];
        return list[0]?.status === 'finished' && list;
      },
      { what: 'the long run finished', timeoutMs: 15_000 },
    );
    // The repeat step and its ROUNDS rounds, less the 100 kept.
    assert.deepEqual(trace.omittedSteps, { after: 50, count: 1 + ROUNDS - 100 });

    const page = await signIn(browser, hub, watched);
    await page.goto(`${hub.url}/#/automations`);
    await page.getByRole('button', { name: 'Traces of Count a lot' }).click();
    const run = page.locator('details.trace').first();
    await run.locator('summary').click();
    const items = run.locator('ol.timeline > li');
    await items.last().waitFor();
    const texts = await items.allTextContents();
    // The trigger, the first 50 steps, the line, the last 50.
    assert.equal(texts.length, 1 + 50 + 1 + 50, texts.join('\n'));
    assert.match(texts[0], /^Trigger/);
    assert.match(texts[1], /repeat/);
    // Grouped as the browser's locale groups thousands (1,901 in English).
    assert.match(texts[51], /^… 1\D?901 steps not kept …$/, texts[51]);
    assert.ok(texts.slice(1, 51).every((text) => !text.includes('not kept')));
    assert.ok(
      texts.slice(52).every((text) => /variables/.test(text)),
      texts.slice(52).join('\n'),
    );
  });

  it('no console errors', () => {
    for (const { errors } of watched) assert.deepEqual(errors, []);
  });
});
