import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Command, CommandStatus, HubEvent, StateChanged } from '../src/core/events.ts';
import type { AuditRecord, Store, StoredTrace } from '../src/store/store.ts';
import { makeCommand, storeBackends, T0, unique } from './helpers/stores.ts';

/**
 * The same writes, then the same reads, against SQLite and PostgreSQL: every answer must be the
 * same, in the same order. Ids, things and properties are drawn from a few characters whose order
 * is easy to get wrong (case, punctuation, accents, an emoji); times from a few milliseconds, so
 * ties in time (ordered by id) are the rule; limits and cursors cut pages inside those ties.
 */
const backends = await storeBackends('triad-parity-ops-');
const pg = backends[1];

const NAME = fc.string({ unit: fc.constantFrom('a', 'b', 'B', '-', '_', '.', 'é', '🚗', '0', '~', ' '), maxLength: 3 });
const ID = NAME.map((name) => `i${name}`);
const THING = fc.constantFrom('car', 'Car', 'lamp', 'lamp-2', 'lamp_2');
const PROPERTY = fc.constantFrom('battery.level', 'battery.range', 'light.on', 'Light.on');
const TS = fc.integer({ min: 0, max: 4 }).map((n) => T0 + n);
const VALUE = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e21, 5e-324, 2 ** 53 + 2, 0.1 + 0.2, null, true, 'text'),
);
const LIMIT = fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined });
const BOUND = fc.option(
  fc.integer({ min: -1, max: 5 }).map((n) => T0 + n),
  { nil: undefined },
);
const STATUS = fc.constantFrom<CommandStatus>('pending', 'sent', 'confirmed', 'failed', 'expired');

interface World {
  history: StateChanged[][];
  events: HubEvent[];
  commands: Command[];
  traces: StoredTrace[];
  audit: AuditRecord[];
}

function world(householdId: string): fc.Arbitrary<World> {
  const change = fc.record({
    id: ID,
    ts: TS,
    thing: THING,
    property: PROPERTY,
    from: VALUE,
    to: VALUE,
    cause: fc.option(ID),
  });
  const event = fc.record({ id: ID, ts: TS, thing: THING, online: fc.boolean() });
  const step = fc.record({ id: ID, ts: TS, status: STATUS });
  const command = fc.record({
    id: ID,
    thing: THING,
    status: STATUS,
    created: TS,
    log: fc.array(step, { maxLength: 3 }),
  });
  const trace = fc.record({ id: ID, ts: TS, rule: fc.constantFrom('r1', 'R1'), n: VALUE });
  const audit = fc.record({ id: ID, ts: TS, thing: fc.option(THING) });
  return fc
    .record({
      history: fc.array(fc.array(change, { maxLength: 8 }), { maxLength: 3 }),
      events: fc.array(event, { maxLength: 8 }),
      commands: fc.array(command, { maxLength: 4 }),
      traces: fc.array(trace, { maxLength: 6 }),
      audit: fc.array(audit, { maxLength: 6 }),
    })
    .map((w) => {
      // Every id once in the world, as the hub's random ids are: the stream orders rows by (ts,
      // id), and two rows sharing both (a history point and a command step) come in either order.
      let n = 0;
      const once = (id: string) => `${id}:${n++}`;
      return {
        history: w.history.map((batch) =>
          batch.map((c) => ({ type: 'state' as const, householdId, source: 'test', ...c, id: once(c.id) })),
        ),
        events: w.events.map((e) => ({ type: 'availability' as const, householdId, ...e, id: once(e.id) })),
        commands: w.commands.map((c) =>
          makeCommand(householdId, {
            id: c.id,
            thing: c.thing,
            status: c.status,
            createdAt: c.created,
            updatedAt: Math.max(c.created, ...c.log.map((s) => s.ts)),
            log: c.log.map((s) => ({ ...s, id: once(s.id), cause: null, error: null })),
          }),
        ),
        traces: w.traces.map((t) => ({
          id: once(t.id),
          householdId,
          rule: t.rule,
          startedAt: t.ts,
          status: 'done',
          body: { n: t.n },
        })),
        audit: w.audit.map((a) => ({
          id: once(a.id),
          householdId,
          ts: a.ts,
          actor: { kind: 'system' as const, id: 'hub', name: 'hub' },
          via: 'internal',
          thing: a.thing,
          action: null,
          result: 'accepted' as const,
          reason: null,
          commandId: null,
        })),
      };
    });
}

/** A read with the parameters fast-check picked; `points` are cursors the data may hold. */
const READ = fc.record({
  thing: THING,
  property: fc.option(PROPERTY, { nil: undefined }),
  from: BOUND,
  to: BOUND,
  limit: LIMIT,
  afterTs: fc.option(TS, { nil: undefined }),
  afterId: ID,
  types: fc.option(fc.subarray(['state', 'availability', 'command']), { nil: undefined }),
  newest: fc.boolean(),
  buckets: fc.integer({ min: 2, max: 4 }),
  keep: fc.integer({ min: 0, max: 3 }),
});

type Read = typeof READ extends fc.Arbitrary<infer R> ? R : never;

/** Every read of the Store this suite compares, by name. */
function reads(householdId: string, r: Read): Array<[string, (store: Store) => Promise<unknown>]> {
  const after = r.afterTs === undefined ? undefined : { ts: r.afterTs, id: r.afterId };
  const range = { from: r.from ?? T0 - 1, to: r.to ?? T0 + 5 };
  const base = { householdId, thing: r.thing };
  return [
    [
      'queryHistory',
      (s) => s.queryHistory({ ...base, property: r.property, from: r.from, to: r.to, limit: r.limit, after }),
    ],
    [
      'listEvents',
      (s) =>
        s.listEvents({
          householdId,
          since: r.from,
          until: r.to,
          types: r.types,
          thing: r.newest ? r.thing : undefined,
          limit: r.limit,
          ...(r.newest ? { newest: true } : { after }),
        }),
    ],
    ['pageHistory', (s) => s.pageHistory({ householdId, ...range, after, limit: r.limit ?? 5 })],
    ['pageEvents', (s) => s.pageEvents({ householdId, ...range, after, limit: r.limit ?? 5 })],
    ['valuesBefore', (s) => s.valuesBefore(householdId, r.to ?? T0 + 2)],
    [
      'valuesBefore only',
      (s) => s.valuesBefore(householdId, r.to ?? T0 + 2, { thing: r.thing, properties: ['light.on', 'Light.on'] }),
    ],
    ['latestValues', (s) => s.latestValues(householdId)],
    ['listThings', (s) => s.listThings(householdId)],
    ['listTraces', (s) => s.listTraces({ householdId, rule: 'r1', limit: r.limit })],
    [
      'isTraceListed',
      (s) =>
        s.isTraceListed({ householdId, rule: 'r1', limit: r.limit }, { id: r.afterId, startedAt: r.afterTs ?? T0 }),
    ],
    ['listAudit', (s) => s.listAudit({ householdId, since: r.from, until: r.to, limit: r.limit })],
    [
      'bucketHistory',
      (s) =>
        s.bucketHistory({
          ...base,
          property: r.property ?? 'battery.level',
          from: r.from,
          to: r.to,
          buckets: r.buckets,
        }),
    ],
    ['getCommand', (s) => s.getCommand(householdId, r.afterId)],
  ];
}

/** Means summed in another order may differ in the last bit; everything else must be equal. */
function roundMeans(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || !('kind' in value) || value.kind !== 'number') return value;
  const answer = value as unknown as { buckets: Array<{ mean: number | null }> };
  return {
    ...answer,
    buckets: answer.buckets.map((b) => ({ ...b, mean: b.mean === null ? null : Number(b.mean.toPrecision(12)) })),
  };
}

describe('SQLite and PostgreSQL answer the same reads of the same writes', { skip: pg.skip }, () => {
  const stores: Store[] = [];
  before(async () => {
    for (const backend of backends) stores.push(await backend.open());
  });
  after(async () => {
    for (const store of stores) await store.close();
    for (const backend of backends) await backend.dispose();
  });

  /** What each store answers (or the error it throws), SQLite first. */
  async function both(ask: (store: Store) => Promise<unknown>): Promise<[unknown, unknown]> {
    const answers = await Promise.all(
      stores.map((store) => ask(store).then(roundMeans, (error: Error) => `error: ${error.message}`)),
    );
    return [answers[0], answers[1]];
  }

  it('history, events, commands, traces and audit, page by page', async () => {
    await fc.assert(
      fc.asyncProperty(world('H'), fc.array(READ, { minLength: 1, maxLength: 4 }), async (drawn, rs) => {
        // A household of its own for every run, shrunk ones too, so no run reads another's rows.
        const h = unique('hh');
        const w: World = JSON.parse(JSON.stringify(drawn).replaceAll('"householdId":"H"', `"householdId":"${h}"`));
        for (const store of stores) {
          for (const batch of w.history) await store.appendHistory(batch);
          await store.appendEvents(w.events);
          await store.saveCommands(w.commands);
          await store.saveTraces(w.traces);
          await store.appendAuditBatch(w.audit);
        }
        for (const r of rs) {
          for (const [name, ask] of reads(h, r)) {
            const [sqlite, postgres] = await both(ask);
            assert.deepStrictEqual(postgres, sqlite, `${name} ${JSON.stringify(r)}`);
          }
        }
        const [prunedSqlite, prunedPostgres] = await both((s) =>
          s.pruneTraces({ householdId: h, rule: 'r1', keep: rs[0].keep, olderThan: T0 + 1 }),
        );
        assert.deepStrictEqual(prunedPostgres, prunedSqlite, 'pruneTraces');
        const [left, right] = await both((s) => s.listTraces({ householdId: h, rule: 'r1', limit: 100 }));
        assert.deepStrictEqual(right, left, 'listTraces after pruneTraces');
      }),
      { numRuns: 60 },
    );
    // Every household's open commands, and those by status, across the runs. Both order them by
    // (createdAt, id) alone, so commands of two households that share both come in either order.
    const byHousehold = (commands: Command[]) =>
      commands
        .map((c, n) => ({ c, n }))
        .sort((a, b) => {
          const key = (x: Command) => `${x.createdAt} ${x.id} ${x.householdId}`;
          return key(a.c) < key(b.c) ? -1 : key(a.c) > key(b.c) ? 1 : a.n - b.n;
        })
        .map(({ c }) => c);
    for (const ask of [
      (s: Store) => s.listOpenCommands(),
      (s: Store) => s.listCommandsByStatus(['confirmed', 'failed']),
    ]) {
      const [sqlite, postgres] = await both(async (s) => byHousehold(await ask(s)));
      assert.deepStrictEqual(postgres, sqlite);
    }
  });
});
