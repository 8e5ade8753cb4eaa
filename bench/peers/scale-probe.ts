// Fills a hub with N things of ten properties each, in-process, then measures how fast state
// updates go through the core at that size, into durable history. Prints one JSON line.
// Usage: scale-probe.ts <dataDir> <things> <updateSeconds>
import { performance } from 'node:perf_hooks';
import type { Report } from '../../src/core/events.ts';
import { Hub } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { type Thing, vocabularyProperties } from '../../src/model/thing.ts';

const [dataDir, countText, secondsText] = process.argv.slice(2);
const count = Number(countText);
const seconds = Number(secondsText);

const PROPERTIES = [
  'sensor.temperature',
  'sensor.humidity',
  'sensor.illuminance',
  'sensor.power',
  'sensor.energy',
  'sensor.contact',
  'sensor.motion',
  'battery.level',
  'light.on',
  'light.brightness',
];

/** A valid, changing value for each property, so every update is a real state change. */
function value(property: string, n: number): unknown {
  if (property.endsWith('.contact') || property.endsWith('.motion') || property === 'light.on') return n % 2 === 0;
  return (n % 90) + 1;
}

const hub = new Hub({
  dataDir,
  http: { port: 0, host: '127.0.0.1' },
  mqtt: { port: 0, host: '127.0.0.1' },
  log: createLogger({ level: 'error' }),
});
await hub.start();
const householdId = hub.householdId;
const properties = vocabularyProperties(PROPERTIES);

const fillStarted = performance.now();
// A thousand things at a time, as an adapter announcing a whole network does (one transaction
// each): one at a time, the fill of 100,000 things was most of the full benchmark's scale figure.
for (let from = 0; from < count; from += 1000) {
  const things: Array<Omit<Thing, 'createdAt' | 'updatedAt'>> = [];
  for (let i = from; i < Math.min(count, from + 1000); i++) {
    things.push({
      id: `scale-${i}`,
      householdId,
      kind: 'device',
      name: `Scale ${i}`,
      adapter: 'bench',
      properties,
      actions: {},
    });
  }
  await hub.core.upsertThings(things);
}
// Every property gets a value, so a restart has latest values to load as well as descriptions.
const batch: Report[] = [];
for (let i = 0; i < count; i++) {
  for (const property of PROPERTIES)
    batch.push({ householdId, thing: `scale-${i}`, property, value: value(property, i), source: 'bench' });
  if (batch.length >= 10_000) {
    hub.core.ingest(batch.splice(0));
    await hub.history.flush();
  }
}
hub.core.ingest(batch.splice(0));
await hub.history.flush();
const fillSeconds = (performance.now() - fillStarted) / 1000;

// State updates to random things at this size, 100 reports per call as an adapter would batch them.
let updates = 0;
let n = count;
const started = performance.now();
const deadline = started + seconds * 1000;
while (performance.now() < deadline) {
  const reports: Report[] = [];
  for (let k = 0; k < 100; k++) {
    const thing = `scale-${Math.floor(Math.random() * count)}`;
    const property = PROPERTIES[n % PROPERTIES.length];
    reports.push({ householdId, thing, property, value: value(property, ++n), source: 'bench' });
  }
  hub.core.ingest(reports);
  updates += reports.length;
  // Yield now and then so the history writer's timer and flushes run as they would live, and
  // every 20,000 reports wait for the store to commit them: the core takes reports several times
  // faster than a store commits them, and unpaced, a run of `seconds` left ten times as many
  // seconds of backlog behind it (and hundreds of MiB of it in memory), all of it timed anyway.
  if (updates % 20_000 === 0) await hub.history.flush();
  else if (updates % 5000 === 0) await new Promise((r) => setImmediate(r));
}
await hub.history.flush();
const updateSeconds = (performance.now() - started) / 1000;
const memory = process.memoryUsage();
await hub.stop();
process.stdout.write(
  `${JSON.stringify({ things: count, fillSeconds, updates, updatesPerSecond: updates / updateSeconds, rss: memory.rss, heapUsed: memory.heapUsed })}\n`,
);
process.exit(0);
