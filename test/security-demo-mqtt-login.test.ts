import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { Hub } from '../src/core/hub.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * The demo's devices log in to the embedded broker with a login the hub makes for them at each
 * start. Its password is compared as a digest in constant time; this holds the login to working
 * with its password and to nothing else. A real in-process hub, real MQTT clients.
 */
describe("security: the demo devices' MQTT login", () => {
  let hub: Hub;

  before(async () => {
    hub = await startTriad();
  });

  after(async () => {
    await hub.stop();
  });

  const connect = (username: string, password: string) =>
    mqtt.connectAsync(hub.mqttUrl, { username, password, reconnectPeriod: 0, connectTimeout: 3000 });

  it('lets a device in with its password and refuses a wrong, longer, shorter or empty one', async () => {
    const login = hub.security.demoDeviceLogin();
    const device = await connect(login.username, login.password);
    assert.equal(device.connected, true);
    await device.endAsync();
    for (const wrong of [`${login.password.slice(0, -1)}x`, `${login.password}x`, login.password.slice(1), '']) {
      await assert.rejects(connect(login.username, wrong), /Not authorized|Bad username or password/i, wrong);
    }
    await assert.rejects(connect(`${login.username}x`, login.password), /Not authorized|Bad username or password/i);
  });
});
