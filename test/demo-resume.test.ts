import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, freePort, type HubProcess, startHubProcess } from './helpers/hub-process.ts';

const CAR = '/api/things/family-car';
const CHARGER = '/api/things/charger-sim-cp-1';

interface SavedDemo {
  car: { odometer: number; level: number; place: string | null; drive: unknown; cableConnected: boolean };
  chargePoint?: { meterWh: number };
}

/**
 * `triad start --demo` stopped and started again on one data folder: the simulated car carries
 * on where it was (its odometer never runs back in the history), and the charge point's meter
 * keeps counting, because the demo keeps its own state in the data folder.
 */
describe('the demo household across a restart', () => {
  let hub: HubProcess | null = null;
  let dataDir = '';
  const start = async () => {
    hub = await startHubProcess({
      args: ['--demo', '--mqtt-port', String(await freePort()), '--log-level', 'warn'],
      ...(dataDir ? { dataDir } : {}),
    });
    dataDir = hub.dataDir;
    return hub;
  };
  const state = async (h: HubProcess, path: string) =>
    ((await (await h.api(path)).json()) as { state?: Record<string, unknown> }).state ?? {};

  after(async () => {
    await hub?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('resumes the car and the charge point meter from the state saved at stop', async () => {
    const first = await start();
    await eventually(async () => typeof (await state(first, CAR))['vehicle.odometer'] === 'number', {
      what: 'the demo car reporting its odometer',
      timeoutMs: 30_000,
    });
    // Saved every second while it runs, not only at a stop: a hub killed outright loses at most a
    // second of the car's driving, so its odometer does not run back in the history.
    const savedAt = async () =>
      Date.parse((JSON.parse(await readFile(join(dataDir, 'demo-state.json'), 'utf8')) as { savedAt: string }).savedAt);
    // Watched until it has saved three more times, rather than read again after a fixed wait (on
    // a busy machine a wait of a few seconds can fall between two saves that were late). The
    // shortest gap between two saves seen pins the period: one save running late on a loaded
    // machine widens one gap, not all of them; a hub that saved every few seconds widens them all.
    const stamps = [await savedAt()];
    await eventually(
      async () => {
        const at = await savedAt();
        if (at > stamps.at(-1)!) stamps.push(at);
        return stamps.length >= 4;
      },
      { what: 'the demo state saved again while it runs', timeoutMs: 20_000 },
    );
    const gaps = stamps.slice(1).map((at, i) => at - stamps[i]);
    const stamped = stamps.map((at) => new Date(at).toISOString()).join(', ');
    assert.ok(Math.min(...gaps) < 2500, `saved at ${stamped}`);
    assert.ok(Date.now() - stamps.at(-1)! < 2500, 'and lately');
    assert.equal(await first.stop(), 0);

    const file = join(dataDir, 'demo-state.json');
    const saved = JSON.parse(await readFile(file, 'utf8')) as SavedDemo;
    assert.ok(saved.car.odometer >= 12_345_000, `saved odometer ${saved.car.odometer}`);
    assert.equal(typeof saved.chargePoint?.meterWh, 'number', 'the charge point meter is saved');
    assert.deepEqual(
      (await readdir(dataDir)).filter((name) => name.includes('demo-state') && name !== 'demo-state.json'),
      [],
      'no temporary file is left beside it',
    );

    // As if the car had driven 50 km and come home at 55 % since: the next start goes on from there.
    const odometer = Math.round(saved.car.odometer) + 50_000;
    await writeFile(
      file,
      JSON.stringify({
        ...saved,
        car: { ...saved.car, odometer, level: 55, place: 'home', drive: null, cableConnected: true },
        chargePoint: { meterWh: 123_456 },
      }),
    );

    const second = await start();
    const resumed = await eventually(
      async () => {
        const car = await state(second, CAR);
        return Number(car['vehicle.odometer']) >= odometer ? car : null;
      },
      { what: 'the car reporting the saved odometer', timeoutMs: 30_000 },
    );
    assert.ok(Number(resumed['vehicle.odometer']) < odometer + 10_000, 'it went on from the saved odometer');
    assert.ok(Math.abs(Number(resumed['battery.level']) - 55) < 2, `battery ${resumed['battery.level']} %`);

    const history = (await (await second.api(`${CAR}/history?property=vehicle.odometer`)).json()) as {
      points: Array<{ value: number }>;
    };
    const values = history.points.map((p) => p.value);
    assert.ok(values.length >= 2, `odometer history: ${values.join(', ')}`);
    for (let i = 1; i < values.length; i++)
      assert.ok(values[i] >= values[i - 1], `the odometer ran back: ${values[i - 1]} → ${values[i]}`);

    // The car at 55 % on its cable charges, and the charge point's register counts on from 123.456 kWh.
    const register = await eventually(
      async () => {
        const energy = (await state(second, CHARGER))['sensor.energy'];
        return typeof energy === 'number' && energy;
      },
      { what: "the charge point's energy register", timeoutMs: 45_000 },
    );
    assert.ok(register >= 123.456, `register ${register} kWh`);
  });
});
