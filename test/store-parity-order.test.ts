import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeCommand, type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/**
 * Writes land in the order they are made, even when the caller does not wait for one before making
 * the next: SQLite has one writer; PostgreSQL's pool ran them on several connections, and a rule's
 * timer deleted while its save was on its way could be saved after the delete (and resume a run
 * that had ended, after a restart), a command's `sent` could be overwritten by its `pending`.
 */
const backends = await storeBackends('triad-parity-order-');

function suite(backend: StoreBackend): void {
  describe(`${backend.name} store applies writes in the order they are made`, { skip: backend.skip }, () => {
    const store = storeOf(backend);

    it('a timer deleted right after it was saved stays deleted', async () => {
      const householdId = unique('hh');
      const owner = unique('owner');
      const writes: Array<Promise<void>> = [];
      for (let n = 0; n < 40; n++) {
        const timer = { id: `${owner}-${n}`, householdId, owner, due: T0 + n, payload: { n } };
        writes.push(store().saveTimer(timer), store().deleteTimer(timer.id));
      }
      await Promise.all(writes);
      assert.deepEqual(await store().listTimers(owner), []);
    });

    it("a command's later status is the one kept", async () => {
      const householdId = unique('hh');
      const commands = Array.from({ length: 40 }, () => makeCommand(householdId));
      await Promise.all(
        commands.flatMap((command) => [
          store().saveCommand(command),
          store().saveCommand({ ...command, status: 'sent', updatedAt: T0 + 1 }),
        ]),
      );
      for (const command of commands) assert.equal((await store().getCommand(householdId, command.id))?.status, 'sent');
    });
  });
}

for (const backend of backends) suite(backend);
