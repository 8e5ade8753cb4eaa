import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import type { Store } from '../src/store/store.ts';
import { makeCommand, storeBackends, T0, unique } from './helpers/stores.ts';

/**
 * Time bounds that are not whole milliseconds (a virtual clock's fraction, a caller's open end as
 * ±Infinity, a NaN from a bad parse) must select the same rows from both stores. SQLite compares
 * its INTEGER times with any number; PostgreSQL's BIGINT parameters refused all of them
 * ("invalid input syntax for type bigint"), failing the whole query.
 */
const backends = await storeBackends('triad-parity-bounds-');
const pg = backends[1];

const ODD = [T0 + 0.5, T0 + 1.5, T0 - 0.25, T0 + 2.999, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN];

describe('SQLite and PostgreSQL agree on time bounds that are not whole milliseconds', { skip: pg.skip }, () => {
  const stores: Store[] = [];
  const household = unique('hh');
  before(async () => {
    for (const backend of backends) stores.push(await backend.open());
    const changes: StateChanged[] = [0, 1, 2, 3].map((n) => ({
      type: 'state',
      id: `sc-${n}`,
      householdId: household,
      ts: T0 + n,
      cause: null,
      thing: 'meter',
      property: 'sensor.power',
      from: n === 0 ? undefined : n - 1,
      to: n,
      source: 'test',
    }));
    const events: HubEvent[] = [0, 1, 2, 3].map((n) => ({
      type: 'availability',
      id: `av-${n}`,
      householdId: household,
      ts: T0 + n,
      thing: 'meter',
      online: n % 2 === 0,
    }));
    const command = makeCommand(household, {
      id: 'cmd-1',
      log: [0, 1, 2, 3].map((n) => ({ id: `cs-${n}`, status: 'sent', ts: T0 + n, cause: null, error: null })),
      createdAt: T0,
      updatedAt: T0 + 3,
    });
    for (const store of stores) {
      await store.appendHistory(changes);
      await store.appendEvents(events);
      await store.saveCommand(command);
      for (const n of [0, 1, 2, 3]) {
        await store.saveTrace({
          id: `tr-${n}`,
          householdId: household,
          rule: 'r',
          startedAt: T0 + n,
          status: 'done',
          body: { n },
        });
        await store.appendAudit({
          id: `au-${n}`,
          householdId: household,
          ts: T0 + n,
          actor: { kind: 'system', id: 'hub', name: 'hub' },
          via: 'internal',
          thing: 'meter',
          action: null,
          result: 'accepted',
          reason: null,
          commandId: null,
        });
      }
    }
  });
  after(async () => {
    for (const store of stores) await store.close();
    for (const backend of backends) await backend.dispose();
  });

  /** What each store answers (or the error it throws), SQLite first. */
  async function both<T>(ask: (store: Store) => Promise<T>): Promise<[unknown, unknown]> {
    const answers = await Promise.all(
      stores.map((store) => ask(store).catch((error: Error) => `error: ${error.message}`)),
    );
    return [answers[0], answers[1]];
  }

  for (const bound of ODD) {
    it(`selects the same rows for the bound ${bound}`, async () => {
      const asks: Array<[string, (store: Store) => Promise<unknown>]> = [
        ['queryHistory from', (s) => s.queryHistory({ householdId: household, thing: 'meter', from: bound })],
        ['queryHistory to', (s) => s.queryHistory({ householdId: household, thing: 'meter', to: bound })],
        ['listEvents since', (s) => s.listEvents({ householdId: household, since: bound })],
        ['listEvents until', (s) => s.listEvents({ householdId: household, until: bound })],
        ['pageHistory', (s) => s.pageHistory({ householdId: household, from: bound, to: bound + 2, limit: 10 })],
        ['pageEvents', (s) => s.pageEvents({ householdId: household, from: T0 - 1, to: bound, limit: 10 })],
        ['valuesBefore', (s) => s.valuesBefore(household, bound)],
        [
          'valuesBefore only',
          (s) => s.valuesBefore(household, bound, { thing: 'meter', properties: ['sensor.power'] }),
        ],
        ['listAudit since', (s) => s.listAudit({ householdId: household, since: bound })],
        ['listAudit until', (s) => s.listAudit({ householdId: household, until: bound })],
        [
          'isTraceListed',
          (s) => s.isTraceListed({ householdId: household, rule: 'r', limit: 2 }, { id: 'tr-x', startedAt: bound }),
        ],
      ];
      for (const [name, ask] of asks) {
        const [sqlite, postgres] = await both(ask);
        assert.deepEqual(postgres, sqlite, `${name} with ${bound}`);
      }
      // PostgreSQL's buckets: whole bounds, and what the plain query counts (both stores' buckets
      // are compared in store-parity-buckets.test.ts).
      const postgres = stores[1];
      const points = await postgres.queryHistory({ householdId: household, thing: 'meter', from: bound });
      const buckets = await postgres.bucketHistory({
        householdId: household,
        thing: 'meter',
        property: 'sensor.power',
        from: bound,
        buckets: 2,
      });
      assert.equal(buckets.count, points.length, `bucketHistory with ${bound}`);
      assert.ok(buckets.from === null || Number.isInteger(buckets.from), `bucketHistory from ${buckets.from}`);
    });
  }

  it('lists the events of a command whose steps were stamped between milliseconds', async () => {
    const own = unique('hh');
    const command = makeCommand(own, {
      id: 'cmd-frac',
      status: 'sent',
      createdAt: T0 + 0.25,
      updatedAt: T0 + 1.5,
      log: [
        { id: 'cs-a', status: 'pending', ts: T0 + 0.25, cause: null, error: null },
        { id: 'cs-b', status: 'sent', ts: T0 + 1.5, cause: null, error: null },
      ],
    });
    for (const store of stores) await store.saveCommand(command);
    for (const [name, ask] of [
      ['listEvents', (s: Store) => s.listEvents({ householdId: own })],
      ['listEvents since', (s: Store) => s.listEvents({ householdId: own, since: T0 + 1 })],
      ['pageEvents', (s: Store) => s.pageEvents({ householdId: own, from: T0, to: T0 + 2, limit: 10 })],
      [
        'pageEvents after',
        (s: Store) =>
          s.pageEvents({ householdId: own, from: T0, to: T0 + 2, after: { ts: T0, id: 'cs-a' }, limit: 10 }),
      ],
    ] as const) {
      const [sqlite, postgres] = await both(ask);
      assert.deepEqual(postgres, sqlite, name);
      assert.ok(Array.isArray(sqlite) && sqlite.length > 0, `${name}: ${JSON.stringify(sqlite)}`);
    }
  });

  it('prunes the same traces for a cut-off that is not a whole millisecond', async () => {
    const [sqlite, postgres] = await both((s) =>
      s.pruneTraces({ householdId: household, rule: 'r', keep: 10, olderThan: T0 + 0.5 }),
    );
    assert.deepEqual(postgres, sqlite);
    const [left, right] = await both((s) => s.listTraces({ householdId: household, rule: 'r' }));
    assert.deepEqual(right, left);
  });
});
