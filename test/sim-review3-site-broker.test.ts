import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import mqtt from 'mqtt';
import { EmbeddedBroker } from '../src/adapters/mqtt/broker.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { ownerJson } from './helpers/owner-api.ts';

/**
 * Two demos (two data folders, two hubs) on one broker given with --mqtt-url, in one process as a
 * container runs them (the same process id): each energy site keeps its own MQTT client (its id
 * was `triad-sim-site-<pid>`, so one kicked the other off) and its own meters (they shared one
 * state topic and one set of discovery configs, so each hub read whichever site published last).
 * A broker that restarts without its retained messages has the meters announced again.
 */

/** 21:00 UTC: both cars are home from work and plugged in; no sun. */
const START = Date.parse('2026-01-05T21:00:00Z');

interface SiteView {
  grid: string;
  solar: string;
  house: string;
  reading: { gridW: number; solarW: number; houseW: number; chargersW: number };
}

describe('two demo sites on one broker', () => {
  let broker: EmbeddedBroker;
  const hubs: Hub[] = [];
  const dirs: string[] = [];
  const clocks = [new VirtualClock(START), new VirtualClock(START)];

  /** Both hubs' simulated time in 1 s steps, with real time between them for the sockets. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 1_000) {
      for (const clock of clocks) await clock.advance(1_000);
      await delay(10);
    }
    await delay(100);
  };

  before(async () => {
    // A broker of neither hub's: as Mosquitto would be, without a login.
    broker = new EmbeddedBroker({ port: 0, host: '127.0.0.1' });
    await broker.start();
    for (const clock of clocks) {
      const dataDir = await tempDir('triad-sim-review3-site-');
      dirs.push(dataDir);
      const hub = createTriad({
        dataDir,
        clock,
        http: { port: 0, host: '127.0.0.1' },
        mqtt: { url: broker.url },
        demo: true,
        log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
      });
      await hub.start();
      hubs.push(hub);
    }
  });

  after(async () => {
    for (const hub of hubs) await hub.stop();
    await broker?.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("gives each site meters of its own, and each hub's site reads its own", async () => {
    const sites = (await Promise.all(hubs.map((hub) => ownerJson(hub, '/api/energy/site')))) as SiteView[];
    const [first, second] = sites;
    for (const site of sites) assert.match(site.grid, /^grid-meter-[a-z0-9]+$/);
    assert.notEqual(first.grid, second.grid);
    assert.notEqual(first.house, second.house);
    // The first charges now, the second not at all: each grid meter carries its own charger.
    await ownerJson(hubs[0], '/api/chargers/charger-sim-cp-1/mode', 'PUT', { mode: 'now' });
    await ownerJson(hubs[1], '/api/chargers/charger-sim-cp-1/mode', 'PUT', { mode: 'off' });
    await run(40_000);
    const readings = (await Promise.all(hubs.map((hub) => ownerJson(hub, '/api/energy/site')))).map(
      (site: SiteView) => site.reading,
    );
    assert.ok(readings[0].chargersW > 10_000, `first charges: ${JSON.stringify(readings[0])}`);
    assert.equal(readings[1].chargersW, 0, `second does not: ${JSON.stringify(readings[1])}`);
    for (const reading of readings) {
      // grid = house + chargers − solar, from the hub's own meters and its own charger.
      const expected = reading.houseW + reading.chargersW - reading.solarW;
      assert.ok(Math.abs(reading.gridW - expected) < 50, `grid ${reading.gridW} W for ${JSON.stringify(reading)}`);
    }
  });

  it('announces the meters again to a broker that restarted without its retained messages', async () => {
    const port = Number(new URL(broker.url).port);
    await broker.stop();
    broker = new EmbeddedBroker({ port, host: '127.0.0.1' });
    await broker.start();
    const sites = (await Promise.all(hubs.map((hub) => ownerJson(hub, '/api/energy/site')))) as SiteView[];
    const tags = sites.map((site) => site.grid.replace('grid-meter-', ''));
    const watcher = await mqtt.connectAsync(broker.url, { clientId: 'sim-review3-watcher' });
    try {
      const configs = new Set<string>();
      watcher.on('message', (topic, payload) => payload.length > 0 && configs.add(topic));
      await watcher.subscribeAsync('homeassistant/sensor/+/config');
      await eventually(
        async () => {
          await run(1_000);
          return tags.every((tag) =>
            ['grid', 'solar', 'house'].every((meter) => configs.has(`homeassistant/sensor/sim_${meter}_${tag}/config`)),
          );
        },
        { what: "both sites' meters announced again", timeoutMs: 15_000 },
      );
    } finally {
      await watcher.endAsync();
    }
    // And their readings go on reaching their hubs.
    const before = await ownerJson(hubs[0], `/api/things/${sites[0].house}`);
    await eventually(
      async () => {
        await run(10_000);
        const now = await ownerJson(hubs[0], `/api/things/${sites[0].house}`);
        return now.properties['sensor.power'].ts !== before.properties['sensor.power'].ts;
      },
      { what: 'a new house reading after the broker came back', timeoutMs: 15_000 },
    );
  });

  it("keeps each home's devices apart, and one demo stopping leaves the other's online", async () => {
    /** The things a hub has of the demo's hall light and front door, by name, and whether each is online. */
    const devices = async (hub: Hub) =>
      ((await ownerJson(hub, '/api/things')) as Array<{ name: string; online: boolean | null }>).filter((thing) =>
        ['Hall light', 'Front door'].includes(thing.name),
      );
    // Each hub reads the broker's plain topics (the default household's), so it sees both homes;
    // they are two homes, not one whose commands and states both demos share.
    await eventually(async () => (await devices(hubs[0])).length === 4, {
      what: "both homes' devices on the first hub",
    });
    assert.ok((await devices(hubs[0])).every((thing) => thing.online === true));
    await hubs[1].stop();
    hubs.pop();
    await run(2_000);
    const left = await devices(hubs[0]);
    for (const name of ['Hall light', 'Front door'])
      assert.deepEqual(
        left
          .filter((thing) => thing.name === name)
          .map((thing) => thing.online)
          .sort(),
        [false, true],
        `${name}: the stopped demo's is offline, the running one's online`,
      );
  });
});
