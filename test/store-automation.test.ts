import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import { walkHistory } from '../src/store/history-walk.ts';
import type { Store, StoredTrace } from '../src/store/store.ts';
import { type StoreBackend, storeBackends, storeOf, unique } from './helpers/stores.ts';

/**
 * The store methods the automation engine relies on (rules, traces with retention, and the paged
 * reads replay uses), run against SQLite and PostgreSQL alike. Each run works in its own data:
 * a fresh file, or a fresh PostgreSQL schema dropped afterwards.
 */
const T0 = 1_780_000_000_000;

function trace(householdId: string, rule: string, n: number, fields: Partial<StoredTrace> = {}): StoredTrace {
  const id = `trc_${String(n).padStart(4, '0')}_${randomBytes(3).toString('hex')}`;
  return {
    id,
    householdId,
    rule,
    startedAt: T0 + n * 1000,
    status: 'finished',
    body: { id, rule, steps: [{ action: 'turn_on', commands: [{ id: `cmd-${n}`, status: 'confirmed' }] }] },
    ...fields,
  };
}

function change(householdId: string, id: string, ts: number, fields: Partial<StateChanged> = {}): StateChanged {
  return {
    type: 'state',
    id,
    householdId,
    ts,
    cause: null,
    thing: 'living-room-sensor',
    property: 'sensor.temperature',
    from: null,
    to: 20,
    source: 'test',
    ...fields,
  };
}

function notifyEvent(householdId: string, id: string, ts: number): HubEvent {
  return { type: 'automation.notify', id, householdId, ts, cause: 'evt-cause', data: { message: `at ${ts}` } };
}

function automationSuite(backend: StoreBackend): void {
  describe(`${backend.name} store: automation data`, { skip: backend.skip }, () => {
    const openStore = storeOf(backend);
    let store: Store;
    beforeEach(() => {
      store = openStore();
    });

    it('saves, replaces, lists and deletes rules, each household apart', async () => {
      const a = unique('hh-a');
      const b = unique('hh-b');
      const body = { id: 'fan-when-hot', name: 'Fan', triggers: [{ trigger: 'state' }], note: 'O\'Brien\'s "fan" 🌀' };
      await store.saveRule({ householdId: a, id: 'fan-when-hot', body, createdAt: T0, updatedAt: T0 });
      await store.saveRule({ householdId: a, id: 'alarm', body: { id: 'alarm' }, createdAt: T0, updatedAt: T0 });
      await store.saveRule({ householdId: b, id: 'fan-when-hot', body: { id: 'b' }, createdAt: T0, updatedAt: T0 });
      // Saving again replaces the body and the update time; the creation time stays the first one.
      await store.saveRule({
        householdId: a,
        id: 'fan-when-hot',
        body: { ...body, name: 'Fan, renamed' },
        createdAt: T0 + 5000,
        updatedAt: T0 + 5000,
      });

      const ofA = await store.listRules(a);
      assert.deepEqual(
        ofA.map((r) => r.id),
        ['alarm', 'fan-when-hot'],
        'sorted by id',
      );
      assert.deepEqual(ofA[1], {
        householdId: a,
        id: 'fan-when-hot',
        body: { ...body, name: 'Fan, renamed' },
        createdAt: T0,
        updatedAt: T0 + 5000,
      });
      assert.deepEqual(
        (await store.listRules(b)).map((r) => r.body),
        [{ id: 'b' }],
      );
      const all = await store.listRules();
      assert.equal(all.filter((r) => r.householdId === a || r.householdId === b).length, 3);

      await store.deleteRule(b, 'fan-when-hot');
      assert.deepEqual(await store.listRules(b), []);
      assert.equal((await store.listRules(a)).length, 2, "deleting B's rule leaves A's rule of the same id");
    });

    it('saves a trace again as it goes on, reads it by household, and lists newest first', async () => {
      const a = unique('hh');
      const first = trace(a, 'fan', 1, { status: 'waiting' });
      await store.saveTrace(first);
      await store.saveTrace({ ...first, status: 'finished', body: { ...first.body, done: true } });
      await store.saveTrace(trace(a, 'fan', 3));
      await store.saveTrace(trace(a, 'fan', 2));
      await store.saveTrace(trace(a, 'other', 4));

      const got = await store.getTrace(a, first.id);
      assert.equal(got?.status, 'finished');
      assert.deepEqual(got?.body, { ...first.body, done: true });
      assert.equal(got?.startedAt, first.startedAt);
      assert.equal(await store.getTrace(unique('hh'), first.id), null, 'another household cannot read it');

      const listed = await store.listTraces({ householdId: a, rule: 'fan' });
      assert.deepEqual(
        listed.map((t) => t.startedAt),
        [T0 + 3000, T0 + 2000, T0 + 1000],
      );
      assert.equal((await store.listTraces({ householdId: a, rule: 'fan', limit: 2 })).length, 2);

      await store.deleteTraces(a, 'fan');
      assert.deepEqual(await store.listTraces({ householdId: a, rule: 'fan' }), []);
      assert.equal((await store.listTraces({ householdId: a, rule: 'other' })).length, 1, 'other rules keep theirs');
    });

    it('prunes past the newest `keep` and older than the age limit, for one rule only', async () => {
      const a = unique('hh');
      for (let n = 1; n <= 8; n++) await store.saveTrace(trace(a, 'busy', n));
      await store.saveTrace(trace(a, 'quiet', 1));

      assert.equal(await store.pruneTraces({ householdId: a, rule: 'busy', keep: 5, olderThan: 0 }), 3);
      assert.deepEqual(
        (await store.listTraces({ householdId: a, rule: 'busy' })).map((t) => t.startedAt),
        [8, 7, 6, 5, 4].map((n) => T0 + n * 1000),
      );
      // By age: started before T0 + 6.5 s goes, even though it is within the count.
      assert.equal(await store.pruneTraces({ householdId: a, rule: 'busy', keep: 100, olderThan: T0 + 6500 }), 3);
      assert.deepEqual(
        (await store.listTraces({ householdId: a, rule: 'busy' })).map((t) => t.startedAt),
        [T0 + 8000, T0 + 7000],
      );
      assert.equal(await store.pruneTraces({ householdId: a, rule: 'busy', keep: 2, olderThan: 0 }), 0);
      assert.equal(
        (await store.listTraces({ householdId: a, rule: 'quiet' })).length,
        1,
        'the other rule is untouched',
      );
    });

    it('pages history oldest first by (ts, id), including rows that share a millisecond across pages', async () => {
      const a = unique('hh');
      const other = unique('hh');
      // Ids deliberately out of insertion order within a shared millisecond.
      const rows = [
        change(a, 'evt-0005', T0 + 2000, { to: 5 }),
        change(a, 'evt-0001', T0 + 1000, { to: 1 }),
        change(a, 'evt-0003', T0 + 2000, { to: 3 }),
        change(a, 'evt-0004', T0 + 2000, { to: 4 }),
        change(a, 'evt-0006', T0 + 3000, { to: 6, property: 'sensor.humidity' }),
        change(a, 'evt-0000', T0 + 500, { to: 0 }),
        change(a, 'evt-0007', T0 + 9000, { to: 7 }),
        change(other, 'evt-0002', T0 + 1500, { to: 99 }),
      ];
      await store.appendHistory(rows);

      const seen: StateChanged[] = [];
      let after: { ts: number; id: string } | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const page = await store.pageHistory({ householdId: a, from: T0 + 1000, to: T0 + 3000, after, limit: 2 });
        if (page.length === 0) break;
        assert.ok(page.length <= 2);
        seen.push(...page);
        const last = page[page.length - 1];
        after = { ts: last.ts, id: last.id };
      }
      assert.deepEqual(
        seen.map((s) => s.id),
        ['evt-0001', 'evt-0003', 'evt-0004', 'evt-0005', 'evt-0006'],
        'both ends of the range are included, other households and times are not',
      );
      assert.deepEqual(seen[4], rows[4], 'a row reads back as the state change it was');
    });

    it('pages other events the same way', async () => {
      const a = unique('hh');
      await store.appendEvents([
        notifyEvent(a, 'evt-b', T0 + 1000),
        notifyEvent(a, 'evt-a', T0 + 1000),
        notifyEvent(a, 'evt-c', T0 + 2000),
        notifyEvent(a, 'evt-d', T0 + 5000),
        notifyEvent(unique('hh'), 'evt-x', T0 + 1000),
      ]);
      const first = await store.pageEvents({ householdId: a, from: T0, to: T0 + 2000, limit: 2 });
      assert.deepEqual(
        first.map((e) => e.id),
        ['evt-a', 'evt-b'],
      );
      assert.deepEqual(first[0], notifyEvent(a, 'evt-a', T0 + 1000));
      const second = await store.pageEvents({
        householdId: a,
        from: T0,
        to: T0 + 2000,
        after: { ts: T0 + 1000, id: 'evt-b' },
        limit: 2,
      });
      assert.deepEqual(
        second.map((e) => e.id),
        ['evt-c'],
      );
    });

    it('walks a thing’s history page by page, once each, across a millisecond split by a page', async () => {
      const a = unique('hh');
      await store.appendHistory([
        change(a, 'walk-1', T0 + 1000, { to: 21 }),
        change(a, 'walk-2', T0 + 2000, { to: 22 }),
        change(a, 'walk-3', T0 + 3000, { to: 23 }),
        change(a, 'walk-4', T0 + 3000, { property: 'sensor.humidity', to: 60 }),
        change(a, 'walk-5', T0 + 4000, { to: 25 }),
        change(a, 'walk-6', T0 + 5000, { thing: 'household', property: 'presence.anyone_home', to: true }),
      ]);
      const seen: string[] = [];
      await walkHistory(
        store,
        { householdId: a, thing: 'living-room-sensor', from: T0, to: T0 + 9000 },
        (p) => seen.push(p.id),
        3,
      );
      assert.deepEqual(seen, ['walk-1', 'walk-2', 'walk-3', 'walk-4', 'walk-5']);
    });

    it('walks a millisecond holding more points than a page, each point once', async () => {
      const a = unique('hh');
      // Seven points in one millisecond, three to a page: the walk must go on inside it.
      const burst = Array.from({ length: 7 }, (_, i) => change(a, `burst-${i}`, T0 + 1000, { to: 20 + i }));
      await store.appendHistory([change(a, 'before', T0 + 999), ...burst.reverse(), change(a, 'after', T0 + 1001)]);
      const seen: string[] = [];
      await walkHistory(store, { householdId: a, thing: 'living-room-sensor', from: T0 }, (p) => seen.push(p.id), 3);
      assert.deepEqual(seen, ['before', ...Array.from({ length: 7 }, (_, i) => `burst-${i}`), 'after']);
      const page = await store.queryHistory({
        householdId: a,
        thing: 'living-room-sensor',
        after: { ts: T0 + 1000, id: 'burst-4' },
        limit: 10,
      });
      assert.deepEqual(
        page.map((p) => p.id),
        ['burst-5', 'burst-6', 'after'],
        'after: strictly after that point in (ts, id) order',
      );
    });

    it('gives each property’s last value strictly before a time, the larger id winning a tie', async () => {
      const a = unique('hh');
      await store.appendHistory([
        change(a, 'evt-1', T0 + 1000, { to: 21 }),
        change(a, 'evt-3', T0 + 2000, { to: 23 }),
        change(a, 'evt-2', T0 + 2000, { to: 22 }),
        change(a, 'evt-4', T0 + 5000, { to: 25 }),
        change(a, 'evt-5', T0 + 1500, { property: 'sensor.humidity', to: 60 }),
        change(a, 'evt-6', T0 + 1000, { thing: 'household', property: 'presence.anyone_home', to: true }),
        change(unique('hh'), 'evt-7', T0 + 1000, { to: -40 }),
      ]);
      const values = await store.valuesBefore(a, T0 + 5000);
      assert.deepEqual(
        values.map((v) => [v.thing, v.property, v.value, v.ts]),
        [
          ['household', 'presence.anyone_home', true, T0 + 1000],
          ['living-room-sensor', 'sensor.humidity', 60, T0 + 1500],
          ['living-room-sensor', 'sensor.temperature', 23, T0 + 2000],
        ],
      );
      assert.deepEqual(await store.valuesBefore(a, T0 + 1000), [], 'strictly before: a value at the time is not');
      const one = await store.valuesBefore(a, T0 + 5000, {
        thing: 'living-room-sensor',
        properties: ['sensor.temperature', 'sensor.pressure'],
      });
      assert.deepEqual(
        one.map((v) => [v.thing, v.property, v.value, v.ts]),
        [['living-room-sensor', 'sensor.temperature', 23, T0 + 2000]],
        'only the named properties of that thing, the larger id winning a tie; one never recorded is absent',
      );
    });
  });
}

const backends = await storeBackends('triad-automation-store-');
for (const backend of backends) automationSuite(backend);
