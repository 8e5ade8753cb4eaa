import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { eventually, freePort, type HubProcess, startHubProcess } from '../helpers/hub-process.ts';

const SOC = 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current';

/**
 * Issue 4's first done-when, as a new user would try it: `triad start --demo`, then a plain
 * WebSocket client speaking VISS JSON to the hub's own VISS endpoint for the demo car.
 */
describe('the demo car over VISS, from `triad start --demo`', () => {
  let hub: HubProcess;
  let ws: WebSocket;
  const messages: Array<Record<string, unknown>> = [];

  before(async () => {
    hub = await startHubProcess({ args: ['--demo', '--mqtt-port', String(await freePort()), '--log-level', 'warn'] });
    await eventually(async () => (await hub.api('/api/things/family-car')).ok, {
      what: 'the demo car attached',
      timeoutMs: 15_000,
    });
    ws = new WebSocket(`${hub.url.replace('http', 'ws')}/viss/family-car`, ['VISSv3'], {
      headers: { authorization: `Bearer ${hub.token}` },
    });
    ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
  });

  after(async () => {
    ws?.close();
    await hub?.stop();
  });

  it('answers a get of Vehicle.Speed and refuses a set on that sensor with the spec’s error', async () => {
    ws.send(JSON.stringify({ action: 'get', path: 'Vehicle.Speed', requestId: 'g1' }));
    ws.send(JSON.stringify({ action: 'set', path: 'Vehicle.Speed', value: '10', requestId: 's1' }));
    const get = await eventually(() => messages.find((m) => m.requestId === 'g1'));
    const data = get.data as { path: string; dp: { value: string; ts: string } };
    assert.equal(data.path, 'Vehicle.Speed');
    assert.ok(Number.isFinite(Number(data.dp.value)));
    const set = await eventually(() => messages.find((m) => m.requestId === 's1'));
    const error = set.error as { number: string; reason: string };
    assert.equal(error.number, '400');
    assert.equal(error.reason, 'invalid_data');
  });

  it('notifies a change subscription on the state of charge while the car drives', async () => {
    ws.send(
      JSON.stringify({
        action: 'subscribe',
        path: SOC,
        filter: { variant: 'change', parameter: { 'logic-op': 'ne', diff: '0' } },
        requestId: 'sub1',
      }),
    );
    const ack = await eventually(() => messages.find((m) => m.requestId === 'sub1'));
    assert.equal(typeof ack.subscriptionId, 'string');
    // The demo car sets off within seconds of start; driving spends charge, so a change comes.
    const note = await eventually(
      () => messages.find((m) => m.action === 'subscription' && m.subscriptionId === ack.subscriptionId),
      { what: 'a state-of-charge notification', timeoutMs: 90_000 },
    );
    const dp = (note.data as { path: string; dp: { value: string } }).dp;
    assert.equal((note.data as { path: string }).path, SOC);
    assert.ok(Number(dp.value) > 0 && Number(dp.value) <= 100);
    const car = (await (await hub.api('/api/things/family-car')).json()) as { state: Record<string, unknown> };
    assert.equal(typeof car.state['battery.level'], 'number');
  });
});
