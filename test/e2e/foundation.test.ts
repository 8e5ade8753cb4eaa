import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { eventually, freePort, type HubProcess, startHubProcess, tempDir } from '../helpers/hub-process.ts';
import { needService, services } from '../helpers/services.ts';

const skipMosquitto = await needService('mqtt');

interface ThingJson {
  id: string;
  name: string;
  kind: string;
  state: Record<string, unknown>;
}

async function connect(url: string): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId: `triad-test-${randomBytes(4).toString('hex')}` });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/**
 * The foundation's "done when", exactly as a new user would check it: a Zigbee2MQTT light on the
 * machine's Mosquitto appears, reports, is commanded, confirms; the stream carries every change;
 * history survives SIGTERM and a restart.
 */
describe('foundation, end to end on the machine’s Mosquitto', { skip: skipMosquitto }, () => {
  const ieee = `0x00158d00${randomBytes(4).toString('hex')}`;
  const friendly = `Test light ${ieee.slice(-6)}`;
  const configTopic = `homeassistant/light/${ieee}/light/config`;
  const stateTopic = `zigbee2mqtt/${friendly}`;
  const commandTopic = `zigbee2mqtt/${friendly}/set`;
  let hub: HubProcess;
  let device: MqttClient;
  let thingId = '';

  before(async () => {
    hub = await startHubProcess({ args: ['--mqtt-url', services.mqtt] });
    device = await connect(services.mqtt);
  });

  after(async () => {
    // Leave the shared broker as we found it: clear the retained config and state.
    await device?.publishAsync(configTopic, '', { retain: true });
    await device?.publishAsync(stateTopic, '', { retain: true });
    await device?.endAsync();
    await hub?.stop();
  });

  it('discovers a retained Zigbee2MQTT light within a second', async () => {
    const config = {
      name: null,
      object_id: 'light',
      unique_id: `${ieee}_light_zigbee2mqtt`,
      schema: 'json',
      brightness: true,
      brightness_scale: 254,
      supported_color_modes: ['brightness'],
      command_topic: commandTopic,
      state_topic: stateTopic,
      availability: [{ topic: 'zigbee2mqtt/bridge/state', value_template: '{{ value_json.state }}' }],
      device: { identifiers: [`zigbee2mqtt_${ieee}`], name: friendly, manufacturer: 'IKEA', model: 'LED1545G12' },
      origin: { name: 'Zigbee2MQTT', sw: '2.1.0' },
    };
    const published = Date.now();
    await device.publishAsync(configTopic, JSON.stringify(config), { retain: true });
    const thing = await eventually(
      async () => {
        const things = (await (await hub.api('/api/things')).json()) as ThingJson[];
        return things.find((t) => t.name === friendly);
      },
      { what: 'the light in /api/things', timeoutMs: 3000 },
    );
    assert.ok(Date.now() - published < 1500, 'the light appeared promptly');
    thingId = thing.id;
    assert.equal(thing.kind, 'device');
    assert.ok('light.on' in thing.state && 'light.brightness' in thing.state);
  });

  it('keeps state, commands the device, confirms from its report, and streams every change', async () => {
    const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/api/stream`, {
      headers: { authorization: `Bearer ${hub.token}` },
    });
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', things: ['*'] }));
    await eventually(() => messages.some((m) => m.type === 'subscribed'), { what: 'subscription ack' });

    await device.publishAsync(stateTopic, JSON.stringify({ state: 'ON', brightness: 254, linkquality: 90 }));
    const on = await eventually(async () => {
      const t = (await (await hub.api(`/api/things/${thingId}`)).json()) as ThingJson;
      return t.state['light.on'] === true && t.state['light.brightness'] === 100 ? t : null;
    });
    assert.equal(on.state['light.brightness'], 100);

    const commands: string[] = [];
    await device.subscribeAsync(commandTopic);
    device.on('message', (topic, payload) => {
      if (topic === commandTopic) commands.push(payload.toString());
    });

    const response = await hub.api(`/api/things/${thingId}/actions/turn_off`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 202);
    const { commandId } = (await response.json()) as { commandId: string };
    assert.match(commandId, /\S+/);

    await eventually(() => commands.length > 0, { what: 'the command on the device’s command topic' });
    assert.deepEqual(JSON.parse(commands[0]), { state: 'OFF' });
    const sent = (await (await hub.api(`/api/commands/${commandId}`)).json()) as { status: string };
    assert.equal(sent.status, 'sent', 'not confirmed before the device reports');

    await device.publishAsync(stateTopic, JSON.stringify({ state: 'OFF', brightness: 254, linkquality: 90 }));
    await eventually(
      async () =>
        ((await (await hub.api(`/api/commands/${commandId}`)).json()) as { status: string }).status === 'confirmed',
      { what: 'command confirmed' },
    );

    const states = () => messages.filter((m) => m.type === 'state' && m.thing === thingId);
    await eventually(() => states().some((m) => m.property === 'light.on' && m.value === false), {
      what: 'the OFF change on the stream',
    });
    const seen = states().map((m) => `${m.property}=${m.value}`);
    assert.ok(seen.includes('light.on=true'));
    assert.ok(seen.includes('light.brightness=100'));
    assert.ok(seen.includes('light.on=false'));
    for (const m of states()) assert.ok(typeof m.ts === 'string' && !Number.isNaN(Date.parse(m.ts as string)));
    ws.close();
  });

  it('refuses a call without a token (401) and a bad action input (400) without sending anything', async () => {
    const anonymous = await fetch(`${hub.url}/api/things`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'unauthorized');

    const commands: string[] = [];
    device.on('message', (topic, payload) => {
      if (topic === commandTopic) commands.push(payload.toString());
    });
    const bad = await hub.api(`/api/things/${thingId}/actions/turn_on`, {
      method: 'POST',
      body: JSON.stringify({ brightness: 500 }),
    });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_input');
    assert.match(body.error.message, /brightness/);
    const unknown = await hub.api(`/api/things/${thingId}/actions/self_destruct`, { method: 'POST', body: '{}' });
    assert.equal(unknown.status, 404);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(commands, [], 'nothing was published for refused commands');
  });

  it('keeps history across a SIGTERM and a restart', async () => {
    const code = await hub.stop('SIGTERM');
    assert.equal(code, 0, 'clean exit on SIGTERM');
    hub = await startHubProcess({ args: ['--mqtt-url', services.mqtt], dataDir: hub.dataDir });
    const history = (await (await hub.api(`/api/things/${thingId}/history?property=light.on`)).json()) as {
      points: Array<{ value: unknown }>;
    };
    assert.deepEqual(
      history.points.map((p) => p.value),
      [true, false],
    );
    const thing = (await (await hub.api(`/api/things/${thingId}`)).json()) as ThingJson;
    assert.equal(thing.state['light.on'], false, 'the twin reloads its last state');
  });
});

describe('triad start on the embedded broker', () => {
  it('names the port and the flag when the HTTP port is taken', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const data = await tempDir();
      const child = spawn(
        process.execPath,
        [
          'bin/triad.js',
          'start',
          '--data',
          data,
          '--http-port',
          String(port),
          '--http-host',
          '127.0.0.1',
          '--mqtt-port',
          '0',
        ],
        { cwd: new URL('../../', import.meta.url).pathname },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.notEqual(code, 0);
      assert.match(err, new RegExp(`port ${port} is already in use`));
      assert.match(err, /--http-port/);
    } finally {
      blocker.close();
    }
  });

  it('a device that announced itself once, by a retained config, is still known after a restart', async () => {
    const mqttPort = await freePort();
    const args = ['--mqtt-port', String(mqttPort)];
    let hub = await startHubProcess({ args });
    let device: MqttClient | null = null;
    try {
      const made = await hub.api('/api/devices', { method: 'POST', body: JSON.stringify({ name: 'Test Plug' }) });
      assert.equal(made.status, 201);
      const login = (await made.json()) as { username: string; password: string };
      const url = `mqtt://127.0.0.1:${mqttPort}`;
      const join = () => mqtt.connectAsync(url, { ...login, reconnectPeriod: 0 });
      device = await join();
      const config = {
        unique_id: 'test_plug',
        schema: 'json',
        command_topic: 'zigbee2mqtt/Test Plug/set',
        state_topic: 'zigbee2mqtt/Test Plug',
        device: { identifiers: ['z2m_test_plug'], name: 'Test Plug' },
      };
      // Announced once, as `mosquitto_pub -r` or a device that does not listen for Home Assistant's status does.
      await device.publishAsync('homeassistant/light/test-plug/light/config', JSON.stringify(config), {
        retain: true,
        qos: 1,
      });
      const state = async () =>
        ((await (await hub.api('/api/things/test-plug')).json()) as ThingJson).state?.['light.on'];
      // Its state is subscribed once the config is in: report until the twin has it.
      await eventually(
        async () => {
          await device?.publishAsync('zigbee2mqtt/Test Plug', '{"state":"OFF"}');
          return (await state()) === false;
        },
        { what: 'the plug to be discovered and report' },
      );
      await device.endAsync();
      assert.equal(await hub.stop('SIGTERM'), 0);

      hub = await startHubProcess({ args, dataDir: hub.dataDir });
      device = await join();
      const commands: string[] = [];
      device.on('message', (_topic, payload) => commands.push(payload.toString()));
      await device.subscribeAsync('zigbee2mqtt/Test Plug/set', { qos: 1 });
      const sent = await hub.api('/api/things/test-plug/actions/turn_on', { method: 'POST', body: '{}' });
      assert.equal(sent.status, 202);
      const { commandId } = (await sent.json()) as { commandId: string };
      await eventually(() => commands.length > 0, { what: 'the command at the device after the restart' });
      await device.publishAsync('zigbee2mqtt/Test Plug', '{"state":"ON"}');
      await eventually(async () => (await state()) === true, { what: "the device's report after the restart" });
      const status = async () =>
        ((await (await hub.api(`/api/commands/${commandId}`)).json()) as { status: string }).status;
      await eventually(async () => (await status()) === 'confirmed', { what: 'the command confirmed by the report' });
    } finally {
      await device?.endAsync();
      await hub.stop();
    }
  });

  it('serves health without a token and writes the owner token with mode 0600', async () => {
    const mqttPort = await freePort();
    const hub = await startHubProcess({ args: ['--mqtt-port', String(mqttPort)] });
    try {
      const health = await fetch(`${hub.url}/api/health`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, 'ok');
      const { stat } = await import('node:fs/promises');
      const info = await stat(`${hub.dataDir}/owner.token`);
      assert.equal(info.mode & 0o777, 0o600);
      assert.match(hub.output(), /127\.0\.0\.1:\d+\/api/);
    } finally {
      await hub.stop();
    }
  });
});
