import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { AdapterContext } from '../src/adapters/adapter.ts';
import { HomeAssistantDiscovery } from '../src/adapters/mqtt/discovery.ts';
import { newestFinished } from '../src/automation/live/world.ts';
import { FINAL_TRACE } from '../src/automation/runtime/trace.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { CommandStatus, GenericEvent, Report, StateChanged } from '../src/core/events.ts';
import { createLogger } from '../src/core/log.ts';
import type { Thing } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import { TRACE_BODY_COLUMN } from '../src/store/migrations.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import {
  MAX_SPREAD_PARTS,
  PART_ROWS,
  SqliteWriter,
  splitIntoParts,
  type WriteStep,
} from '../src/store/sqlite-writer.ts';
import type { AuditRecord, StoredTrace } from '../src/store/store.ts';
import { tempDir } from './helpers/hub-process.ts';
import { MemoryLink } from './helpers/memory-link.ts';
import { makeCommand, T0, unique } from './helpers/stores.ts';

/**
 * The SQLite store's bulk writes run on a writer thread for a file database (inline otherwise);
 * whichever way, a settled write is readable, writes land in order, a refused batch lands not at
 * all, and close() loses nothing handed over. Plus newestFinished (trace batches trimmed to
 * retention) and discovery's JSON sniffing, seen from outside.
 */
const MODES = ['thread', 'inline'] as const;
type Mode = (typeof MODES)[number];

let dir: string;
before(async () => {
  dir = await tempDir('triad-writer-');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The default path (openStore) for the thread; the explicit option for inline. */
async function open(file: string, mode: Mode): Promise<SqliteStore> {
  if (mode === 'thread') return (await openStore({ kind: 'sqlite', file })) as SqliteStore;
  const store = new SqliteStore({ file, writer: 'inline' });
  await store.migrate();
  return store;
}

function change(householdId: string, n: number, fields: Partial<StateChanged> = {}): StateChanged {
  const id = unique(`sc${String(n).padStart(6, '0')}`);
  return {
    ...{ type: 'state' as const, id, householdId, ts: T0 + n, cause: `report-${n}`, thing: 'car' },
    ...{ property: `p${n % 10}`, from: n - 1, to: n, source: 'viss' },
    ...fields,
  };
}

function ran(householdId: string, thing: string): GenericEvent {
  return { type: 'automation.ran', id: unique('evt'), householdId, ts: T0, thing };
}

function makeTrace(householdId: string, rule: string, n: number, fields: Partial<StoredTrace> = {}): StoredTrace {
  const id = unique(`trc${n}`);
  return { id, householdId, rule, startedAt: T0 + n * 1000, status: 'finished', body: { id, n }, ...fields };
}

it('a file store writes on a thread; inline and :memory: stores do not', async () => {
  // White-box on purpose: otherwise both modes below could silently be the inline path.
  const writerOf = (store: SqliteStore) => (store as unknown as { writer: unknown }).writer;
  const stores = [
    await open(join(dir, 'kind-thread.db'), 'thread'),
    await open(join(dir, 'kind-inline.db'), 'inline'),
    (await openStore({ kind: 'sqlite', file: ':memory:' })) as SqliteStore,
  ];
  assert.deepEqual(
    stores.map((store) => writerOf(store) instanceof SqliteWriter),
    [true, false, false],
  );
  for (const store of stores) await store.close();
});

for (const mode of MODES) {
  describe(`SQLite bulk writes (${mode})`, () => {
    let store: SqliteStore;
    before(async () => {
      store = await open(join(dir, `${mode}.db`), mode);
    });
    after(async () => {
      await store.close();
    });

    it('every connection that commits syncs the log at each commit, so what settled survives a power cut', async () => {
      // SQLite's `synchronous` numbers: 2 is FULL. NORMAL (1) keeps the file consistent but can
      // lose acknowledged commits when the machine loses power; a power cut cannot be staged
      // here, so the setting of each committing connection is what is checked.
      await store.appendHistory([change(unique('hh'), 1)]);
      const FULL = 2;
      assert.deepEqual(await store.synchronous(), { connection: FULL, writer: mode === 'thread' ? FULL : null });
    });

    it('a settled write is visible to reads on the main connection at once', async () => {
      const household = unique('hh');
      await store.appendHistory([1, 2, 13].map((n) => change(household, n, { property: 'battery.level' })));
      const points = await store.queryHistory({ householdId: household, thing: 'car', property: 'battery.level' });
      assert.deepEqual(
        points.map((p) => `${p.value} ${p.cause}`),
        ['1 report-1', '2 report-2', '13 report-13'],
      );
      const [latest] = await store.latestValues(household);
      assert.deepEqual([latest.property, latest.value, latest.ts], ['battery.level', 13, T0 + 13]);

      const commands = [makeCommand(household), makeCommand(household, { status: 'sent', thing: 'heater' })];
      await store.saveCommands(commands);
      assert.deepEqual(await store.getCommand(household, commands[1].id), commands[1]);

      const event = ran(household, 'x');
      await store.appendEvents([event]);
      assert.deepEqual(await store.listEvents({ householdId: household, types: ['automation.ran'] }), [event]);
    });

    it('keeps the order of writes fired without awaiting: the last save of a command wins', async () => {
      const household = unique('hh');
      const statuses: CommandStatus[] = ['pending', 'sent', 'failed', 'expired', 'confirmed'];
      const base = makeCommand(household);
      const saves = Array.from({ length: 60 }, (_, n) =>
        store.saveCommand({ ...base, status: statuses[n % statuses.length], updatedAt: T0 + n }),
      );
      await Promise.all(saves);
      const saved = await store.getCommand(household, base.id);
      assert.equal(saved?.status, statuses[59 % statuses.length]);
      assert.equal(saved?.updatedAt, T0 + 59);
    });

    it('lands every kind of write in the order it was made: a thing deleted, then saved again, stays', async () => {
      const household = unique('hh');
      const lamp = {
        id: 'lamp',
        householdId: household,
        kind: 'device',
        name: 'Lamp',
        adapter: 'mqtt',
        properties: {},
        actions: {},
        createdAt: '2024-01-01T00:00:00.000Z',
        updatedAt: '2024-01-01T00:00:00.000Z',
      } as Thing;
      await store.saveThing(lamp);
      // As discovery does when a device is re-announced: the old thing goes, the id is claimed again.
      const removing = store.deleteThing(household, 'lamp');
      const saving = store.saveThing({ ...lamp, name: 'Lamp (re-paired)' });
      const timer = store.saveTimer({ id: unique('tmr'), householdId: household, owner: 'test', due: T0, payload: {} });
      await Promise.all([removing, saving, timer]);
      assert.deepEqual(
        (await store.listThings(household)).map((t) => t.name),
        ['Lamp (re-paired)'],
      );
    });

    it('refuses a batch with a row the database rejects, stores none of it, and keeps working', async () => {
      const household = unique('hh');
      const bad = change(household, 2, { source: null as unknown as string });
      const refused = store.appendHistory([change(household, 1), bad, change(household, 3)]);
      await assert.rejects(refused, (error: Error & { code?: string }) => {
        assert.match(String(error.code), /^SQLITE_CONSTRAINT/);
        assert.match(error.message, /NOT NULL constraint failed: history\.source/);
        return true;
      });
      assert.deepEqual(await store.queryHistory({ householdId: household, thing: 'car' }), []);
      assert.deepEqual(await store.latestValues(household), []);

      // A single row is written without a transaction of its own: refused all the same.
      const command = makeCommand(household, { status: null as unknown as CommandStatus });
      await assert.rejects(store.saveCommand(command), { code: 'SQLITE_CONSTRAINT_NOTNULL' });
      assert.equal(await store.getCommand(household, command.id), null);
      const traces = [makeTrace(household, 'r', 1), makeTrace(household, 'r', 2, { rule: null as unknown as string })];
      await assert.rejects(store.saveTraces(traces), { code: 'SQLITE_CONSTRAINT_NOTNULL' });
      assert.equal(await store.getTrace(household, traces[0].id), null);

      await store.appendHistory([change(household, 4)]);
      assert.equal((await store.queryHistory({ householdId: household, thing: 'car' })).length, 1);
    });

    it('prunes and deletes traces and appends audit lines, counting what pruning deleted', async () => {
      const household = unique('hh');
      const prune = { householdId: household, rule: 'r', keep: 3, olderThan: 0 };
      // Fired without awaiting: the prune sees the traces saved before it, not the one saved after.
      const saving = store.saveTraces(Array.from({ length: 10 }, (_, n) => makeTrace(household, 'r', n)));
      const pruning = store.pruneTraces(prune);
      const later = store.saveTrace(makeTrace(household, 'r', 20));
      const other = store.saveTrace(makeTrace(household, 'other', 0));
      const [, pruned] = await Promise.all([saving, pruning, later, other]);
      assert.equal(pruned, 7);
      const left = await store.listTraces({ householdId: household, rule: 'r' });
      assert.deepEqual(
        left.map((t) => t.body.n),
        [20, 9, 8, 7],
      );
      assert.equal(await store.pruneTraces(prune), 1);
      await store.deleteTraces(household, 'r');
      assert.deepEqual(await store.listTraces({ householdId: household, rule: 'r' }), []);
      assert.equal((await store.listTraces({ householdId: household, rule: 'other' })).length, 1);

      const line = (n: number): AuditRecord => ({
        ...{ id: `aud${n}`, householdId: household, ts: T0 + n, via: 'automation', thing: 'fan', action: 'turn_on' },
        ...{ actor: { kind: 'rule', id: 'r', name: 'r' }, result: 'accepted', reason: null, commandId: null },
      });
      await store.appendAudit(line(1));
      await store.appendAuditBatch([line(2), line(3)]);
      const audit = await store.listAudit({ householdId: household });
      assert.deepEqual(
        audit.map((a) => a.id),
        ['aud3', 'aud2', 'aud1'],
      );
    });

    it("stores a command's, a trace's and an event's body as exactly the JSON text of what was saved (property)", async () => {
      // A trace's body is handed over as an object and encoded where it is written (on the
      // thread, in thread mode); a command's and an event's are encoded before they are handed
      // over (see WriteStep.json). Either way the stored text must be JSON.stringify's.
      const raw = (sql: string, ...params: unknown[]) =>
        (store as unknown as { db: { prepare(s: string): { pluck(): { get(...p: unknown[]): unknown } } } }).db
          .prepare(sql)
          .pluck()
          .get(...params);
      const json = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });
      await fc.assert(
        fc.asyncProperty(json, json, fc.constantFrom(1, 2, 3), async (input, body, batch) => {
          const household = unique('hh');
          const commands = Array.from({ length: batch }, () => makeCommand(household, { input }));
          const traces = Array.from({ length: batch }, (_, n) => makeTrace(household, 'r', n, { body }));
          const events = Array.from({ length: batch }, () => ({ ...ran(household, 'car'), data: body }));
          if (batch === 1) await Promise.all([store.saveCommand(commands[0]), store.saveTrace(traces[0])]);
          else await Promise.all([store.saveCommands(commands), store.saveTraces(traces)]);
          await store.appendEvents(events);
          for (const event of events) {
            const text = raw('SELECT body FROM events WHERE household_id = ? AND id = ?', household, event.id);
            assert.equal(text, JSON.stringify(event));
          }
          for (const command of commands) {
            const text = raw('SELECT body FROM commands WHERE household_id = ? AND id = ?', household, command.id);
            assert.equal(text, JSON.stringify(command));
          }
          for (const trace of traces) {
            const text = raw(
              'SELECT body FROM automation_traces WHERE household_id = ? AND id = ?',
              household,
              trace.id,
            );
            assert.equal(text, JSON.stringify(trace.body));
          }
        }),
        { numRuns: 40 },
      );
    });

    it(`commits a batch longer than a part (${PART_ROWS} rows) whole: a row refused in its last part stores none`, async () => {
      const household = unique('hh');
      const rows = Array.from({ length: PART_ROWS * 10 }, (_, n) => change(household, n + 1));
      rows[rows.length - 2] = change(household, rows.length - 1, { source: null as unknown as string });
      await assert.rejects(store.appendHistory(rows), { code: 'SQLITE_CONSTRAINT_NOTNULL' });
      assert.deepEqual(await store.queryHistory({ householdId: household, thing: 'car' }), []);
      assert.deepEqual(await store.latestValues(household), []);
      const good = Array.from({ length: PART_ROWS * 3 + 5 }, (_, n) => change(household, n + 1));
      await store.appendHistory(good);
      const stored = await store.queryHistory({ householdId: household, thing: 'car', limit: 10_000 });
      assert.deepEqual(
        stored.map((p) => p.value),
        good.map((c) => c.to),
      );
    });

    it('lands a long batch and the short writes fired after it in the order they were made', async () => {
      const household = unique('hh');
      const commands = Array.from({ length: PART_ROWS * 6 }, () => makeCommand(household, { status: 'sent' }));
      const last = commands[commands.length - 1];
      const writes = [
        store.saveCommands(commands),
        store.saveCommand({ ...last, status: 'confirmed', updatedAt: T0 + 1 }),
        store.saveCommands(commands.slice(0, PART_ROWS + 1).map((c) => ({ ...c, status: 'failed' as const }))),
        store.saveCommand({ ...commands[0], status: 'expired', updatedAt: T0 + 2 }),
      ];
      await Promise.all(writes);
      assert.equal((await store.getCommand(household, last.id))?.status, 'confirmed');
      assert.equal((await store.getCommand(household, commands[0].id))?.status, 'expired');
      assert.equal((await store.getCommand(household, commands[PART_ROWS].id))?.status, 'failed');
      assert.equal((await store.getCommand(household, commands[PART_ROWS + 1].id))?.status, 'sent');
    });

    it('close() waits for every write already handed over', async () => {
      const closing = join(dir, `${mode}-close.db`);
      const first = await open(closing, mode);
      const household = unique('hh');
      const pending: Promise<void>[] = [];
      for (let batch = 0; batch < 8; batch++) {
        pending.push(first.appendHistory(Array.from({ length: 250 }, (_, i) => change(household, batch * 250 + i))));
      }
      await first.close();
      await Promise.all(pending);
      await assert.rejects(first.appendHistory([change(household, 0)]));
      const reopened = await open(closing, mode);
      try {
        const rows = await reopened.queryHistory({ householdId: household, thing: 'car', limit: 10_000 });
        assert.equal(rows.length, 2000);
        assert.deepEqual(new Set(rows.map((r) => r.value)).size, 2000);
        const latest = await reopened.latestValues(household);
        // Each of the ten properties ends at its change of the last batch.
        const last = Array.from({ length: 10 }, (_, i) => 1990 + i);
        assert.deepEqual(latest.map((v) => v.value).sort(), last);
      } finally {
        await reopened.close();
      }
    });
  });
}

it('splits a batch into parts of at most the part size, keeping every row and its order (property)', () => {
  const steps = fc.array(
    fc.record({
      sql: fc.constantFrom('a', 'b', 'c'),
      rows: fc.array(fc.tuple(fc.nat()), { maxLength: 90 }),
      json: fc.option(fc.constant([0] as readonly number[]), { nil: undefined }),
    }),
    { maxLength: 6 },
  );
  fc.assert(
    fc.property(steps, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 20 }), (batch, size, maxParts) => {
      const parts = splitIntoParts(batch as WriteStep[], size, maxParts);
      const total = batch.reduce((n, step) => n + step.rows.length, 0);
      if (total <= size || total > size * maxParts) assert.deepEqual(parts, [batch]);
      else {
        assert.ok(parts.length <= maxParts);
        for (const part of parts) assert.ok(part.reduce((n, step) => n + step.rows.length, 0) <= size);
      }
      // Read back in order, every row comes with its own statement and json columns.
      const flat = (list: WriteStep[]) => list.flatMap((step) => step.rows.map((row) => [step.sql, step.json, row]));
      assert.deepEqual(parts.flatMap(flat), flat(batch as WriteStep[]));
    }),
  );
});

describe('the writer thread copies a long batch over in parts', () => {
  let store: SqliteStore;
  /** Each message to the thread, with the event-loop turn it was sent in. */
  let sent: Array<{ rows: number; more: boolean; turn: number; steps: WriteStep[] }> = [];
  /** The thread's replies: one per batch, with how often it paused within it. */
  let replies: Array<{ id: number; changes?: number; pauses?: number }> = [];
  let turn = 0;
  let counting = true;
  const countTurns = () => {
    turn++;
    if (counting) setImmediate(countTurns);
  };
  before(async () => {
    store = await open(join(dir, 'parts.db'), 'thread');
    await store.appendHistory([change(unique('hh'), 0)]);
    const worker = (
      store as unknown as {
        writer: { worker: { postMessage(message: unknown): void; on(event: 'message', f: (m: never) => void): void } };
      }
    ).writer.worker;
    worker.on('message', (reply: (typeof replies)[number]) => replies.push(reply));
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (message: unknown) => {
      const m = message as { steps?: WriteStep[]; more?: boolean };
      // History's rows go as one JSON text with their count (WriteStep.plain).
      const rowsIn = (step: WriteStep | { count: number }) => ('count' in step ? step.count : step.rows.length);
      if (m.steps)
        sent.push({ rows: m.steps.reduce((n, s) => n + rowsIn(s), 0), more: !!m.more, turn, steps: m.steps });
      post(message);
    };
    setImmediate(countTurns);
  });
  after(async () => {
    counting = false;
    await store.close();
  });

  it('one part a turn while the event loop keeps up', async () => {
    // A turn of this process that runs late (a busy machine) rightly sends the rest at once, so
    // the one-part-a-turn pattern is looked for over a few batches.
    let spread = false;
    for (let attempt = 0; attempt < 5 && !spread; attempt++) {
      sent = [];
      const household = unique('hh');
      await store.appendHistory(Array.from({ length: PART_ROWS * 6 }, (_, n) => change(household, n + 1)));
      // The history rows and the ten properties' latest values, in parts of at most PART_ROWS rows.
      assert.equal(
        sent.reduce((n, m) => n + m.rows, 0),
        PART_ROWS * 6 + 10,
      );
      assert.ok(sent.length >= 7 && sent.every((m) => m.rows <= PART_ROWS));
      assert.deepEqual(
        sent.map((m) => m.more),
        [...Array(sent.length - 1).fill(true), false],
      );
      const stored = await store.queryHistory({ householdId: household, thing: 'car', limit: 1000 });
      assert.equal(stored.length, PART_ROWS * 6);
      spread = new Set(sent.map((m) => m.turn)).size === sent.length;
    }
    assert.ok(spread, 'each part in a turn of its own');
  });

  it('the rest at once when the event loop has fallen behind', async () => {
    sent = [];
    const household = unique('hh');
    const writing = store.appendHistory(Array.from({ length: PART_ROWS * 6 }, (_, n) => change(household, n + 1)));
    // This turn runs long, as one working off a flood does: the next pump finds itself late.
    const until = performance.now() + 10;
    while (performance.now() < until);
    await writing;
    assert.ok(sent.length >= 7);
    const turns = sent.map((m) => m.turn);
    assert.equal(new Set(turns.slice(1)).size, 1, 'every part after the first in one turn');
    assert.equal(
      (await store.queryHistory({ householdId: household, thing: 'car', limit: 1000 })).length,
      PART_ROWS * 6,
    );
  });

  it('a batch of a flood (more than MAX_SPREAD_PARTS parts) in one message, as before, and without pauses', async () => {
    sent = [];
    replies = [];
    const household = unique('hh');
    const rows = PART_ROWS * MAX_SPREAD_PARTS + 1;
    await store.appendHistory(Array.from({ length: rows }, (_, n) => change(household, n + 1)));
    assert.deepEqual(
      sent.map(({ rows, more, turn }) => ({ rows, more, turn })),
      [{ rows: rows + 10, more: false, turn: sent[0]?.turn }],
    );
    assert.equal(replies.at(-1)?.pauses, 0);
  });

  it('a batch written in slices, with pauses between them, is read whole or not at all', async () => {
    // A batch of a write window's size pauses every 0.3 ms of rows (sqlite-writer-thread.mjs),
    // holding its transaction open meanwhile; readers on the hub's own connection, polling all
    // the while, must see none of its rows or all of them. Well under the flood size, which
    // would run without pauses.
    sent = [];
    replies = [];
    const household = unique('hh');
    const rows = PART_ROWS * 4;
    assert.ok(rows + 10 < PART_ROWS * MAX_SPREAD_PARTS);
    const big = 'x'.repeat(8000);
    const count = (store as unknown as { db: { prepare(sql: string): { pluck(): { get(h: string): number } } } }).db
      .prepare('SELECT count(*) FROM history WHERE household_id = ?')
      .pluck();
    const seen: number[] = [];
    let done = false;
    const writing = store
      .appendHistory(Array.from({ length: rows }, (_, n) => change(household, n + 1, { to: `${big}${n}` })))
      .finally(() => {
        done = true;
      });
    while (!done) {
      seen.push(count.get(household));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await writing;
    assert.ok((replies.at(-1)?.pauses ?? 0) > 0, 'the thread paused within the batch');
    assert.ok(seen.length > 1, 'read while the batch was being written');
    assert.deepEqual(
      seen.filter((n) => n !== 0 && n !== rows),
      [],
    );
    assert.equal(count.get(household), rows);
  });

  it('sends commands and events as their JSON text, traces as objects for the thread to encode', async () => {
    // A command row's object cost the thread more to read back (the clone's deserialisation) than
    // its JSON costs to make here: see WriteStep.json.
    const household = unique('hh');
    /** The steps sent to the thread for one write. */
    const stepsOf = async (write: () => Promise<void>) => {
      sent = [];
      await write();
      return sent.flatMap((m) => m.steps);
    };
    /** One step, with no `json` columns, each row carrying its body's JSON text. */
    const sendsText = async (write: () => Promise<void>, bodies: unknown[]) => {
      const [step, ...more] = await stepsOf(write);
      assert.deepEqual(more, []);
      assert.equal(step.json, undefined);
      assert.deepEqual(
        step.rows.map((row, i) => row.includes(JSON.stringify(bodies[i]))),
        [true, true],
        'each row carries its JSON text',
      );
    };
    const command = makeCommand(household);
    const commands = [command, makeCommand(household)];
    await sendsText(() => store.saveCommands(commands), commands);
    const events = [ran(household, 'car'), ran(household, 'car')];
    await sendsText(() => store.appendEvents(events), events);
    const traces = [makeTrace(household, 'r', 1), makeTrace(household, 'r', 2)];
    const [traceStep, ...moreTraceSteps] = await stepsOf(() => store.saveTraces(traces));
    assert.deepEqual(moreTraceSteps, []);
    assert.deepEqual(traceStep.json, [TRACE_BODY_COLUMN]);
    assert.deepEqual(
      traceStep.rows.map((row) => row[TRACE_BODY_COLUMN]),
      traces.map((trace) => trace.body),
      'the object goes, for the thread to encode',
    );
    // And they read back as they were.
    assert.deepEqual(await store.getCommand(household, command.id), command);
  });

  it('refuses a batch whose later part cannot be copied, storing none of it, and keeps working', async () => {
    sent = [];
    const household = unique('hh');
    // Traces go over as objects (WriteStep.json); commands and events as their JSON text, which
    // has no function to fail on.
    const traces = Array.from({ length: PART_ROWS * 3 }, (_, n) => makeTrace(household, 'r', n));
    const broken = traces[PART_ROWS * 2 + 1];
    traces[PART_ROWS * 2 + 1] = { ...broken, body: { ...broken.body, broken: () => 1 } };
    await assert.rejects(store.saveTraces(traces), { name: 'DataCloneError' });
    // It did go over in parts: the first went to the thread before the one that failed.
    assert.ok(sent.length >= 2 && sent[0].more, 'the batch was split, and its first part sent');
    assert.deepEqual(await store.listTraces({ householdId: household, rule: 'r', limit: 1000 }), []);
    const after = [makeTrace(household, 'r', 1000), makeTrace(household, 'r', 1001)];
    await store.saveTraces(after);
    assert.deepEqual(
      (await store.listTraces({ householdId: household, rule: 'r', limit: 1000 })).map((t) => t.id).sort(),
      after.map((t) => t.id).sort(),
    );
  });
});

it('hostile strings round-trip unchanged through the writer thread', async () => {
  const store = await open(join(dir, 'strings.db'), 'thread');
  const hostile = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom("'; DROP TABLE history; --", '"\'`\\', '\u2028\u2029\uFEFF', '𝄞👩‍👩‍👧‍👦', '%s %n ?1 $1 :name'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).map((s) => s.repeat(5000)),
  );
  // NUL is left out: C string APIs end text there, and no real name or cause holds one.
  const text = hostile.map((s) => s.replaceAll('\u0000', ''));
  try {
    await fc.assert(
      fc.asyncProperty(text, text, text, async (source, cause, thing) => {
        const household = unique('hh');
        const state = change(household, 1, { source, cause });
        const event = ran(household, thing);
        // A trace's body is the one still encoded on the thread (WriteStep.json).
        const trace = makeTrace(household, thing, 1, { body: { source, cause, thing } });
        await store.appendHistory([state]);
        await store.appendEvents([event]);
        await store.saveTrace(trace);
        assert.deepEqual(await store.getTrace(household, trace.id), trace);
        const [row] = await store.pageHistory({ householdId: household, from: T0, to: T0 + 10, limit: 5 });
        assert.deepEqual([row.source, row.cause], [source, cause]);
        // Filtering by thing reads the column, not the JSON body.
        assert.deepEqual(await store.listEvents({ householdId: household, types: ['automation.ran'], thing }), [event]);
      }),
      { numRuns: 60 },
    );
  } finally {
    await store.close();
  }
});

describe('newestFinished', () => {
  const hh = 'h1';
  it('leaves out the oldest finished traces of a crowded rule, keeping unfinished ones and batch order', () => {
    const batch = [
      makeTrace(hh, 'a', 1, { id: 'a1' }),
      makeTrace(hh, 'a', 0, { id: 'a0-running', status: 'running' }),
      makeTrace(hh, 'a', 3, { id: 'a3x', status: 'error' }),
      makeTrace(hh, 'b', 1, { id: 'b1' }),
      makeTrace(hh, 'a', 3, { id: 'a3y', status: 'cancelled' }),
      makeTrace(hh, 'a', 3, { id: 'a3w' }),
      makeTrace('h2', 'a', 0, { id: 'other-household' }),
    ];
    const { kept, crowded } = newestFinished(batch, 2);
    // Equal starts: the greater id is the newer one, as retention's ORDER BY ... id DESC has it.
    assert.deepEqual(
      kept.map((t) => t.id),
      ['a0-running', 'a3x', 'b1', 'a3y', 'other-household'],
    );
    assert.deepEqual(crowded, [{ householdId: hh, rule: 'a' }]);
  });

  it('keeps a batch within retention whole, and with perRule 0 only the unfinished', () => {
    const batch = [makeTrace(hh, 'a', 1), makeTrace(hh, 'a', 2, { status: 'waiting' }), makeTrace(hh, 'a', 3)];
    assert.deepEqual(newestFinished(batch, 2), { kept: batch, crowded: [] });
    const none = newestFinished(batch, 0);
    assert.deepEqual(
      none.kept.map((t) => t.status),
      ['waiting'],
    );
    assert.deepEqual(none.crowded, [{ householdId: hh, rule: 'a' }]);
  });

  it('keeps exactly the newest perRule finished traces of each rule, in batch order (property)', () => {
    const statuses = [...FINAL_TRACE, 'running', 'waiting'];
    const trace = fc.record({
      id: fc.integer({ min: 0, max: 999 }).map((n) => `t${n}`),
      householdId: fc.constantFrom('h1', 'h2'),
      rule: fc.constantFrom('r1', 'r2'),
      startedAt: fc.integer({ min: 0, max: 5 }),
      status: fc.constantFrom(...statuses),
      body: fc.constant({}),
    });
    const batches = fc.uniqueArray(trace, { selector: (t) => t.id, maxLength: 40 });
    fc.assert(
      fc.property(batches, fc.integer({ min: 0, max: 6 }), (batch, perRule) => {
        const { kept, crowded } = newestFinished(batch, perRule);
        const isFinal = (t: StoredTrace) => FINAL_TRACE.has(t.status as never);
        // A subsequence of the batch, with every unfinished trace in it.
        assert.deepEqual(
          kept,
          batch.filter((t) => kept.includes(t)),
        );
        assert.ok(batch.every((t) => isFinal(t) || kept.includes(t)));
        const newer = (a: StoredTrace, b: StoredTrace) =>
          a.startedAt > b.startedAt || (a.startedAt === b.startedAt && a.id > b.id);
        const expectCrowded: string[] = [];
        for (const key of new Set(batch.map((t) => `${t.householdId}/${t.rule}`))) {
          const finished = batch.filter((t) => isFinal(t) && `${t.householdId}/${t.rule}` === key);
          const ins: StoredTrace[] = finished.filter((t) => kept.includes(t));
          const outs = finished.filter((t) => !kept.includes(t));
          assert.equal(ins.length, Math.min(finished.length, perRule));
          assert.ok(outs.every((out) => ins.every((inn) => newer(inn, out))));
          if (finished.length > perRule) expectCrowded.push(key);
        }
        assert.deepEqual(crowded.map((c) => `${c.householdId}/${c.rule}`).sort(), expectCrowded.sort());
      }),
      { numRuns: 300 },
    );
  });
});

it('discovery reads JSON states behind blanks and plain-text states alike', async () => {
  const reports: Report[] = [];
  const ctx: AdapterContext = {
    ...{ clock: new VirtualClock(), bus: new LocalBus(), log: createLogger({ level: 'error', sink: () => {} }) },
    upsertThing: async (thing) => ({ ...thing, createdAt: 'now', updatedAt: 'now' }) as Thing,
    removeThing: async () => {},
    ...{ getThing: () => undefined, getValue: () => undefined },
    ingest: (batch) => void reports.push(...batch),
    setAvailability: () => {},
  };
  const link = new MemoryLink();
  const adapter = new HomeAssistantDiscovery({ link, householdId: 'home' });
  await adapter.start(ctx);
  try {
    const kettle = { name: 'Kettle', state_topic: 'k/state', command_topic: 'k/set' };
    link.deliver('homeassistant/switch/kettle/config', kettle);
    const probe = { name: 'Probe', state_topic: 'p/state', device_class: 'temperature', unit_of_measurement: '°C' };
    link.deliver('homeassistant/sensor/probe/config', { ...probe, value_template: '{{ value_json.temperature }}' });
    // Says whether the payload reached the template as JSON or only as text.
    const how = "{{ 'json ' ~ (value_json | tojson) if value_json is defined else 'text ' ~ value }}";
    link.deliver('homeassistant/sensor/raw/config', { name: 'Raw', state_topic: 'r/state', value_template: how });
    await adapter.idle();
    // [topic, payload, what the hub is told]
    const cases: Array<[string, string, string]> = [
      ['k/state', 'ON', 'kettle switch.on true'],
      ['k/state', 'OFF', 'kettle switch.on false'],
      ['p/state', ' {"temperature": 21.5}', 'probe sensor.temperature 21.5'],
      ['p/state', '\r\n\t{"temperature": -4}', 'probe sensor.temperature -4'],
      ['r/state', '-3', 'raw sensor.raw json -3'],
      ['r/state', 'null', 'raw sensor.raw json null'],
      ['r/state', 'true', 'raw sensor.raw json true'],
      ['r/state', 'false', 'raw sensor.raw json false'],
      ['r/state', ' [1, "x"]', 'raw sensor.raw json [1,"x"]'],
      ['r/state', '"hi"', 'raw sensor.raw json "hi"'],
      ['r/state', 'ON', 'raw sensor.raw text ON'],
      ['r/state', 'nope', 'raw sensor.raw text nope'],
      ['r/state', '{broken', 'raw sensor.raw text {broken'],
    ];
    for (const [topic, payload] of cases) {
      link.deliver(topic, payload);
      await adapter.idle();
    }
    assert.deepEqual(
      reports.map((r) => `${r.thing} ${r.property} ${r.value}`),
      cases.map((c) => c[2]),
    );
  } finally {
    await adapter.stop();
  }
});
