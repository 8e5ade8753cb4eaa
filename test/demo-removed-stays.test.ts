import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, freePort, type HubProcess, startHubProcess } from './helpers/hub-process.ts';

const CAR = 'family-car';
const CHARGE_POINT = 'SIM-CP-1';

interface Charger {
  id: string;
  chargePointId: string | null;
  connected: boolean;
}
interface Person {
  name: string;
  trackers: Array<{ lastSeen: string | null }>;
}

async function json<T>(hub: HubProcess, path: string, init?: RequestInit): Promise<T> {
  const response = await hub.api(path, init);
  const text = await response.text();
  assert.ok(response.ok, `${init?.method ?? 'GET'} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

const demoCharger = async (hub: HubProcess) =>
  (await json<Charger[]>(hub, '/api/chargers')).find((c) => c.chargePointId === CHARGE_POINT);

/** Whether `thing` recorded a value of `property` since `since` (ms): that part of the demo reports. */
async function reportsSince(hub: HubProcess, thing: string, property: string, since: number): Promise<boolean> {
  const from = new Date(since).toISOString();
  const history = await json<{ points: unknown[] }>(
    hub,
    `/api/things/${thing}/history?property=${property}&from=${from}`,
  );
  return history.points.length > 0;
}

/** Both phones (Alex's and Sam's) reported since `since`. */
async function phonesReportSince(hub: HubProcess, since: number): Promise<boolean> {
  const people = (await json<Person[]>(hub, '/api/people')).filter((p) => p.name === 'Alex' || p.name === 'Sam');
  const trackers = people.flatMap((p) => p.trackers);
  return trackers.length === 2 && trackers.every((t) => t.lastSeen !== null && Date.parse(t.lastSeen) >= since);
}

/**
 * `triad start --demo` on one data folder, stopped and started again (`triad start` as its own
 * process, as a user runs it), with the state the demo keeps in `demo-state.json`.
 */
function demoOnOneFolder() {
  let hub: HubProcess | null = null;
  let dataDir = '';
  return {
    async start(): Promise<{ hub: HubProcess; startedAt: number }> {
      // One a failed check left running holds the data folder.
      await hub?.stop();
      const startedAt = Date.now();
      hub = await startHubProcess({
        args: ['--demo', '--mqtt-port', String(await freePort()), '--log-level', 'warn'],
        ...(dataDir ? { dataDir } : {}),
      });
      dataDir = hub.dataDir;
      return { hub, startedAt };
    },
    async stop(): Promise<void> {
      assert.equal(await hub?.stop(), 0);
      hub = null;
    },
    /** The state file as a demo from before the parts were kept would have left it. */
    async forgetParts(): Promise<void> {
      const file = join(dataDir, 'demo-state.json');
      const { parts, ...rest } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      assert.ok(parts, 'the demo keeps what became of its car and charger');
      await writeFile(file, JSON.stringify(rest));
    },
    async end(): Promise<void> {
      await hub?.stop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('the demo car the user removed', () => {
  const demo = demoOnOneFolder();
  after(() => demo.end());

  it('is not made again at the next start, and the site and phones run on without it', async () => {
    const { hub: first } = await demo.start();
    assert.equal((await first.api(`/api/vehicles/${CAR}`)).status, 200, 'a fresh data folder gets the car');
    assert.ok(await demoCharger(first), 'and the charger');
    assert.equal((await first.api(`/api/vehicles/${CAR}`, { method: 'DELETE' })).status, 204);
    await demo.stop();

    const { hub, startedAt } = await demo.start();
    assert.equal((await hub.api(`/api/vehicles/${CAR}`)).status, 404, 'the car stays removed');
    assert.equal((await hub.api(`/api/things/${CAR}`)).status, 404);
    // The charge point is there and connected without the demo car; the phones and meters report.
    await eventually(async () => (await demoCharger(hub))?.connected, { what: 'the charge point connected' });
    await eventually(() => phonesReportSince(hub, startedAt - 1_000), {
      what: 'both phones reporting',
      timeoutMs: 15_000,
    });
    await eventually(() => reportsSince(hub, 'grid-meter', 'sensor.power', startedAt - 1_000), {
      what: 'the grid meter reporting',
    });
    await demo.stop();
  });

  it('stays removed for a state file from before the demo kept what it made', async () => {
    await demo.forgetParts();
    const { hub } = await demo.start();
    assert.equal((await hub.api(`/api/vehicles/${CAR}`)).status, 404);
    assert.ok(await demoCharger(hub), 'the charger is still there');
    await demo.stop();
  });
});

describe('the demo charger the user removed', () => {
  const demo = demoOnOneFolder();
  after(() => demo.end());

  it('is not registered again at the next start, and the car, meters and phones run on', async () => {
    const { hub: first } = await demo.start();
    const charger = await eventually(() => demoCharger(first), { what: 'the demo charger' });
    // Its charge point has connected, so the state file has a meter for it (what an older file shows).
    await eventually(async () => (await demoCharger(first))?.connected, { what: 'the charge point connected' });
    assert.equal((await first.api(`/api/chargers/${charger.id}`, { method: 'DELETE' })).status, 204);
    await demo.stop();

    const { hub, startedAt } = await demo.start();
    assert.equal(await demoCharger(hub), undefined, 'the charger stays removed');
    assert.equal((await hub.api(`/api/things/${charger.id}`)).status, 404);
    await eventually(() => reportsSince(hub, CAR, 'vehicle.odometer', startedAt - 1_000), {
      what: 'the car reporting',
      timeoutMs: 30_000,
    });
    await eventually(() => reportsSince(hub, 'grid-meter', 'sensor.power', startedAt - 1_000), {
      what: 'the grid meter reporting',
    });
    await eventually(() => phonesReportSince(hub, startedAt - 1_000), {
      what: 'both phones reporting',
      timeoutMs: 15_000,
    });
    await demo.stop();
  });

  it('stays removed for a state file from before the demo kept what it made', async () => {
    await demo.forgetParts();
    const { hub } = await demo.start();
    assert.equal(await demoCharger(hub), undefined);
    assert.equal((await hub.api(`/api/vehicles/${CAR}`)).status, 200, 'the car is still there');
    await demo.stop();
  });
});
