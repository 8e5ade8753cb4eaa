import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { StateChanged } from '../src/core/events.ts';
import { openStore } from '../src/store/index.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { SqliteWriter } from '../src/store/sqlite-writer.ts';
import type { Store } from '../src/store/store.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * History rows go to the SQLite writer thread as one JSON text (WriteStep.plain), not as V8's copy
 * of the arrays: whatever a device reports must come back exactly as an inline write stores it.
 */
let dir: string;
before(async () => {
  dir = await tempDir('triad-plain-rows-');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let sequence = 0;
function change(thing: string, to: unknown, cause: string | null): StateChanged {
  sequence++;
  return {
    type: 'state',
    id: `evt_${String(sequence).padStart(12, '0')}`,
    householdId: 'home',
    ts: Date.UTC(2026, 0, 1) + sequence,
    cause,
    thing,
    property: 'sensor.temperature',
    from: null,
    to,
    source: 'mqtt',
  };
}

describe('history rows go to the writer thread as JSON text', () => {
  it('stores any text and number exactly as an inline write does (fast-check)', async () => {
    const thread = (await openStore({ kind: 'sqlite', file: join(dir, 'thread.db') })) as SqliteStore;
    const inline = new SqliteStore({ file: join(dir, 'inline.db'), writer: 'inline' });
    await inline.migrate();
    // The store under test really has its thread (a one-core machine would write inline).
    assert.ok((thread as unknown as { writer: unknown }).writer instanceof SqliteWriter);
    // Any code point, lone surrogates included (a JSON text escapes them), and what JSON escapes.
    const codePoint = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c));
    const text = fc.string({ unit: fc.oneof(codePoint, fc.constantFrom('"', '\\', '\u0000', '\u2028')) });
    const value = fc.oneof(
      text,
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.dictionary(text, fc.oneof(text, fc.double({ noNaN: true }))),
    );
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 20 }), fc.option(text), async (values, cause) => {
          run++;
          const thing = `t${run}`;
          const changes = values.map((v) => change(thing, v, cause));
          // Not `background`: a small background batch may be committed on the hub's own connection.
          await thread.appendHistory(changes);
          await inline.appendHistory(changes);
          const read = async (store: Store) =>
            (await store.queryHistory({ householdId: 'home', thing, limit: 100 })).map((p) => [p.ts, p.value, p.cause]);
          const fromThread = await read(thread);
          assert.equal(fromThread.length, values.length);
          assert.deepEqual(fromThread, await read(inline));
        }),
        { numRuns: 60 },
      );
    } finally {
      await thread.close();
      await inline.close();
    }
  });
});
