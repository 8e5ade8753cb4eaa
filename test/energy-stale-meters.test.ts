import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Adapter, AdapterContext } from '../src/adapters/adapter.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Command } from '../src/core/events.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService, SITE_THING } from '../src/energy/index.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * A site meter that stops reporting (offline by its last will, or silent) must not keep its last
 * figure: the surplus it measured is unknown, so solar charging stops; the house it measured is
 * unmeasured, so the fuse's headroom assumes the house reserve rather than nothing; and the
 * site's published figures say unknown rather than the old number.
 */

const START = Date.UTC(2026, 5, 10, 12);
const MINUTE = 60_000;

/** A charge point that takes the current it is given and draws it: 230 V a phase. */
class TestCharger implements Adapter {
  readonly name = 'test-charger';
  ctx!: AdapterContext;
  currentA = 0;
  phases = 1;
  /** What else reports when the car's draw changes (a grid meter that sees it at once). */
  onDraw?: () => void;

  constructor(readonly householdId: string) {}
  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
  }
  async stop(): Promise<void> {}
  async execute(command: Command): Promise<void> {
    this.currentA = Number(command.input.current);
    this.ctx.ingest([
      {
        householdId: this.householdId,
        thing: 'wallbox',
        property: 'charging.current_limit',
        value: this.currentA,
        source: 'test',
      },
      {
        householdId: this.householdId,
        thing: 'wallbox',
        property: 'charging.power',
        value: this.powerW / 1000,
        source: 'test',
      },
    ]);
    this.onDraw?.();
  }
  get powerW(): number {
    return this.currentA * 230 * this.phases;
  }
}

interface TestSite {
  hub: Hub;
  clock: VirtualClock;
  charger: TestCharger;
  api: (path: string, init?: RequestInit, status?: number) => Promise<Record<string, unknown>>;
  /** A meter reports its power, W. */
  report: (meter: string, watts: number) => void;
  /** What the site thing shows for a figure; null or undefined while unknown. */
  figure: (property: string) => unknown;
}

const hubs: Hub[] = [];

async function startSite(): Promise<TestSite> {
  const clock = new VirtualClock(START);
  const hub = new Hub({
    dataDir: await tempDir(),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    clock,
    log: createLogger({ level: 'silent' }),
  }).use(new EnergyService({ mqttChargers: false, tickMs: 10_000 }));
  await hub.start();
  hubs.push(hub);
  const householdId = hub.householdId;
  const charger = new TestCharger(householdId);
  await hub.services.addAdapter(charger);
  await hub.core.upsertThing({
    id: 'wallbox',
    householdId,
    kind: 'charger',
    name: 'Wallbox',
    adapter: 'test-charger',
    properties: vocabularyProperties(['charging.power', 'charging.current_limit']),
    actions: vocabularyActions('charging', ['set_current_limit']),
  });
  for (const [id, name] of [
    ['grid', 'Grid meter'],
    ['house', 'House meter'],
  ]) {
    await hub.core.upsertThing({
      id,
      householdId,
      kind: 'device',
      name,
      adapter: 'test-charger',
      properties: vocabularyProperties(['sensor.power']),
      actions: {},
    });
  }
  const api = async (path: string, init: RequestInit = {}, status = 200) => {
    const res = await fetch(hub.httpUrl + path, {
      ...init,
      headers: {
        authorization: `Bearer ${hub.ownerToken}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
    const body = res.status === 204 ? null : await res.json();
    assert.equal(res.status, status, JSON.stringify(body));
    return body as Record<string, unknown>;
  };
  const report = (meter: string, watts: number) =>
    hub.core.ingest([{ householdId, thing: meter, property: 'sensor.power', value: watts, source: 'test' }]);
  const figure = (property: string) => hub.core.getValue(householdId, SITE_THING, property);
  return { hub, clock, charger, api, report, figure };
}

afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.stop();
});

/** Solar mode on one phase: 1380 W (6 A) to start and to stop, after 1 and 3 minutes. */
async function solarMode(site: TestSite): Promise<void> {
  await site.api('/api/chargers/wallbox/mode', {
    method: 'PUT',
    body: JSON.stringify({
      mode: 'solar',
      phases: 1,
      solar: { onThresholdW: 1380, offThresholdW: 1380, onDelayMs: MINUTE, offDelayMs: 3 * MINUTE },
    }),
  });
}

/** The grid meter as physics has it: 500 W of house and the charger, less 4 kW of sun. */
const gridW = (site: TestSite) => 500 + site.charger.powerW - 4000;

/** Lets the control steps run for `ms` with the grid meter reporting every 10 s. */
async function sunnyFor(site: TestSite, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10_000) {
    site.report('grid', gridW(site));
    await site.clock.advance(10_000);
  }
}

const currentBecomes = (site: TestSite, amps: number, what: string) =>
  eventually(() => site.charger.currentA === amps, {
    what: `${what} (${amps} A, now ${site.charger.currentA} A)`,
  });

describe('energy: a site meter that stops reporting', () => {
  it('offline grid meter: its figures turn unknown at once and solar charging stops', async () => {
    const site = await startSite();
    site.report('grid', gridW(site));
    await site.api('/api/energy/site', { method: 'PUT', body: JSON.stringify({ grid: 'grid', limitKw: 11 }) });
    await solarMode(site);
    await sunnyFor(site, 2 * MINUTE);
    await currentBecomes(site, 15, '3500 W of surplus on one phase');
    assert.equal(typeof site.figure('site.grid_power'), 'number');
    assert.equal(typeof site.figure('site.surplus_power'), 'number');

    // The meter's last will: it is offline. Its figures go now, without waiting for a control step.
    const before = site.figure('site.grid_power');
    site.hub.core.setAvailability(site.hub.householdId, 'grid', false);
    await eventually(() => site.figure('site.grid_power') === null, {
      what: `the grid figure unknown (shows ${JSON.stringify(site.figure('site.grid_power'))}, was ${before})`,
    });
    assert.equal(site.figure('site.surplus_power'), null, 'no surplus shown that no one can measure');
    const reading = (await site.api('/api/energy/site')).reading as Record<string, unknown>;
    assert.equal(reading.gridW, null);
    assert.equal(reading.surplusW, null);

    // No more surplus charging: after the off-delay, as when a cloud comes (the minimum meanwhile).
    await site.clock.advance(MINUTE);
    await currentBecomes(site, 6, 'the minimum current within the off-delay');
    await site.clock.advance(2.5 * MINUTE);
    await currentBecomes(site, 0, 'stopped: the surplus cannot be measured');
    // And it does not start again while the meter is offline, whatever its last figure said.
    await site.clock.advance(5 * MINUTE);
    assert.equal(site.charger.currentA, 0);
    assert.equal(site.figure('site.grid_power'), null, 'still unknown, not the old figure');
  });

  it('grid meter back online: its figures return at once, and solar charging with them', async () => {
    const site = await startSite();
    site.report('grid', -3500);
    await site.api('/api/energy/site', { method: 'PUT', body: JSON.stringify({ grid: 'grid', limitKw: 11 }) });
    await solarMode(site);
    const householdId = site.hub.householdId;
    site.hub.core.setAvailability(householdId, 'grid', false);
    await eventually(() => site.figure('site.grid_power') === null, { what: 'the grid figure unknown while offline' });
    await site.clock.advance(3 * MINUTE);
    assert.equal(site.charger.currentA, 0, 'no charging on a surplus no one measures');

    // Back, with what it reports on coming back.
    site.report('grid', -3500);
    site.hub.core.setAvailability(householdId, 'grid', true);
    await eventually(() => site.figure('site.grid_power') === -3500, { what: 'the grid figure back at once' });
    assert.equal(site.figure('site.surplus_power'), 3500);
    await sunnyFor(site, 2 * MINUTE);
    await currentBecomes(site, 15, 'charging from the measured surplus again');
  });

  it('a silent meter counts as unknown after staleAfterS (the hub clock), and a report brings it back', async () => {
    const site = await startSite();
    site.report('grid', gridW(site));
    // The limit in force is shown, the default until one is set.
    assert.equal((await site.api('/api/energy/site')).staleAfterS, 300);
    // Bad values are refused with a clear message; a good one is kept.
    const refused = await site.api(
      '/api/energy/site',
      { method: 'PUT', body: JSON.stringify({ grid: 'grid', limitKw: 11, staleAfterS: 1 }) },
      400,
    );
    assert.match(JSON.stringify(refused), /staleAfterS/);
    await site.api('/api/energy/site', {
      method: 'PUT',
      body: JSON.stringify({ grid: 'grid', limitKw: 11, staleAfterS: 120 }),
    });
    assert.equal((await site.api('/api/energy/site')).staleAfterS, 120);
    await solarMode(site);
    await sunnyFor(site, 2 * MINUTE);
    await currentBecomes(site, 15, '3500 W of surplus on one phase');

    // The meter goes quiet, online as far as anyone said. Within the limit its figure holds.
    const lastW = gridW(site);
    site.report('grid', lastW);
    await site.clock.advance(110_000);
    assert.equal(site.figure('site.grid_power'), lastW, 'a meter 110 s quiet is trusted still');
    // Past it, the control step finds the figure too old without any report.
    await site.clock.advance(20_000);
    await eventually(() => site.figure('site.grid_power') === null, {
      what: `the silent grid meter unknown (shows ${JSON.stringify(site.figure('site.grid_power'))})`,
    });
    assert.equal(site.figure('site.surplus_power'), null);
    await site.clock.advance(3.5 * MINUTE);
    await currentBecomes(site, 0, 'stopped: the surplus cannot be measured');

    site.report('grid', -3500);
    await eventually(() => site.figure('site.grid_power') === -3500, { what: 'a fresh report shown at once' });
  });

  it('with the grid meter unknown the fuse headroom keeps the house reserve, never assuming the house draws nothing', async () => {
    const site = await startSite();
    const householdId = site.hub.householdId;
    site.charger.phases = 3;
    // 11 kW connection; the house's reserve 4 kW; a car that would take 16 A on three phases (11 kW).
    // The grid meter sees the car's draw at once: 500 W of house besides it.
    const gridSees = () => site.report('grid', 500 + site.charger.powerW);
    site.charger.onDraw = gridSees;
    gridSees();
    await site.api('/api/energy/site', {
      method: 'PUT',
      body: JSON.stringify({ grid: 'grid', limitKw: 11, houseReserveKw: 4 }),
    });
    await site.api('/api/chargers/wallbox/mode', {
      method: 'PUT',
      body: JSON.stringify({ mode: 'now', phases: 3, minCurrentA: 6, maxCurrentA: 16 }),
    });
    const headroom = async () => ((await site.api('/api/energy/site')).reading as { headroomW: number }).headroomW;
    assert.equal(await headroom(), 10_500, 'measured: 11 kW less the house’s 500 W');
    await site.clock.advance(10_000);
    await currentBecomes(site, 15.2, '10.5 kW of headroom on three phases');

    // The grid meter goes: the house may be drawing anything now, so the reserve is kept for it.
    site.charger.onDraw = undefined;
    site.hub.core.setAvailability(householdId, 'grid', false);
    await eventually(() => site.figure('site.grid_power') === null, { what: 'the grid figure unknown' });
    assert.equal(await headroom(), 7_000, '11 kW less the 4 kW house reserve');
    await site.clock.advance(10_000);
    await currentBecomes(site, 10.1, '7 kW of headroom on three phases (690 W an amp)');

    // Without a reserve set, half the connection is kept for the house rather than none.
    await site.api('/api/energy/site', { method: 'PUT', body: JSON.stringify({ grid: 'grid', limitKw: 11 }) });
    assert.equal(await headroom(), 5_500);

    // A house meter that can still say is used instead: the house is measured, no reserve assumed.
    site.report('house', 1_000);
    await site.api('/api/energy/site', {
      method: 'PUT',
      body: JSON.stringify({ grid: 'grid', house: 'house', limitKw: 11, houseReserveKw: 4 }),
    });
    assert.equal(await headroom(), 10_000, 'the house meter’s 1 kW, measured');

    // The grid back: measured again.
    site.charger.onDraw = gridSees;
    gridSees();
    site.hub.core.setAvailability(householdId, 'grid', true);
    assert.equal(await headroom(), 10_500);
  });
});
