import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigFile, resolveOptions } from '../src/cli/config.ts';
import { DEFAULT_STOP_GRACE_MS } from '../src/vehicles/trips.ts';
import { tempDir } from './helpers/hub-process.ts';

async function configFile(body: unknown): Promise<string> {
  const path = join(await tempDir(), 'triad.json');
  await writeFile(path, JSON.stringify(body));
  return path;
}

describe('config file: the store', () => {
  it('takes where SQLite writes (a thread of their own, or inline) and passes it to the hub', async () => {
    for (const writer of ['thread', 'inline'] as const) {
      const path = await configFile({ store: { kind: 'sqlite', writer } });
      assert.deepEqual((await loadConfigFile(path)).store, { kind: 'sqlite', writer });
      const options = await resolveOptions({ config: path, data: await tempDir() });
      assert.deepEqual(options.store, { kind: 'sqlite', writer });
    }
  });

  it('refuses an unknown writer or store kind with the field named', async () => {
    await assert.rejects(
      loadConfigFile(await configFile({ store: { kind: 'sqlite', writer: 'fast' } })),
      (error: unknown) => error instanceof ConfigError && /store\.writer must be thread or inline/.test(error.message),
    );
    await assert.rejects(
      loadConfigFile(await configFile({ store: { kind: 'mongo' } })),
      (error: unknown) => error instanceof ConfigError && /store\.kind/.test(error.message),
    );
  });
});

describe('the demo', () => {
  it("the car's errands stand longer than a stop that ends a trip, so they show as trips", async () => {
    const options = await resolveOptions({ demo: true, data: await tempDir() });
    const errands = options.demoCarErrands;
    assert.ok(errands, 'the demo car runs errands');
    // A stand of DEFAULT_STOP_GRACE_MS or less is a stop within one trip: every errand ran into
    // the next and the dashboard's "Today's trips" stayed empty.
    assert.ok(errands.parkMs > DEFAULT_STOP_GRACE_MS, `${errands.parkMs} ms against ${DEFAULT_STOP_GRACE_MS}`);
  });
});
