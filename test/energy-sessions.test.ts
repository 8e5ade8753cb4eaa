import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import type { Adapter, AdapterContext } from '../src/adapters/adapter.ts';
import { UNPLUG_WAIT_MS } from '../src/adapters/ocpp/central-system.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Command } from '../src/core/events.ts';
import { Hub, type HubServices, type Subsystem } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService, FINAL_READING_WAIT_MS } from '../src/energy/index.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import type { StoredChargingSession } from '../src/store/store.ts';
import { eventually, freePort, startHubProcess, tempDir } from './helpers/hub-process.ts';
import { storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/**
 * Charging sessions as a household sees them: their energy is what the charger's meter counted
 * (over every transaction of one plug-in, across reconnects), an open one outlives a restart and
 * a crash, and one whose charger goes is closed with what it had. Charge points speak OCPP 1.6J
 * over a real WebSocket, MQTT chargers over the hub's broker, and the store is SQLite and
 * PostgreSQL.
 */

const PASSWORD = 'Sessions-Key-0123456789';
const MINUTE = 60_000;

/** A session as GET /api/energy/sessions lists it. */
interface SessionRow {
  id: string;
  charger: string;
  vehicle: string | null;
  start: string;
  end: string | null;
  energyKwh: number;
  open: boolean;
}

/** An OCPP charge point's side of one WebSocket: frames sent and the answers awaited. */
class ChargePoint {
  readonly received: unknown[][] = [];
  private next = 1;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => this.received.push(JSON.parse(String(data)) as unknown[]));
  }

  static async connect(url: string, id: string): Promise<ChargePoint> {
    const socket = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, ['ocpp1.6'], {
        headers: { authorization: `Basic ${Buffer.from(`${id}:${PASSWORD}`).toString('base64')}` },
      });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return new ChargePoint(socket);
  }

  /** Sends a CALL and answers its CALLRESULT payload. */
  async call(action: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = `m${this.next++}`;
    this.socket.send(JSON.stringify([2, id, action, payload]));
    const answer = await eventually(() => this.received.find((f) => f[1] === id), { what: `the answer to ${action}` });
    assert.equal(answer[0], 3, `${action} was answered with ${JSON.stringify(answer)}`);
    return answer[2] as Record<string, unknown>;
  }

  status(status: string, at: number) {
    return this.call('StatusNotification', {
      connectorId: 1,
      errorCode: 'NoError',
      status,
      timestamp: new Date(at).toISOString(),
    });
  }

  async start(meterStartWh: number, at: number): Promise<number> {
    const answer = await this.call('StartTransaction', {
      connectorId: 1,
      idTag: 'B4A63CDF',
      meterStart: meterStartWh,
      timestamp: new Date(at).toISOString(),
    });
    return answer.transactionId as number;
  }

  meter(transactionId: number, energyWh: number, powerW: number, at: number) {
    return this.call('MeterValues', {
      connectorId: 1,
      transactionId,
      meterValue: [
        {
          timestamp: new Date(at).toISOString(),
          sampledValue: [
            { value: String(energyWh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
            { value: String(powerW), measurand: 'Power.Active.Import', unit: 'W' },
          ],
        },
      ],
    });
  }

  stop(transactionId: number, meterStopWh: number, at: number, reason = 'EVDisconnected') {
    return this.call('StopTransaction', {
      transactionId,
      meterStop: meterStopWh,
      timestamp: new Date(at).toISOString(),
      reason,
    });
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

/** The owner's API on a hub at `url`: JSON in and out, failing on a status other than `status`. */
function apiOf(target: () => { url: string; token: string }) {
  return async <T = Record<string, unknown>>(path: string, init: RequestInit = {}, status?: number): Promise<T> => {
    const { url, token } = target();
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(url + path, { ...init, headers });
    const body = res.status === 204 ? null : await res.json();
    if (status !== undefined) assert.equal(res.status, status, JSON.stringify(body));
    else assert.ok(res.ok, `${init.method ?? 'GET'} ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body as T;
  };
}

function inProcessHub(
  dataDir: string,
  clock: VirtualClock,
  first: Subsystem[] = [],
  energy = { mqttChargers: false },
  warnings?: string[],
) {
  const hub = new Hub({
    dataDir,
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
    clock,
    log: warnings
      ? createLogger({ level: 'warn', sink: (line) => warnings.push(`${line.message} ${JSON.stringify(line.fields)}`) })
      : createLogger({ level: 'silent' }),
  });
  for (const subsystem of first) hub.use(subsystem);
  return hub.use(new EnergyService({ ...energy, tickMs: 10_000 }));
}

async function registerChargePoint(
  api: ReturnType<typeof apiOf>,
  chargePointId: string,
  name: string,
): Promise<{ id: string; path: string }> {
  const body = await api<{ id: string; ocpp: { path: string } }>(
    '/api/chargers',
    { method: 'POST', body: JSON.stringify({ chargePointId, name, password: PASSWORD }) },
    201,
  );
  return { id: body.id, path: body.ocpp.path };
}

const wsUrl = (httpUrl: string, path: string) => httpUrl.replace('http', 'ws') + path;

const storeSuites = await storeBackends('triad-open-sessions-');

for (const backend of storeSuites) {
  describe(`open charging sessions in ${backend.name}`, { skip: backend.skip }, () => {
    const store = storeOf(backend);
    const session = (householdId: string, charger: string, updatedAt: number): StoredChargingSession => ({
      householdId,
      id: unique('ses'),
      charger,
      body: { id: 'x', charger, energyKwh: 1.25, meterKwh: 12.5, vehicle: null },
      updatedAt,
    });

    it('keeps, replaces and drops them, each household apart, and has them after reopening', async () => {
      const home = unique('hh');
      const other = unique('hh');
      const later = session(home, 'charger-a', T0 + 1000);
      const sooner = session(home, 'charger-b', T0);
      const foreign = session(other, 'charger-a', T0);
      for (const s of [later, sooner, foreign]) await store().saveOpenChargingSession(s);
      assert.deepEqual(await store().listOpenChargingSessions(home), [sooner, later], 'oldest first');

      const moved = { ...later, body: { ...later.body, energyKwh: 3.5, meterKwh: 14.75 }, updatedAt: T0 + 2000 };
      await store().saveOpenChargingSession(moved);
      assert.deepEqual(await store().listOpenChargingSessions(home), [sooner, moved], 'replaced, not added');

      await store().deleteOpenChargingSession(home, sooner.id);
      await store().deleteOpenChargingSession(other, moved.id); // another household's id: changes nothing
      assert.deepEqual(await store().listOpenChargingSessions(home), [moved]);
      assert.deepEqual(await store().listOpenChargingSessions(other), [foreign]);

      const reopened = await backend.open();
      try {
        assert.deepEqual(await reopened.listOpenChargingSessions(home), [moved]);
        const everyone = await reopened.listOpenChargingSessions();
        assert.ok(everyone.some((s) => s.id === foreign.id) && everyone.some((s) => s.id === moved.id));
      } finally {
        await reopened.close();
      }
    });
  });
}

describe("a session's energy is what the charger's meter counted", () => {
  const clock = new VirtualClock(Date.parse('2026-03-04T18:00:00Z'));
  let hub: Hub;
  const api = apiOf(() => ({ url: hub.httpUrl, token: hub.ownerToken }));
  const sessionsOf = async (charger: string) =>
    (await api<SessionRow[]>('/api/energy/sessions')).filter((s) => s.charger === charger);
  const chargerState = async (id: string) => (await api<{ state: Record<string, unknown> }>(`/api/things/${id}`)).state;

  before(async () => {
    hub = inProcessHub(await tempDir(), clock, [new EarlyReports(() => [])]);
    await hub.start();
  });

  after(async () => {
    await hub.stop();
  });

  it('counts 9.0 kWh for one plug-in with two transactions, a reconnect and a late StopTransaction', async () => {
    const charger = await registerChargePoint(api, 'CP-METER', 'Carport');
    const url = wsUrl(hub.httpUrl, charger.path);
    const now = () => clock.now();
    let cp = await ChargePoint.connect(url, 'CP-METER');
    await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
    await cp.status('Preparing', now());
    const first = await cp.start(10_000, now());
    await cp.status('Charging', now());
    await cp.meter(first, 10_000, 11_000, now());
    await clock.advance(10 * MINUTE);
    await cp.meter(first, 12_000, 11_000, now());
    await clock.advance(10 * MINUTE);
    // The car pauses: the first transaction ends, the cable stays in.
    await cp.stop(first, 14_500, now(), 'Local');
    await cp.status('SuspendedEV', now());
    const paused = await sessionsOf(charger.id);
    assert.equal(paused.length, 1, JSON.stringify(paused));
    assert.equal(paused[0].open, true);
    assert.equal(paused[0].energyKwh, 4.5, 'the meter’s 10.0 → 14.5 so far');

    const second = await cp.start(14_500, now());
    await cp.status('Charging', now());
    await cp.meter(second, 16_000, 3_000, now());
    // The connection drops and comes back; the transaction goes on.
    await cp.close();
    await eventually(
      async () => (await api<Array<{ id: string; connected: boolean }>>('/api/chargers'))[0]?.connected === false,
    );
    cp = await ChargePoint.connect(url, 'CP-METER');
    await clock.advance(30 * MINUTE);
    await cp.meter(second, 18_000, 3_000, now());
    assert.equal((await chargerState(charger.id))['charging.energy'], 3.5, 'this charge’s energy, past the reconnect');

    // This charge point says the cable went before it sends the transaction's last meter reading.
    const unplugged = now();
    await cp.status('Available', unplugged);
    assert.equal((await sessionsOf(charger.id))[0].open, true, 'the session waits for the last reading');
    await clock.advance(5_000);
    await cp.stop(second, 19_000, now());
    const done = await eventually(async () => {
      const list = await sessionsOf(charger.id);
      return list.length === 1 && !list[0].open && list[0];
    });
    // Power × time (11 kW for 20 min, 3 kW for 30 min) would have said about 5.2 kWh.
    assert.equal(done.energyKwh, 9, JSON.stringify(done));
    assert.equal(done.end, new Date(unplugged).toISOString(), 'it ended when the cable went');
    const state = await chargerState(charger.id);
    assert.equal(state['charging.connected'], false);
    assert.equal(state['charging.energy'], 4.5);
    await cp.close();
  });

  it('an unplug whose StopTransaction never comes still ends the session, after the wait', async () => {
    const charger = await registerChargePoint(api, 'CP-LOST', 'Lost stop');
    const cp = await ChargePoint.connect(wsUrl(hub.httpUrl, charger.path), 'CP-LOST');
    await cp.status('Preparing', clock.now());
    const tx = await cp.start(2_000, clock.now());
    await cp.meter(tx, 2_600, 7_000, clock.now());
    await cp.status('Available', clock.now());
    await clock.advance(UNPLUG_WAIT_MS + 1_000);
    const [done] = await sessionsOf(charger.id);
    assert.equal(done.open, false, JSON.stringify(done));
    assert.equal(done.energyKwh, 0.6);
    // That transaction is over: the next plug-in without one ends at its unplug, with no wait.
    await cp.status('Preparing', clock.now());
    await eventually(async () => (await sessionsOf(charger.id)).some((s) => s.open), { what: 'a second session' });
    await cp.status('Available', clock.now());
    await eventually(async () => (await sessionsOf(charger.id)).every((s) => !s.open), {
      what: 'the second session to end at once',
    });
    await cp.close();
  });

  it('counts on from the new reading when the meter goes back (the charger was replaced)', async () => {
    const householdId = hub.householdId;
    await hub.core.upsertThing({ ...testCharger(householdId), id: 'swapped', name: 'Swapped box' });
    const report = (property: string, value: unknown) =>
      hub.core.ingest([{ householdId, thing: 'swapped', property, value, source: 'test' }]);
    report('sensor.energy', 812.4);
    report('charging.connected', true);
    report('sensor.energy', 813.4);
    report('sensor.energy', 0.25); // a new charger, its register from zero
    report('sensor.energy', 1.5);
    report('charging.connected', false);
    const [done] = await sessionsOf('swapped');
    assert.equal(done?.open, false, JSON.stringify(done));
    assert.equal(done.energyKwh, 2.25, '1.0 kWh on the old meter, 1.25 on the new');
  });

  it('closes an open session, with its energy so far, when its charger is removed', async () => {
    const charger = await registerChargePoint(api, 'CP-GOING', 'Old wallbox');
    const cp = await ChargePoint.connect(wsUrl(hub.httpUrl, charger.path), 'CP-GOING');
    await cp.status('Preparing', clock.now());
    const tx = await cp.start(5_000, clock.now());
    await cp.status('Charging', clock.now());
    await clock.advance(5 * MINUTE);
    await cp.meter(tx, 7_250, 11_000, clock.now());
    const removedAt = clock.now();
    await api(`/api/chargers/${charger.id}`, { method: 'DELETE' }, 204);
    await hub.history.flush();
    const list = await sessionsOf(charger.id);
    assert.equal(list.length, 1, JSON.stringify(list));
    assert.equal(list[0].open, false, 'nothing is left open on a charger that is gone');
    assert.equal(list[0].energyKwh, 2.25);
    assert.equal(list[0].end, new Date(removedAt).toISOString());
    assert.deepEqual(await hub.store.listOpenChargingSessions(hub.householdId), []);
  });

  it('counts an MQTT charger’s energy meter, not its power × time', async () => {
    // A hub of its own: MQTT chargers come from Home Assistant discovery on its broker.
    const mqttClock = new VirtualClock(clock.now());
    const warnings: string[] = [];
    const mqttHub = inProcessHub(await tempDir(), mqttClock, [], { mqttChargers: true }, warnings);
    await mqttHub.start();
    const device = await mqtt.connectAsync(mqttHub.mqttUrl, { clientId: `wallbox-${randomBytes(4).toString('hex')}` });
    try {
      const mqttApi = apiOf(() => ({ url: mqttHub.httpUrl, token: mqttHub.ownerToken }));
      const box = 'wb-meter';
      const deviceInfo = { identifiers: [box], name: 'Garage wallbox' };
      const announce = (component: string, object: string, config: Record<string, unknown>) =>
        device.publishAsync(
          `homeassistant/${component}/${box}/${object}/config`,
          JSON.stringify({ ...config, device: deviceInfo }),
        );
      await announce('switch', 'enabled', { command_topic: `${box}/enabled/set`, state_topic: `${box}/enabled` });
      await announce('number', 'current', {
        command_topic: `${box}/current/set`,
        unit_of_measurement: 'A',
        min: 6,
        max: 16,
      });
      await announce('sensor', 'power', { state_topic: `${box}/power`, unit_of_measurement: 'W' });
      await announce('sensor', 'energy', {
        state_topic: `${box}/energy`,
        unit_of_measurement: 'kWh',
        device_class: 'energy',
      });
      const id = `charger-${box}`;
      const value = (property: string) => mqttHub.core.getValue(mqttHub.householdId, id, property);
      const report = async (topic: string, payload: string, property: string, expected: unknown) => {
        await device.publishAsync(`${box}/${topic}`, payload);
        await eventually(() => value(property) === expected, { what: `${property} to be ${String(expected)}` });
      };
      await eventually(() => mqttHub.core.getThing(mqttHub.householdId, id)?.properties['sensor.energy'], {
        what: 'the charger with its meter',
      });
      await report('energy', '100', 'sensor.energy', 100);
      await report('enabled', 'ON', 'charging.charging', true);
      await report('power', '3000', 'charging.power', 3);
      await mqttClock.advance(10 * MINUTE);
      await report('energy', '101.5', 'sensor.energy', 101.5);
      await mqttClock.advance(10 * MINUTE);
      await report('energy', '103.25', 'sensor.energy', 103.25);
      await report('enabled', 'OFF', 'charging.charging', false);
      await mqttHub.history.flush();
      const [done] = (await mqttApi<SessionRow[]>('/api/energy/sessions')).filter((s) => s.charger === id);
      assert.equal(done?.open, false, JSON.stringify(done));
      // 3 kW for 20 minutes would have been 1.0 kWh.
      assert.equal(done.energyKwh, 3.25);
      // Every report it sent is one of its own properties: nothing was refused.
      assert.deepEqual(
        warnings.filter((line) => line.includes('report refused')),
        [],
      );
    } finally {
      await device.endAsync();
      await mqttHub.stop();
    }
  });
});

describe("the last of a session's energy", () => {
  it('counts an MQTT charger’s final meter reading that comes just after it is switched off', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-06T18:00:00Z'));
    const box = await mqttWallbox('wb-final', clock);
    try {
      await box.report('energy', '100', 'sensor.energy', 100);
      await box.report('enabled', 'ON', 'charging.charging', true);
      await clock.advance(10 * MINUTE);
      await box.report('energy', '101.5', 'sensor.energy', 101.5);
      const off = clock.now();
      await box.report('enabled', 'OFF', 'charging.charging', false);
      // The box's meter reports its last seconds of charging a moment after its relay opened.
      await clock.advance(5_000);
      await box.report('energy', '101.75', 'sensor.energy', 101.75);
      const [done] = await box.sessions();
      assert.equal(done?.open, false, JSON.stringify(done));
      assert.equal(done.energyKwh, 1.75, 'the meter’s 100.0 → 101.75 kWh');
      assert.equal(done.end, new Date(off).toISOString(), 'it ended when the switch went off');
      await eventually(async () => (await box.hub.store.listOpenChargingSessions(box.hub.householdId)).length === 0, {
        what: 'the session to be recorded, its open copy gone',
      });
    } finally {
      await box.close();
    }
  });

  it('records a switched-off MQTT charger’s session without a final reading after the wait, and at once when it is switched on again', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-06T20:00:00Z'));
    const box = await mqttWallbox('wb-quiet', clock);
    const openCopies = async () => (await box.hub.store.listOpenChargingSessions(box.hub.householdId)).length;
    try {
      await box.report('energy', '200', 'sensor.energy', 200);
      await box.report('enabled', 'ON', 'charging.charging', true);
      await clock.advance(10 * MINUTE);
      await box.report('energy', '201', 'sensor.energy', 201);
      const firstOff = clock.now();
      await box.report('enabled', 'OFF', 'charging.charging', false);
      // No reading comes: the session is ended at once, and recorded as it is after the wait.
      assert.deepEqual(
        (await box.sessions()).map((s) => [s.open, s.energyKwh, s.end]),
        [[false, 1, new Date(firstOff).toISOString()]],
      );
      await clock.advance(FINAL_READING_WAIT_MS + 1_000);
      await eventually(async () => (await openCopies()) === 0, { what: 'the first session to be recorded' });
      // A reading long after is the meter's own beat, not this session's energy.
      await box.report('energy', '201.25', 'sensor.energy', 201.25);
      assert.deepEqual(
        (await box.sessions()).map((s) => [s.open, s.energyKwh]),
        [[false, 1]],
      );

      await box.report('enabled', 'ON', 'charging.charging', true);
      await clock.advance(10 * MINUTE);
      await box.report('energy', '202.25', 'sensor.energy', 202.25);
      const secondOff = clock.now();
      await box.report('enabled', 'OFF', 'charging.charging', false);
      await clock.advance(5_000);
      // Switched on again before any reading: the ended session is recorded with what it had.
      await box.report('enabled', 'ON', 'charging.charging', true);
      await box.report('energy', '202.5', 'sensor.energy', 202.5);
      assert.deepEqual(
        (await box.sessions()).map((s) => [s.open, s.energyKwh, s.end]),
        [
          [true, 0.25, null],
          [false, 1, new Date(firstOff).toISOString()],
          [false, 1, new Date(secondOff).toISOString()],
        ],
      );
      await eventually(async () => (await openCopies()) === 1, { what: 'only the third session’s open copy' });
    } finally {
      await box.close();
    }
  });

  it('records, when the hub stops, a session still waiting for its final reading, with what it had', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-06T22:00:00Z'));
    const dataDir = await tempDir();
    const box = await mqttWallbox('wb-stop', clock, dataDir);
    let off: number;
    try {
      await box.report('energy', '50', 'sensor.energy', 50);
      await box.report('enabled', 'ON', 'charging.charging', true);
      await clock.advance(10 * MINUTE);
      await box.report('energy', '50.5', 'sensor.energy', 50.5);
      off = clock.now();
      await box.report('enabled', 'OFF', 'charging.charging', false);
    } finally {
      await box.close();
    }
    const hub = inProcessHub(dataDir, clock);
    await hub.start();
    try {
      const api = apiOf(() => ({ url: hub.httpUrl, token: hub.ownerToken }));
      assert.deepEqual(
        (await api<SessionRow[]>('/api/energy/sessions')).map((s) => [s.open, s.energyKwh, s.end]),
        [[false, 0.5, new Date(off).toISOString()]],
        'recorded once, not taken up again as open',
      );
      assert.deepEqual(await hub.store.listOpenChargingSessions(hub.householdId), []);
    } finally {
      await hub.stop();
    }
  });

  it('closes a removed charger’s session with its power × time up to the removal, when it has no meter', async () => {
    const clock = new VirtualClock(Date.parse('2026-03-07T18:00:00Z'));
    const hub = inProcessHub(await tempDir(), clock, [new EarlyReports(() => [])]);
    await hub.start();
    try {
      const householdId = hub.householdId;
      const { 'sensor.energy': _meter, ...properties } = testCharger(householdId).properties;
      await hub.core.upsertThing({ ...testCharger(householdId), id: 'granny', name: 'Granny cable', properties });
      hub.core.ingest([
        { householdId, thing: 'granny', property: 'charging.connected', value: true, source: 'test' },
        { householdId, thing: 'granny', property: 'charging.power', value: 11, source: 'test' },
      ]);
      // Ten minutes of control steps (every 10 s), then 6 s more before the charger goes.
      await clock.advance(10 * MINUTE + 6_000);
      const removedAt = clock.now();
      await hub.core.removeThing(householdId, 'granny');
      const api = apiOf(() => ({ url: hub.httpUrl, token: hub.ownerToken }));
      const list = (await api<SessionRow[]>('/api/energy/sessions')).filter((s) => s.charger === 'granny');
      assert.equal(list.length, 1, JSON.stringify(list));
      assert.equal(list[0].open, false);
      assert.equal(list[0].end, new Date(removedAt).toISOString());
      // 11 kW for 10 min 6 s; without those 6 s it would be 1.8333.
      assert.equal(list[0].energyKwh, 1.8517);
    } finally {
      await hub.stop();
    }
  });
});

/** A hub with MQTT chargers, and a wallbox (switch, current, power and meter) announced to it by discovery. */
async function mqttWallbox(box: string, clock: VirtualClock, dataDir?: string) {
  const hub = inProcessHub(dataDir ?? (await tempDir()), clock, [], { mqttChargers: true });
  await hub.start();
  const device = await mqtt.connectAsync(hub.mqttUrl, { clientId: `wallbox-${randomBytes(4).toString('hex')}` });
  const deviceInfo = { identifiers: [box], name: 'Garage wallbox' };
  const announce = (component: string, object: string, config: Record<string, unknown>) =>
    device.publishAsync(
      `homeassistant/${component}/${box}/${object}/config`,
      JSON.stringify({ ...config, device: deviceInfo }),
    );
  await announce('switch', 'enabled', { command_topic: `${box}/enabled/set`, state_topic: `${box}/enabled` });
  await announce('number', 'current', { command_topic: `${box}/current/set`, unit_of_measurement: 'A' });
  await announce('sensor', 'power', { state_topic: `${box}/power`, unit_of_measurement: 'W' });
  await announce('sensor', 'energy', { state_topic: `${box}/energy`, unit_of_measurement: 'kWh' });
  const id = `charger-${box}`;
  const value = (property: string) => hub.core.getValue(hub.householdId, id, property);
  await eventually(() => hub.core.getThing(hub.householdId, id)?.properties['sensor.energy'], {
    what: 'the charger with its meter',
  });
  const api = apiOf(() => ({ url: hub.httpUrl, token: hub.ownerToken }));
  return {
    hub,
    id,
    /** Publishes the device's state and waits for the hub to have it. */
    async report(topic: string, payload: string, property: string, expected: unknown) {
      await device.publishAsync(`${box}/${topic}`, payload);
      await eventually(() => value(property) === expected, { what: `${property} to be ${String(expected)}` });
    },
    /** This charger's sessions as the API lists them: the open one first. */
    sessions: async () => (await api<SessionRow[]>('/api/energy/sessions')).filter((s) => s.charger === id),
    async close() {
      await device.endAsync();
      await hub.stop();
    },
  };
}

/** A charger the test plays itself: reports go straight into the hub, commands are taken as done. */
class TestCharger implements Adapter {
  readonly name = 'test-charger';
  ctx!: AdapterContext;
  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
  }
  async stop(): Promise<void> {}
  async execute(command: Command): Promise<void> {
    this.ctx.ingest([
      {
        householdId: command.householdId,
        thing: command.thing,
        property: 'charging.current_limit',
        value: Number(command.input.current),
        source: this.name,
      },
    ]);
  }
}

/** A charger with a plug and a meter, played by TestCharger. */
function testCharger(householdId: string) {
  return {
    id: 'carport',
    householdId,
    kind: 'charger' as const,
    name: 'Carport',
    adapter: 'test-charger',
    properties: vocabularyProperties([
      'charging.connected',
      'charging.power',
      'charging.current_limit',
      'sensor.energy',
    ]),
    actions: vocabularyActions('charging', ['set_current_limit']),
  };
}

/**
 * The charger's adapter, and whatever its device says while the hub starts: as an MQTT device's
 * retained state, it arrives before the energy service is listening.
 */
class EarlyReports implements Subsystem {
  readonly name = 'early-reports';
  constructor(private readonly reports: (hub: HubServices) => Parameters<HubServices['core']['ingest']>[0]) {}
  async start(hub: HubServices): Promise<void> {
    await hub.addAdapter(new TestCharger());
    hub.core.ingest(this.reports(hub));
  }
  async stop(): Promise<void> {}
}

describe('an open session outlives a restart', () => {
  const START = Date.parse('2026-03-05T19:00:00Z');
  const clock = new VirtualClock(START);
  let hub: Hub;
  const api = apiOf(() => ({ url: hub.httpUrl, token: hub.ownerToken }));
  const sessions = () => api<SessionRow[]>('/api/energy/sessions');

  after(async () => {
    await hub?.stop();
  });

  it('goes on after a restart with the car still plugged in, and ends when the charge point reports the unplug it missed', async () => {
    const dataDir = await tempDir();
    hub = inProcessHub(dataDir, clock);
    await hub.start();
    const charger = await registerChargePoint(api, 'CP-HOME', 'Driveway');
    let cp = await ChargePoint.connect(wsUrl(hub.httpUrl, charger.path), 'CP-HOME');
    await cp.status('Preparing', clock.now());
    const tx = await cp.start(5_000, clock.now());
    await cp.status('Charging', clock.now());
    await clock.advance(10 * MINUTE);
    await cp.meter(tx, 6_000, 7_000, clock.now());
    const [before] = await sessions();
    assert.equal(before.open, true);
    assert.equal(before.energyKwh, 1);
    await hub.stop();
    await cp.close();

    // Twenty minutes later the hub is back. The car was unplugged ten minutes into that.
    const unplugged = clock.now() + 10 * MINUTE;
    await clock.advance(20 * MINUTE);
    hub = inProcessHub(dataDir, clock);
    await hub.start();
    const restored = await sessions();
    assert.deepEqual(
      restored.map((s) => [s.id, s.open, s.energyKwh]),
      [[before.id, true, 1]],
      'the same session, open, with what it had',
    );
    cp = await ChargePoint.connect(wsUrl(hub.httpUrl, charger.path), 'CP-HOME');
    await cp.meter(tx, 7_800, 7_000, unplugged - 1_000);
    await cp.status('Available', unplugged);
    await cp.stop(tx, 8_000, unplugged);
    const done = await eventually(async () => {
      const list = await sessions();
      return list.length === 1 && !list[0].open && list[0];
    });
    assert.equal(done.id, before.id);
    assert.equal(done.energyKwh, 3, 'the meter’s 5.0 → 8.0 kWh, across the restart');
    assert.equal(done.end, new Date(unplugged).toISOString());
    // Its open copy goes once the finished session is in the event log (a write window later).
    await eventually(async () => (await hub.store.listOpenChargingSessions(hub.householdId)).length === 0, {
      what: 'the open copy dropped',
    });
    await cp.close();
    await hub.stop();
  });

  it('a hub stopped while an unplug waits for its StopTransaction reports the unplug, and the session ends there', async () => {
    const dataDir = await tempDir();
    hub = inProcessHub(dataDir, clock);
    await hub.start();
    const charger = await registerChargePoint(api, 'CP-WAIT', 'Side gate');
    const cp = await ChargePoint.connect(wsUrl(hub.httpUrl, charger.path), 'CP-WAIT');
    await cp.status('Preparing', clock.now());
    const tx = await cp.start(1_000, clock.now());
    await cp.status('Charging', clock.now());
    await clock.advance(10 * MINUTE);
    await cp.meter(tx, 2_200, 7_000, clock.now());
    const unplugged = clock.now();
    // The cable goes; this charge point would send its StopTransaction later, but the hub stops first.
    await cp.status('Available', unplugged);
    assert.equal((await sessions())[0].open, true, 'waiting for the last reading');
    await hub.stop();
    await cp.close();

    await clock.advance(5 * MINUTE);
    hub = inProcessHub(dataDir, clock);
    await hub.start();
    const done = await eventually(async () => {
      const list = await sessions();
      return list.length === 1 && !list[0].open && list[0];
    });
    assert.equal(done.energyKwh, 1.2, 'the meter’s 1.0 → 2.2 kWh');
    assert.equal(done.end, new Date(unplugged).toISOString(), 'ended when the cable went');
    await hub.stop();
  });

  it('a damaged stored session is left out with a logged error, and the hub and the other sessions carry on', async () => {
    const dataDir = await tempDir();
    hub = inProcessHub(dataDir, clock, [new EarlyReports(() => [])]);
    await hub.start();
    const householdId = hub.householdId;
    await hub.core.upsertThing(testCharger(householdId));
    hub.core.ingest([{ householdId, thing: 'carport', property: 'charging.connected', value: true, source: 'test' }]);
    const [open] = await sessions();
    assert.equal(open.open, true);
    await hub.stop();
    // Rows no hub wrote: text that is not JSON, and JSON that is not an object.
    const db = new Database(join(dataDir, 'triad.db'));
    const insert = db.prepare(
      'INSERT INTO open_charging_sessions (household_id, id, charger, body, updated_at) VALUES (?, ?, ?, ?, ?)',
    );
    insert.run(householdId, 'ses_damaged', 'gone-charger', '{"start": "2026-03', clock.now());
    insert.run(householdId, 'ses_null', 'gone-charger', 'null', clock.now());
    db.close();

    const warnings: string[] = [];
    hub = inProcessHub(dataDir, clock, [new EarlyReports(() => [])], { mqttChargers: false }, warnings);
    await hub.start();
    assert.deepEqual(
      (await sessions()).map((s) => [s.id, s.open]),
      [[open.id, true]],
      'the sound session carries on',
    );
    assert.equal(warnings.filter((line) => line.includes('unreadable')).length, 2, warnings.join('\n'));
    await hub.stop();
  });

  it('closes at start a session whose car was unplugged while the hub was down, at the time it was', async () => {
    const dataDir = await tempDir();
    hub = inProcessHub(dataDir, clock, [new EarlyReports(() => [])]);
    await hub.start();
    const householdId = hub.householdId;
    await hub.core.upsertThing(testCharger(householdId));
    const report = (property: string, value: unknown, ts?: number) =>
      hub.core.ingest([{ householdId, thing: 'carport', property, value, ts, source: 'test' }]);
    report('sensor.energy', 40);
    report('charging.connected', true);
    report('charging.power', 3.7);
    await clock.advance(30 * MINUTE);
    report('sensor.energy', 41.85);
    const [before] = await sessions();
    assert.equal(before.open, true);
    assert.equal(before.energyKwh, 1.85);
    await hub.stop();

    // While the hub was down the car charged a little more and left; the charger says so at once.
    const unplugged = clock.now() + 15 * MINUTE;
    await clock.advance(40 * MINUTE);
    hub = inProcessHub(dataDir, clock, [
      new EarlyReports(() => [
        { householdId, thing: 'carport', property: 'sensor.energy', value: 42.5, ts: unplugged, source: 'test' },
        { householdId, thing: 'carport', property: 'charging.connected', value: false, ts: unplugged, source: 'test' },
        { householdId, thing: 'carport', property: 'charging.power', value: 0, ts: unplugged, source: 'test' },
      ]),
    ]);
    await hub.start();
    await hub.history.flush();
    const after = await sessions();
    assert.equal(after.length, 1, JSON.stringify(after));
    assert.equal(after[0].id, before.id);
    assert.equal(after[0].open, false);
    assert.equal(after[0].energyKwh, 2.5, 'the meter’s 40.0 → 42.5 kWh');
    assert.equal(after[0].end, new Date(unplugged).toISOString());
    await eventually(async () => (await hub.store.listOpenChargingSessions(householdId)).length === 0, {
      what: 'the open copy to go',
    });
  });
});

describe('an open session outlives a crash', () => {
  it('is taken up by the restarted hub after a kill -9, and ends with all the meter counted', async () => {
    const args = async () => ['--mqtt-port', String(await freePort())];
    let hub = await startHubProcess({ args: await args() });
    const api = apiOf(() => ({ url: hub.url, token: hub.token }));
    try {
      const charger = await registerChargePoint(api, 'CP-CRASH', 'Barn');
      let cp = await ChargePoint.connect(wsUrl(hub.url, charger.path), 'CP-CRASH');
      await cp.status('Preparing', Date.now());
      const tx = await cp.start(20_000, Date.now());
      await cp.status('Charging', Date.now());
      await cp.meter(tx, 23_000, 7_400, Date.now());
      // The open session, as it is on disk: what the crash will leave behind.
      const db = join(hub.dataDir, 'triad.db');
      const stored = await eventually(
        () => {
          const reader = new Database(db, { readonly: true, fileMustExist: true });
          try {
            const row = reader.prepare('SELECT id, body FROM open_charging_sessions').get() as
              | { id: string; body: string }
              | undefined;
            return row && (JSON.parse(row.body) as { meterKwh: number }).meterKwh === 23 && row;
          } finally {
            reader.close();
          }
        },
        { what: 'the open session with its last meter reading on disk' },
      );
      assert.equal(await hub.stop('SIGKILL'), null, 'killed, not stopped');
      await cp.close();

      hub = await startHubProcess({ dataDir: hub.dataDir, args: await args() });
      const open = await api<SessionRow[]>('/api/energy/sessions');
      assert.deepEqual(
        open.map((s) => [s.id, s.open, s.energyKwh]),
        [[stored.id, true, 3]],
      );
      cp = await ChargePoint.connect(wsUrl(hub.url, charger.path), 'CP-CRASH');
      await cp.meter(tx, 25_000, 7_400, Date.now());
      await cp.stop(tx, 26_000, Date.now());
      await cp.status('Available', Date.now());
      const done = await eventually(async () => {
        const list = await api<SessionRow[]>('/api/energy/sessions');
        return list.length === 1 && !list[0].open && list[0];
      });
      assert.equal(done.id, stored.id);
      assert.equal(done.energyKwh, 6, 'the meter’s 20.0 → 26.0 kWh, across the crash');
      await cp.close();
    } finally {
      await hub.stop();
    }
  });
});
