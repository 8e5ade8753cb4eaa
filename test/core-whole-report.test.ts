import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';

/**
 * A thing's reports in one ingest are all in its twin before its changes are heard: a subscriber
 * started by one reads the others as reported, and reads what they replaced with valueBefore.
 */
describe('core: a report is in the twin before its changes are heard', () => {
  let store: Store;
  let bus: LocalBus;
  let twins: TwinRegistry;
  let core: HubCore;
  /** What commands.onReport was told, in order with the events. */
  let heard: string[];
  const log = createLogger({ level: 'silent' });
  const report = (thing: string, property: string, value: unknown) => ({
    householdId: 'h1',
    thing,
    property,
    value,
    source: 't',
  });

  beforeEach(async () => {
    const clock = new VirtualClock(Date.UTC(2026, 5, 1, 8));
    store = await openStore({ kind: 'sqlite', file: ':memory:' });
    bus = new LocalBus();
    twins = new TwinRegistry();
    heard = [];
    const commands = {
      onReport: (_householdId: string, thing: string, cause: string | null) =>
        heard.push(`judged ${thing} by ${cause}`),
    } as unknown as CommandService;
    core = new HubCore({ clock, bus, store, twins, commands, log });
    for (const id of ['lamp', 'desk']) {
      await core.upsertThing({
        id,
        householdId: 'h1',
        kind: 'device',
        name: id,
        adapter: 'test',
        properties: vocabularyProperties(['light.on', 'light.brightness']),
        actions: vocabularyActions('light'),
      });
    }
    core.ingest([report('lamp', 'light.brightness', 10), report('desk', 'light.brightness', 20)]);
    bus.subscribe((event: HubEvent) => {
      if (event.type === 'state') heard.push(`${event.thing} ${event.property} ${event.from} → ${event.to}`);
    });
    heard = [];
  });

  afterEach(async () => {
    await store.close();
  });

  it("shows a subscriber the thing's whole report and what it replaced, changes in order, commands judged after", () => {
    const seen: unknown[] = [];
    const changes: StateChanged[] = [];
    bus.subscribe((event) => {
      if (event.type !== 'state') return;
      changes.push(event);
      if (event.property !== 'light.on') return;
      seen.push({
        thing: event.thing,
        now: twins.value('h1', event.thing, 'light.brightness'),
        before: twins.valueBefore('h1', event.thing, 'light.brightness'),
        onBefore: twins.valueBefore('h1', event.thing, 'light.on'),
      });
    });
    core.ingest([
      report('lamp', 'light.on', true),
      report('lamp', 'light.brightness', 40),
      report('lamp', 'light.brightness', 140),
      report('lamp', 'light.brightness', 80),
      report('desk', 'light.on', true),
      report('desk', 'light.brightness', 90),
    ]);
    assert.deepEqual(seen, [
      // The first change of a property in the report holds what the report replaced.
      { thing: 'lamp', now: 80, before: 10, onBefore: null },
      // The lamp's report is done: the desk's is the one being heard, and its brightness is its own.
      { thing: 'desk', now: 90, before: 20, onBefore: null },
    ]);
    assert.equal(twins.valueBefore('h1', 'lamp', 'light.brightness'), 80, 'after delivery: the value now');
    // The refused 140 changes nothing; a confirmation follows the thing's changes, caused by its last.
    assert.deepEqual(heard, [
      'lamp light.on null → true',
      'lamp light.brightness 10 → 40',
      'lamp light.brightness 40 → 80',
      `judged lamp by ${changes[2].id}`,
      'desk light.on null → true',
      'desk light.brightness 20 → 90',
      `judged desk by ${changes[4].id}`,
    ]);
  });
});
