import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import type { Thing } from '../src/model/thing.ts';
import { vocabularyProperties } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { readInThread } from '../src/store/sqlite-reader.ts';
import type { LatestValue, Store } from '../src/store/store.ts';
import { type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

function light(householdId: string, id: string, fields: Partial<Thing> = {}): Thing {
  return {
    id,
    householdId,
    kind: 'device',
    name: `Light ${id}`,
    room: 'hall',
    adapter: 'mqtt',
    properties: vocabularyProperties(['light.on', 'light.brightness']),
    actions: { turn_on: { capability: 'light', title: 'Turn on' } },
    meta: { topic: `zigbee2mqtt/${id}` },
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    ...fields,
  };
}

function change(householdId: string, thing: string, property: string, n: number, to: unknown): StateChanged {
  return {
    type: 'state',
    id: unique(`sc${String(n).padStart(6, '0')}`),
    householdId,
    ts: T0 + n,
    cause: null,
    thing,
    property,
    from: null,
    to,
    source: 'test',
  };
}

async function collectThings(store: Store, householdId?: string): Promise<Thing[]> {
  const things: Thing[] = [];
  assert.ok(store.forEachThing, `${store.kind} streams things`);
  await store.forEachThing((thing) => things.push(thing), householdId);
  return things;
}

async function collectValues(store: Store, householdId?: string): Promise<LatestValue[]> {
  const values: LatestValue[] = [];
  assert.ok(store.forEachLatestValue, `${store.kind} streams latest values`);
  await store.forEachLatestValue((value) => values.push(value), householdId);
  return values;
}

function scaleSuite(backend: StoreBackend): void {
  describe(`${backend.name} store at scale`, { skip: backend.skip }, () => {
    const openStore = storeOf(backend);
    let store: Store;
    beforeEach(() => {
      store = openStore();
    });

    it('streams the same things as listThings, in order, for one household or all', async () => {
      const household = unique('hh');
      const other = unique('hh');
      for (const id of ['c-lamp', 'a-lamp', 'b-lamp']) await store.saveThing(light(household, id));
      await store.saveThing(light(other, 'lamp'));

      const listed = await store.listThings(household);
      const streamed = await collectThings(store, household);
      assert.deepEqual(
        streamed.map((t) => t.id),
        ['a-lamp', 'b-lamp', 'c-lamp'],
      );
      assert.deepEqual(streamed, listed);
      assert.deepEqual(streamed[0], light(household, 'a-lamp'));

      const all = await collectThings(store);
      assert.deepEqual(all, await store.listThings());
      assert.ok(all.some((t) => t.householdId === other && t.id === 'lamp'));
    });

    it('gives things with identical specs one shared copy, and keeps different specs apart', async () => {
      const household = unique('hh');
      const dimmer = light(household, 'dimmer', {
        properties: {
          ...vocabularyProperties(['light.on']),
          'light.brightness': { schema: { type: 'integer', minimum: 0, maximum: 254 }, writable: true },
        },
      });
      await store.saveThing(light(household, 'one'));
      await store.saveThing(light(household, 'two'));
      await store.saveThing(dimmer);

      const [found, one, two] = await collectThings(store, household);
      assert.equal(one.properties, two.properties, 'one property map for identical things');
      assert.equal(one.actions, two.actions);
      assert.deepEqual(found, dimmer);
      assert.notEqual(found.properties, one.properties);
      assert.equal(found.properties['light.on'], one.properties['light.on'], 'the spec they have in common is shared');
      assert.notDeepEqual(found.properties['light.brightness'], one.properties['light.brightness']);
    });

    it('round-trips events, and a thing without events reads back without them', async () => {
      const household = unique('hh');
      const bell = light(household, 'bell', { events: { ring: { title: 'Ring', data: { type: 'string' } } } });
      await store.saveThing(bell);
      await store.saveThing(light(household, 'plain'));

      const [readBell, plain] = await collectThings(store, household);
      assert.deepEqual(readBell, bell);
      assert.equal(Object.hasOwn(plain, 'events'), false);
      if (store.kind === 'sqlite') {
        // SQLite keeps JSON as written, so a thing serialises as it did before it was stored.
        assert.equal(JSON.stringify(readBell), JSON.stringify(bell));
      }
    });

    it('updates a thing whose specs change', async () => {
      const household = unique('hh');
      await store.saveThing(light(household, 'lamp'));
      const changed = light(household, 'lamp', { name: 'Desk', properties: vocabularyProperties(['light.on']) });
      await store.saveThing(changed);
      assert.deepEqual(await collectThings(store, household), [changed]);
      assert.deepEqual(await store.listThings(household), [changed]);
    });

    it('still reads a thing stored whole in its body, as rows written before the specs column', async () => {
      const household = unique('hh');
      const old = light(household, 'old', { events: { ring: { title: 'Ring' } } });
      await store.saveThing(old);
      await store.saveThing(light(household, 'new'));
      await backend.exec('UPDATE things SET body = ?, specs = NULL WHERE household_id = ? AND id = ?', [
        JSON.stringify(old),
        household,
        'old',
      ]);

      const [fresh, legacy] = await collectThings(store, household);
      assert.deepEqual(legacy, old);
      assert.deepEqual(await store.listThings(household), [fresh, legacy]);
      assert.equal(legacy.properties['light.on'], fresh.properties['light.on'], 'old rows share specs too');
    });

    it('streams the same latest values as latestValues, in order, across many pages', async () => {
      const household = unique('hh');
      const other = unique('hh');
      const changes: StateChanged[] = [];
      // More rows than one PostgreSQL cursor fetch, of every JSON shape a value can take.
      const shapes: unknown[] = [true, 0, -1.5, 'text', null, { nested: [1, 'two'] }, [3]];
      for (let i = 0; i < 1200; i++) {
        for (let p = 0; p < 10; p++) {
          changes.push(change(household, `t-${i}`, `x.p${p}`, i * 10 + p, shapes[(i + p) % shapes.length]));
        }
      }
      changes.push(change(other, 'lamp', 'light.on', 0, true));
      await store.appendHistory(changes);

      const listed = await store.latestValues(household);
      const streamed = await collectValues(store, household);
      assert.equal(streamed.length, 12_000);
      assert.deepEqual(streamed, listed);
      assert.deepEqual(streamed[0], {
        householdId: household,
        thing: 't-0',
        property: 'x.p0',
        value: true,
        ts: T0,
      });
      const all = await collectValues(store);
      assert.deepEqual(all, await store.latestValues());
      assert.ok(all.some((v) => v.householdId === other && v.thing === 'lamp' && v.value === true));
    });

    it('saves many things in one batch, all or none', async () => {
      const household = unique('hh');
      await store.saveThing(light(household, 'lamp-1', { name: 'Before' }));
      const batch = Array.from({ length: 6000 }, (_, i) => light(household, `lamp-${i}`));
      assert.ok(store.saveThings, `${store.kind} saves things in batches`);
      await store.saveThings(batch);
      const read = await store.listThings(household);
      assert.equal(read.length, 6000);
      assert.deepEqual(
        read.find((t) => t.id === 'lamp-1'),
        batch[1],
      );
      await store.saveThings([]);

      // A thing that cannot be written, last in a batch longer than one statement: the things
      // before it (already sent, in PostgreSQL) go with it.
      const broken = Array.from({ length: 5200 }, (_, i) => light(household, `more-${i}`));
      broken.push(light(household, 'bad', { meta: { count: 1n as unknown as number } }));
      await assert.rejects(store.saveThings(broken));
      assert.equal((await store.listThings(household)).length, 6000, 'nothing of a failed batch is kept');
    });

    it("lists a thing's latest values in property order, whatever order they were written in", async () => {
      const household = unique('hh');
      const properties = ['x.b', 'x.a', 'x.\uE000', 'x.😀', 'x.é', 'x.Z', 'x.a.b'];
      await store.appendHistory(properties.map((property, n) => change(household, 'thing', property, n, n)));
      const read = (await collectValues(store, household)).map((v) => v.property);
      assert.deepEqual(
        read,
        (await store.latestValues(household)).map((v) => v.property),
      );
      if (store.kind === 'sqlite') {
        // SQLite orders text by its UTF-8 bytes.
        const bytes = [...properties].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        assert.deepEqual(read, bytes);
      } else {
        assert.deepEqual([...read].sort(), [...properties].sort());
      }
    });

    it('stops at a visitor that throws, and the store carries on', async () => {
      const household = unique('hh');
      await store.saveThing(light(household, 'a'));
      await store.saveThing(light(household, 'b'));
      await store.appendHistory([change(household, 'a', 'light.on', 1, true)]);
      const boom = new Error('visitor failed');
      let seen = 0;
      await assert.rejects(
        store.forEachThing?.(() => {
          seen++;
          throw boom;
        }, household) ?? Promise.resolve(),
        boom,
      );
      assert.equal(seen, 1);
      await assert.rejects(
        store.forEachLatestValue?.(() => {
          throw boom;
        }, household) ?? Promise.resolve(),
        boom,
      );
      assert.equal((await store.listThings(household)).length, 2);
      await store.saveThing(light(household, 'c'));
      assert.equal((await collectThings(store, household)).length, 3);
    });
  });
}

const backends = await storeBackends('triad-store-scale-');
for (const backend of backends) scaleSuite(backend);

describe('the core upserting things in a batch', () => {
  it('stores, announces and reloads them as one call each would', async () => {
    const log = createLogger({ level: 'silent' });
    const clock = new VirtualClock(Date.UTC(2026, 5, 1, 8));
    const store = await openStore({ kind: 'sqlite', file: ':memory:' });
    const bus = new LocalBus();
    const events: HubEvent[] = [];
    bus.subscribe((e) => events.push(e));
    const twins = new TwinRegistry();
    const commands = new CommandService({ clock, bus, store, twins, adapters: new Map(), log, defaultTimeoutMs: 5000 });
    const core = new HubCore({ clock, bus, store, twins, commands, log });
    try {
      const input = (id: string, name = id) => {
        const { createdAt: _c, updatedAt: _u, ...rest } = light('h1', id, { name });
        return rest;
      };
      await core.upsertThing(input('kept'));
      await clock.advance(1000);
      events.length = 0;

      const result = await core.upsertThings([input('kept'), input('new'), input('twice'), input('twice', 'Renamed')]);
      assert.deepEqual(
        result.map((t) => [t.id, t.name]),
        [
          ['kept', 'kept'],
          ['new', 'new'],
          ['twice', 'twice'],
          ['twice', 'Renamed'],
        ],
      );
      assert.equal(result[0], core.getThing('h1', 'kept'), 'an unchanged thing comes back as it was');
      assert.equal(result[3].createdAt, result[2].createdAt);
      assert.deepEqual(
        events.map((e) => [e.type, 'thing' in e ? e.thing : null]),
        [
          ['thing.added', 'new'],
          ['thing.added', 'twice'],
          ['thing.updated', 'twice'],
        ],
      );
      await assert.rejects(core.upsertThings([input('fine-one'), input('Not Valid')]), /not a valid id/);
      assert.equal(core.getThing('h1', 'fine-one'), undefined, 'nothing is written when any id is invalid');

      const reloaded = new TwinRegistry();
      await new HubCore({ clock, bus: new LocalBus(), store, twins: reloaded, commands, log }).load();
      assert.deepEqual(
        reloaded.list('h1').map((t) => t.thing),
        twins.list('h1').map((t) => t.thing),
      );
    } finally {
      await store.close();
    }
  });
});

describe('the SQLite store reading at start on a thread of its own', () => {
  const dir = mkdtempSync(join(tmpdir(), 'triad-store-read-thread-'));
  const file = join(dir, 'triad.db');
  const households = ['hh-a', 'hh-b'];
  const stores: Store[] = [];
  const open = async (readInThreadFrom?: number) => {
    const store = new SqliteStore({ file, readInThreadFrom });
    await store.migrate();
    stores.push(store);
    return store;
  };
  /** Runs `read`, counting the worker threads started meanwhile. */
  const threadsDuring = async (read: () => Promise<void>) => {
    let started = 0;
    const count = () => started++;
    process.on('worker', count);
    try {
      await read();
    } finally {
      process.off('worker', count);
    }
    return started;
  };
  const loadAll = async (store: SqliteStore) => {
    const things: Thing[] = [];
    const values: LatestValue[] = [];
    const threads = await threadsDuring(() =>
      store.loadAll(
        (thing) => things.push(thing),
        (value) => values.push(value),
      ),
    );
    return { things, values, threads };
  };

  before(async () => {
    const store = await open();
    // Past one message's chunk of rows, so shared spec texts are sent as numbers across chunks;
    // every seventh thing has specs of its own.
    const things = households.flatMap((household) =>
      Array.from({ length: 1300 }, (_, i) => {
        const id = `lamp-${String(i).padStart(4, '0')}`;
        return i % 7 === 0
          ? light(household, id, { properties: vocabularyProperties(['light.on', 'sensor.power']) })
          : light(household, id);
      }),
    );
    await store.saveThings?.(things);
    const changes = things.flatMap((thing, n) => [
      change(thing.householdId, thing.id, 'light.on', 2 * n, n % 2 === 0),
      change(thing.householdId, thing.id, 'light.brightness', 2 * n + 1, { level: n, note: `"${n}"\n` }),
    ]);
    await store.appendHistory(changes);
  });
  after(async () => {
    for (const store of stores) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hands over the same things and values, in the same order, as reading them here', async () => {
    const here = await open();
    const expected = { things: [] as Thing[], values: [] as LatestValue[] };
    await here.forEachThing((thing) => expected.things.push(thing));
    await here.forEachLatestValue((value) => expected.values.push(value));

    const read = await loadAll(await open(0));
    assert.equal(read.threads, 1, 'one reader thread ran');
    assert.equal(read.things.length, 2 * 1300);
    assert.deepEqual(read.things, expected.things);
    assert.deepEqual(read.values, expected.values);
    const [first, second] = read.things.filter((t) => t.id === 'lamp-0001' || t.id === 'lamp-1201');
    assert.equal(first.properties, second.properties, 'identical specs in different chunks are one copy');
    const own = read.things.find((t) => t.id === 'lamp-0007');
    assert.notEqual(own?.properties, first.properties);
    assert.deepEqual(Object.keys(own?.properties ?? {}), ['light.on', 'sensor.power']);
  });

  it('reads a small store here, without a thread', async () => {
    const read = await loadAll(await open());
    assert.equal(read.threads, 0);
    assert.equal(read.values.length, 2 * 2 * 1300);
  });

  it('stops at a visitor that throws, and the store carries on', async () => {
    const store = await open(0);
    const boom = new Error('visitor failed');
    let seen = 0;
    await assert.rejects(
      store.loadAll(
        () => undefined,
        () => {
          seen++;
          throw boom;
        },
      ),
      boom,
    );
    assert.equal(seen, 1);
    await store.saveThing(light('hh-a', 'lamp-late'));
    const again = await loadAll(store);
    assert.ok(again.things.some((t) => t.id === 'lamp-late'));
    await store.deleteThing('hh-a', 'lamp-late');
  });

  it('says what went wrong when a query fails on the thread', async () => {
    await assert.rejects(
      readInThread(file, [{ sql: 'SELECT body FROM no_such_table' }], () => undefined),
      /reading the store failed: no such table: no_such_table/,
    );
    await assert.rejects(
      readInThread(join(dir, 'missing.db'), [{ sql: 'SELECT 1' }], () => undefined),
      /reading the store failed/,
    );
  });

  it('gives the core the same twins either way', async () => {
    const twinsOf = async (store: Store) => {
      const twins = new TwinRegistry();
      const log = createLogger({ level: 'silent' });
      const clock = new VirtualClock(T0);
      const bus = new LocalBus();
      const commands = new CommandService({
        clock,
        bus,
        store,
        twins,
        adapters: new Map(),
        log,
        defaultTimeoutMs: 5000,
      });
      await new HubCore({ clock, bus, store, twins, commands, log }).load();
      return households.flatMap((h) => twins.list(h).map((t) => [t.thing, [...t.state]]));
    };
    const inThread = await twinsOf(await open(0));
    assert.equal(inThread.length, 2 * 1300);
    assert.deepEqual(inThread, await twinsOf(await open()));
  });
});
