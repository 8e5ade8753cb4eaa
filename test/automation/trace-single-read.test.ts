import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AutomationEngine, type Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { HubError } from '../../src/core/errors.ts';
import { Hub, type StoreChoice } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import type { Store, StoredTrace } from '../../src/store/store.ts';
import { tempDir } from '../helpers/hub-process.ts';
import { needService, services } from '../helpers/services.ts';
import { dropSchema, type StoreBackend, storeBackends, storeOf, unique } from '../helpers/stores.ts';
import { advance, HOME, MIN, TestHome } from './helpers.ts';

/**
 * GET /api/automations/:id/traces/:trace reads the one trace asked for, not all the rule's kept
 * ones, and still finds exactly the traces the list shows: among the rule's newest `perRule` (in
 * the list's order: started later first, ties by id, greater first), none too old, the ones not
 * written yet included, and only the rule's own in its own household.
 */

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const PER_RULE = 5;
const MAX_AGE_MS = 60 * MIN;
const NOT_FOUND =
  /^trace ".*" of automation ".*" not found: each rule keeps only its newest 5 traces, none older than 1 hour$/;

function stored(householdId: string, rule: string, id: string, startedAt: number): StoredTrace {
  // A body the size real ones reach, so reading them all would cost something.
  return { id, householdId, rule, startedAt, status: 'finished', body: { id, rule, startedAt, pad: 'x'.repeat(2000) } };
}

/**
 * A rule's traces with ties in start time on both sides of the cutoff, ids whose order differs
 * between a case-blind and a byte-wise comparison, and more of them than retention keeps.
 */
function tracesOfRule(householdId: string, rule: string, now: number): StoredTrace[] {
  const at = (ago: number, ...ids: string[]) => ids.map((id) => stored(householdId, rule, `${rule}-${id}`, now - ago));
  return [
    ...at(1000, 'n1'),
    ...at(2000, 'b', '_a'),
    // Ranks 3 to 6: the cutoff (5) falls inside this tie.
    ...at(3000, 'c', 'B', 'a', 'A_'),
    ...at(4000, 'z', 'y'),
    ...at(5000, 'old'),
    // Among the newest five of a rule with fewer traces, but too old all the same.
    ...at(MAX_AGE_MS + 1, 'aged'),
  ];
}

/** A hub on the given store with the test home and an engine keeping PER_RULE traces per rule. */
async function startHub(store: StoreChoice, clock: VirtualClock) {
  const dataDir = await tempDir('triad-trace-read-');
  const hub = new Hub({
    dataDir,
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
    demo: false,
    clock,
    commandTimeoutMs: 60_000,
    log: createLogger({ level: 'silent' }),
    store,
  });
  hub.use(new TestHome());
  const engine = new AutomationEngine({ watch: false, retention: { perRule: PER_RULE, maxAgeMs: MAX_AGE_MS } });
  hub.use(engine);
  await hub.start();
  const api = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    return fetch(hub.httpUrl + path, { ...init, headers });
  };
  const postRule = async (rule: Record<string, unknown>) => {
    const response = await api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
    assert.equal(response.status, 201, await response.text());
  };
  return { hub, engine, api, postRule };
}

const humid = (id: string) => ({
  id,
  triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
});

/** The engine's answer for one trace: its body's id, or the 404's message. */
async function readOne(engine: AutomationEngine, rule: string, traceId: string): Promise<string> {
  try {
    return `found ${(await engine.trace(HOME, rule, traceId)).id}`;
  } catch (error) {
    if (error instanceof HubError && error.status === 404) {
      assert.match(error.message, NOT_FOUND);
      assert.ok(error.message.includes(JSON.stringify(traceId)) && error.message.includes(JSON.stringify(rule)));
      return 'not found';
    }
    throw error;
  }
}

function engineSuite(name: string, choice: () => StoreChoice, skip: false | string, dispose: () => Promise<void>) {
  describe(`${name}: one trace read through the engine`, { skip }, () => {
    const clock = new VirtualClock(T0);
    let t: Awaited<ReturnType<typeof startHub>>;
    let store: Store;
    let ours: StoredTrace[];
    before(async () => {
      t = await startHub(choice(), clock);
      store = t.hub.store;
      await t.postRule(humid('humid'));
      await t.postRule(humid('other'));
      await t.postRule(humid('fresh'));
      const now = clock.now();
      ours = tracesOfRule(HOME, 'humid', now);
      await store.saveTraces([
        ...ours,
        // Newer than all of ours, and at the same times: another rule's, another household's.
        ...tracesOfRule(HOME, 'other', now + 500),
        ...tracesOfRule(HOME, 'other', now).map((s) => ({ ...s, id: `same-time-${s.id}` })),
        ...tracesOfRule('elsewhere', 'humid', now + 500).map((s) => ({ ...s, id: `elsewhere-${s.id}` })),
      ]);
    });
    after(async () => {
      await t?.hub.stop();
      await dispose();
    });

    it('finds exactly the traces the list shows: the newest five, ties split by id, none too old', async () => {
      const listed = (await t.engine.traces(HOME, 'humid')).map((trace) => trace.id);
      assert.equal(listed.length, PER_RULE);
      const inStore = await store.listTraces({ householdId: HOME, rule: 'humid', limit: 1000 });
      assert.equal(inStore.length, ours.length);
      // The cutoff falls inside a tie: the last listed and the first let go started at once.
      assert.equal(inStore[PER_RULE - 1].startedAt, inStore[PER_RULE].startedAt);
      for (const [rank, trace] of inStore.entries()) {
        const expected = rank < PER_RULE ? `found ${trace.id}` : 'not found';
        assert.equal(listed.includes(trace.id), rank < PER_RULE, trace.id);
        assert.equal(await readOne(t.engine, 'humid', trace.id), expected, `${trace.id}, rank ${rank}`);
      }
      const body = await t.engine.trace(HOME, 'humid', listed[0]);
      assert.deepEqual(body, inStore[0].body);
    });

    it('a trace among the newest five but too old is not found, as it is not listed', async () => {
      await t.postRule(humid('few'));
      // One just young enough (started exactly maxAgeMs ago), one older.
      await store.saveTraces([
        stored(HOME, 'few', 'few-young', clock.now() - MAX_AGE_MS),
        stored(HOME, 'few', 'few-aged', 0),
      ]);
      assert.deepEqual(
        (await t.engine.traces(HOME, 'few')).map((trace) => trace.id),
        ['few-young'],
      );
      assert.equal(await readOne(t.engine, 'few', 'few-young'), 'found few-young');
      assert.equal(await readOne(t.engine, 'few', 'few-aged'), 'not found');
    });

    it("another rule's trace, or another household's, is not found", async () => {
      const others = await store.listTraces({ householdId: HOME, rule: 'other', limit: 1 });
      assert.equal(await readOne(t.engine, 'other', others[0].id), `found ${others[0].id}`);
      assert.equal(await readOne(t.engine, 'humid', others[0].id), 'not found');
      const [elsewhere] = await store.listTraces({ householdId: 'elsewhere', rule: 'humid', limit: 1 });
      assert.ok(elsewhere, 'the other household has a newest trace of a rule of the same id');
      assert.equal(await readOne(t.engine, 'humid', elsewhere.id), 'not found');
      assert.equal(await readOne(t.engine, 'humid', 'no-such-trace'), 'not found');
    });

    it('over the API: the same answers, and the 404 message as it was', async () => {
      const inStore = await store.listTraces({ householdId: HOME, rule: 'humid', limit: 1000 });
      const kept = await t.api(`/api/automations/humid/traces/${inStore[PER_RULE - 1].id}`);
      assert.equal(kept.status, 200);
      assert.equal(((await kept.json()) as Trace).id, inStore[PER_RULE - 1].id);
      const past = await t.api(`/api/automations/humid/traces/${inStore[PER_RULE].id}`);
      assert.equal(past.status, 404);
      const { error } = (await past.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'not_found');
      assert.equal(
        error.message,
        `trace "${inStore[PER_RULE].id}" of automation "humid" not found: each rule keeps only its newest 5 traces, none older than 1 hour`,
      );
      // An automation that is not there is what is not found, as for its list of traces.
      for (const path of [
        '/api/automations/no-such-rule/traces',
        `/api/automations/no-such-rule/traces/${inStore[0].id}`,
      ]) {
        const missing = await t.api(path);
        assert.equal(missing.status, 404, path);
        const body = (await missing.json()) as { error: { message: string } };
        assert.match(body.error.message, /^automation "no-such-rule" not found/, path);
      }
    });

    it('finds a trace not written yet', async () => {
      const seen: string[] = [];
      const unsubscribe = t.hub.bus.subscribe((event) => {
        if (event.type === 'automation.run' && event.data?.rule === 'fresh') seen.push(String(event.data.trace));
      });
      try {
        t.hub.core.ingest([
          { householdId: HOME, thing: 'living-room-sensor', property: 'sensor.humidity', value: 70, source: 'test' },
        ]);
        // The run ends (its command is confirmed 10 ms on), well within the trace write window.
        for (let i = 0; i < 10 && seen.length === 0; i++) await advance(clock, 10, 10);
      } finally {
        unsubscribe();
      }
      assert.equal(seen.length, 1, 'the run ended');
      assert.equal(await store.getTrace(HOME, seen[0]), null, 'not written yet');
      assert.equal(await readOne(t.engine, 'fresh', seen[0]), `found ${seen[0]}`);
    });

    it('reads the one trace, not the rule’s others', async () => {
      const inStore = await store.listTraces({ householdId: HOME, rule: 'humid', limit: 1000 });
      const calls = { list: 0, get: 0 };
      const listTraces = store.listTraces;
      const getTrace = store.getTrace;
      store.listTraces = async function (this: Store, ...args) {
        calls.list++;
        return listTraces.apply(this, args);
      };
      store.getTrace = async function (this: Store, ...args) {
        calls.get++;
        return getTrace.apply(this, args);
      };
      try {
        for (const trace of inStore) await readOne(t.engine, 'humid', trace.id);
      } finally {
        store.listTraces = listTraces;
        store.getTrace = getTrace;
      }
      assert.equal(calls.list, 0, 'no list of the rule’s traces');
      assert.equal(calls.get, inStore.length, 'one trace read per trace read');
    });
  });
}

/** The store's answer matches listTraces' for every trace and limit, ties and clamping included. */
function storeSuite(backend: StoreBackend): void {
  describe(`${backend.name} store: isTraceListed agrees with listTraces`, { skip: backend.skip }, () => {
    const openStore = storeOf(backend);

    it('for every trace of a rule, at every limit listTraces takes', async () => {
      const store = openStore();
      const household = unique('hh');
      const now = T0;
      const traces = tracesOfRule(household, 'r', now);
      await store.saveTraces([
        ...traces,
        ...tracesOfRule(household, 'r2', now + 500),
        ...tracesOfRule(unique('hh'), 'r', now + 500),
      ]);
      const all = await store.listTraces({ householdId: household, rule: 'r', limit: 1000 });
      assert.equal(all.length, traces.length);
      for (const limit of [undefined, Number.NaN, -1, 0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 5.5, 5000]) {
        const listed = new Set((await store.listTraces({ householdId: household, rule: 'r', limit })).map((s) => s.id));
        for (const trace of all) {
          assert.equal(
            await store.isTraceListed({ householdId: household, rule: 'r', limit }, trace),
            listed.has(trace.id),
            `${trace.id} at limit ${limit}`,
          );
        }
      }
    });
  });
}

const backends = await storeBackends('triad-trace-read-');
for (const backend of backends) storeSuite(backend);

const sqliteDir = await tempDir('triad-trace-read-db-');
engineSuite(
  'SQLite',
  () => ({ kind: 'sqlite', file: join(sqliteDir, 'triad.db') }),
  false,
  async () => {},
);

const schema = `triad_test_${randomBytes(6).toString('hex')}`;
engineSuite(
  'PostgreSQL',
  () => ({ kind: 'postgres', url: services.pg, schema }),
  await needService('pg'),
  () => dropSchema(schema),
);
