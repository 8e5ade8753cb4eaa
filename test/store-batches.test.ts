import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { GroupCommit } from '../src/store/group-commit.ts';
import type { AuditRecord, Store, StoredTrace } from '../src/store/store.ts';
import { makeCommand, type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/**
 * The batch writes behind the hub's group commits (commands, traces, audit lines), against
 * SQLite and PostgreSQL alike: a batch lands whole, in order, or not at all.
 */

function makeTrace(householdId: string, rule: string, n: number, fields: Partial<StoredTrace> = {}): StoredTrace {
  const id = unique(`trc${n}`);
  return {
    id,
    householdId,
    rule,
    startedAt: T0 + n * 1000,
    status: 'finished',
    body: { id, rule, steps: [{ action: 'turn_on', commands: [{ id: `cmd-${n}`, status: 'sent' }] }] },
    ...fields,
  };
}

function makeLine(householdId: string, n: number, fields: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: unique(`aud${n}`),
    householdId,
    ts: T0 + n * 1000,
    actor: { kind: 'rule', id: 'rule:fan-when-hot', name: 'rule:fan-when-hot' },
    via: 'automation',
    thing: 'fan',
    action: 'turn_on',
    result: 'accepted',
    reason: null,
    commandId: `cmd_${n}`,
    ...fields,
  };
}

function batchSuite(backend: StoreBackend): void {
  describe(`${backend.name} store: batch writes`, { skip: backend.skip }, () => {
    const openStore = storeOf(backend);
    let store: Store;
    beforeEach(() => {
      store = openStore();
    });

    it('saves commands in one batch, a later copy of a command winning', async () => {
      const household = unique('hh');
      const first = makeCommand(household);
      const second = makeCommand(household, { createdAt: T0 + 1 });
      await store.saveCommands([
        first,
        second,
        { ...first, status: 'sent', updatedAt: T0 + 10 },
        { ...first, status: 'confirmed', updatedAt: T0 + 20 },
      ]);
      assert.deepEqual(await store.getCommand(household, first.id), {
        ...first,
        status: 'confirmed',
        updatedAt: T0 + 20,
      });
      assert.deepEqual(await store.getCommand(household, second.id), second);
      const open = (await store.listCommandsByStatus(['pending'])).filter((c) => c.householdId === household);
      assert.deepEqual(
        open.map((c) => c.id),
        [second.id],
      );
      await store.saveCommands([]);
    });

    it('saves traces in one batch, updating a stored one', async () => {
      const household = unique('hh');
      const stored = makeTrace(household, 'fan', 1, { status: 'waiting' });
      await store.saveTrace(stored);
      const later = makeTrace(household, 'fan', 2);
      await store.saveTraces([
        { ...stored, status: 'finished', body: { ...stored.body, done: true } },
        later,
        { ...later, body: { ...later.body, confirmed: true } },
      ]);
      const got = await store.getTrace(household, stored.id);
      assert.equal(got?.status, 'finished');
      assert.deepEqual(got?.body, { ...stored.body, done: true });
      assert.deepEqual((await store.getTrace(household, later.id))?.body, { ...later.body, confirmed: true });
      assert.deepEqual(
        (await store.listTraces({ householdId: household, rule: 'fan' })).map((t) => t.id),
        [later.id, stored.id],
      );
      await store.saveTraces([]);
    });

    it('appends audit lines in one batch, a line written twice kept once', async () => {
      const household = unique('hh');
      const lines = [makeLine(household, 1), makeLine(household, 2, { result: 'denied', reason: 'no' })];
      await store.appendAuditBatch([...lines, lines[0]]);
      await store.appendAuditBatch([]);
      assert.deepEqual(await store.listAudit({ householdId: household }), [...lines].reverse());
    });

    it('writes a batch whole or not at all', async () => {
      const household = unique('hh');
      const good = makeLine(household, 1);
      // A line without its household breaks a NOT NULL column: the good line must not land either.
      const broken = { ...makeLine(household, 2), householdId: null } as unknown as AuditRecord;
      await assert.rejects(store.appendAuditBatch([good, broken]));
      assert.deepEqual(await store.listAudit({ householdId: household }), []);
      const command = makeCommand(household);
      await assert.rejects(store.saveCommands([command, { ...makeCommand(household), id: null as unknown as string }]));
      assert.equal(await store.getCommand(household, command.id), null);
    });
  });
}

describe('group commit', () => {
  it('writes what one turn queued in one batch, and a commit waits for it', async () => {
    const batches: string[][] = [];
    const queue = new GroupCommit<string>({
      clock: new VirtualClock(T0),
      writeBatch: async (items) => {
        batches.push(items);
      },
      writeOne: async () => assert.fail('a batch of several is written whole'),
      onError: (error) => assert.fail(String(error)),
    });
    queue.write('a', 'a1', 10);
    queue.write('b', 'b1', 10);
    queue.write('a', 'a2', 10);
    assert.equal(queue.peek('a'), 'a2', 'a reader sees the unwritten latest copy');
    await queue.commit('c', 'c1');
    assert.deepEqual(batches, [['a2', 'b1', 'c1']], 'the commit took the windowed items along');
    assert.equal(queue.size, 0);
  });

  it('holds windowed items until their window ends on the clock, or a flush', async () => {
    const clock = new VirtualClock(T0);
    const batches: string[][] = [];
    const queue = new GroupCommit<string>({
      clock,
      writeBatch: async (items) => {
        batches.push(items);
      },
      writeOne: async (item) => {
        batches.push([item]);
      },
      onError: () => {},
    });
    queue.write('a', 'a1', 10);
    await clock.advance(5);
    assert.deepEqual(batches, []);
    await clock.advance(5);
    assert.deepEqual(batches, [['a1']]);
    queue.write('b', 'b1', 10);
    await queue.flush();
    assert.deepEqual(batches, [['a1'], ['b1']]);
  });

  it('isolates a bad item when its batch fails: only that one fails', async () => {
    const written: string[] = [];
    const failed: string[] = [];
    const queue = new GroupCommit<string>({
      clock: new VirtualClock(T0),
      writeBatch: async (items) => {
        if (items.includes('bad')) throw new Error('batch refused');
        written.push(...items);
      },
      writeOne: async (item) => {
        if (item === 'bad') throw new Error('bad item');
        written.push(item);
      },
      onError: (_error, item) => failed.push(item),
    });
    queue.write('x', 'bad');
    const waited = queue.commit('y', 'good');
    const refused = queue.commit('z', 'bad');
    await waited;
    await assert.rejects(refused, /bad item/);
    assert.deepEqual(written, ['good']);
    assert.deepEqual(failed, ['bad'], 'the item nobody waited for went to onError');
  });
});

const backends = await storeBackends('triad-batches-');
for (const backend of backends) batchSuite(backend);
