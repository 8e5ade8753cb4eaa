import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigFile, resolveOptions } from '../src/cli/config.ts';
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
