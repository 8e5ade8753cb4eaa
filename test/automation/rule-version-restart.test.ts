import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import type { StoreChoice } from '../../src/core/hub.ts';
import { eventually } from '../helpers/hub-process.ts';
import { needService, services } from '../helpers/services.ts';
import { dropSchema } from '../helpers/stores.ts';
import { advance, HOME, MIN, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

/**
 * A rule's version says whether a run stored before a restart still belongs to it. PostgreSQL
 * keeps an API rule as JSONB, which hands its keys back in another order (shorter keys first):
 * the version must not see that, or every API rule looks changed after each restart and its
 * waiting runs and `for:` countdowns end `cancelled`. And rows a previous build stored, with the
 * version it computed (a hash of the rule's JSON as read), must still resume after the upgrade.
 */

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

// Keys in an order JSONB does not keep (it sorts by length, then bytes), at the top and inside.
const DELAY_RULE = {
  id: 'fan-later',
  triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  actions: [{ delay: '10m' }, { action: 'turn_on', thing: 'living-room-fan' }],
};
const FOR_RULE = {
  id: 'light-when-warm',
  triggers: [
    { trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.temperature', above: 25, for: '10m' },
  ],
  actions: [{ action: 'turn_on', thing: 'hall-light' }],
};
/** A rule whose stored run a test marks as from another version of it: that run must still end. */
const CHANGED_RULE = {
  id: 'changed-meanwhile',
  triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  actions: [{ delay: '10m' }, { action: 'toggle', thing: 'hall-light' }],
};

/** The version builds before canonical versions gave a rule: a hash of its JSON in the order read. */
function oldStyleVersion(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
}

/** The rule's newest trace once it has the status asked for. */
function newestTrace(t: TestHub, rule: string, status: string): Promise<Trace> {
  return eventually(async () => {
    const trace = (await tracesOf(t, rule)).at(-1);
    return trace?.status === status && trace;
  });
}

/** Runs SQL behind the store's back (the hub stopped), `?` placeholders; returns the rows. */
async function behindTheStore(store: StoreChoice, dataDir: string, sql: string, params: unknown[]) {
  if (store.kind === 'postgres') {
    const client = new pg.Client({ connectionString: services.pg });
    await client.connect();
    try {
      await client.query(`SET search_path TO ${store.schema}`);
      let n = 0;
      const { rows } = await client.query(
        sql.replace(/\?/g, () => `$${++n}`),
        params,
      );
      return rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }
  const db = new Database(join(dataDir, 'triad.db'));
  try {
    const statement = db.prepare(sql);
    if (!statement.reader) {
      statement.run(...params);
      return [];
    }
    // Text columns hold JSON in SQLite: parsed as PostgreSQL's driver parses JSONB.
    return (statement.all(...params) as Record<string, unknown>[]).map((row) =>
      Object.fromEntries(
        Object.entries(row).map(([k, v]) => [k, k === 'body' || k === 'payload' ? JSON.parse(String(v)) : v]),
      ),
    );
  } finally {
    db.close();
  }
}

/** Schemas the PostgreSQL tests made, one a test, dropped at the end. */
const schemas: string[] = [];
const backends: Array<{ name: string; store: () => StoreChoice; skip: string | false }> = [
  { name: 'SQLite', store: () => ({ kind: 'sqlite' }), skip: false },
  {
    name: 'PostgreSQL',
    store: () => {
      schemas.push(`triad_test_${randomBytes(6).toString('hex')}`);
      return { kind: 'postgres', url: services.pg, schema: schemas.at(-1) };
    },
    skip: await needService('pg'),
  },
];

type TimerPayload = { rule: string; kind: string; version: string; run?: { version: string } };

/**
 * Starts a hub on `store`, creates `rules` over the API and fires them (the humidity changes, the
 * temperature goes from 20 to 27 °C), until `waiting`'s run waits; stops it. Gives its data
 * folder, the rules' versions and the timer rows it left.
 */
async function leaveWaiting(store: StoreChoice, rules: Array<{ id: string }>, waiting: string) {
  const clock = new VirtualClock(T0);
  const t = await startTestHub({ clock, store });
  const versions: Record<string, string> = {};
  try {
    for (const rule of rules) await postRule(t, rule);
    t.set('living-room-sensor', 'sensor.temperature', 20);
    await advance(clock, 1000, 100);
    t.set('living-room-sensor', 'sensor.humidity', 70);
    t.set('living-room-sensor', 'sensor.temperature', 27);
    await advance(clock, 2000, 100);
    await newestTrace(t, waiting, 'waiting');
    for (const { id } of rules) versions[id] = t.engine.get(HOME, id).rule?.version ?? '';
  } finally {
    await t.hub.stop();
  }
  const rows = await behindTheStore(store, t.dataDir, 'SELECT id, payload FROM timers', []);
  const timers = rows.map((row) => ({ id: String(row.id), payload: row.payload as TimerPayload }));
  return { dataDir: t.dataDir, versions, timers };
}

/** The version the previous build gave a rule stored in `store`: its body's JSON as read back. */
async function oldStyleOf(store: StoreChoice, dataDir: string, rule: string): Promise<string> {
  const [row] = await behindTheStore(store, dataDir, 'SELECT body FROM automation_rules WHERE id = ?', [rule]);
  return oldStyleVersion(row.body);
}

/** Rewrites a timer row as if stored with `version` (and its run, if it holds one). */
async function storeWithVersion(
  store: StoreChoice,
  dataDir: string,
  timer: { id: string; payload: TimerPayload },
  version: string,
) {
  const payload = { ...timer.payload, version };
  if (payload.run) payload.run = { ...payload.run, version };
  await behindTheStore(store, dataDir, 'UPDATE timers SET payload = ? WHERE id = ?', [
    JSON.stringify(payload),
    timer.id,
  ]);
}

for (const { name, store: freshStore, skip } of backends) {
  describe(`automations: an API rule's waiting runs survive a restart (${name})`, { skip }, () => {
    after(async () => {
      for (const schema of schemas.splice(0)) await dropSchema(schema);
    });

    it('resumes a delay and a for: countdown of API rules after a restart', async () => {
      const store = freshStore();
      const { dataDir } = await leaveWaiting(store, [DELAY_RULE, FOR_RULE], DELAY_RULE.id);

      const clock2 = new VirtualClock(T0 + 2 * MIN);
      const second = await startTestHub({ clock: clock2, store, dataDir });
      try {
        await advance(clock2, 10 * MIN, 5000);
        const delayed = await newestTrace(second, DELAY_RULE.id, 'finished');
        assert.equal(delayed.error, null);
        assert.equal(second.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), true);
        // The countdown went on from where it was: the light came on, once.
        assert.equal(second.ruleCommands(FOR_RULE.id).length, 1);
        assert.equal((await newestTrace(second, FOR_RULE.id, 'finished')).error, null);
        assert.equal(second.hub.twins.value(HOME, 'hall-light', 'light.on'), true);
        assert.equal((await tracesOf(second, FOR_RULE.id)).length, 1);
      } finally {
        await second.hub.stop();
      }
    });

    it('resumes a run stored with the version the previous build gave, and ends one of a changed rule', async () => {
      const store = freshStore();
      const { dataDir, versions, timers } = await leaveWaiting(store, [DELAY_RULE, CHANGED_RULE], DELAY_RULE.id);
      // As the previous build stored them: the one rule's run with the hash of the rule's JSON as
      // the store hands it back; the other's with a version its rule no longer has.
      const old = await oldStyleOf(store, dataDir, DELAY_RULE.id);
      assert.notEqual(old, versions[DELAY_RULE.id], 'the test needs a rule whose old-style version differs');
      assert.equal(timers.length, 2);
      for (const timer of timers) {
        assert.equal(timer.payload.version, versions[timer.payload.rule]);
        await storeWithVersion(store, dataDir, timer, timer.payload.rule === DELAY_RULE.id ? old : 'f00df00df00df00d');
      }

      const clock2 = new VirtualClock(T0 + 2 * MIN);
      const second = await startTestHub({ clock: clock2, store, dataDir });
      try {
        const ended = await newestTrace(second, CHANGED_RULE.id, 'cancelled');
        assert.match(String(ended.error), /changed or removed/);
        await advance(clock2, 10 * MIN, 5000);
        assert.equal((await newestTrace(second, DELAY_RULE.id, 'finished')).error, null);
        assert.equal(second.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), true);
        assert.equal(second.ruleCommands(CHANGED_RULE.id).length, 0);
      } finally {
        await second.hub.stop();
      }
    });

    it('writes resumed old-style rows again with the current version', async () => {
      const store = freshStore();
      const later = { ...DELAY_RULE, actions: [{ delay: '2h' }, DELAY_RULE.actions[1]] };
      const warm = { ...FOR_RULE, triggers: [{ ...FOR_RULE.triggers[0], for: '2h' }] };
      const { dataDir, versions, timers } = await leaveWaiting(store, [later, warm], later.id);
      // A waiting run and a countdown, as the previous build stored them.
      assert.deepEqual(timers.map((timer) => timer.payload.kind).sort(), ['for', 'run']);
      for (const timer of timers)
        await storeWithVersion(store, dataDir, timer, await oldStyleOf(store, dataDir, timer.payload.rule));

      // Still waiting after the restart, their rows say the version their rules have now: the
      // next start needs no help from the old-style hash.
      const second = await startTestHub({ clock: new VirtualClock(T0 + 2 * MIN), store, dataDir });
      try {
        await newestTrace(second, later.id, 'waiting');
      } finally {
        await second.hub.stop();
      }
      const rewritten = await behindTheStore(store, dataDir, 'SELECT payload FROM timers', []);
      assert.equal(rewritten.length, 2);
      for (const { payload } of rewritten) {
        const { rule, version, run } = payload as TimerPayload;
        assert.equal(version, versions[rule], rule);
        if (run) assert.equal(run.version, versions[rule]);
      }
    });
  });
}
