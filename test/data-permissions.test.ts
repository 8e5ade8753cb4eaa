import assert from 'node:assert/strict';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * The data folder holds the owner's token and password, a car gateway's password and everyone's
 * location history: what Triad creates there is for the user it runs as alone, and a database an
 * older Triad left readable by everyone is narrowed at start, once, and said so. A folder the user
 * made keeps the mode they gave it.
 */

/** The permission bits of a file or folder, as `ls -l` counts them. */
async function modeOf(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

async function startHub(dataDir: string, lines: LogLine[] = []): Promise<Hub> {
  const hub = new Hub({
    dataDir,
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    log: createLogger({ level: 'info', sink: (line) => lines.push(line) }),
  });
  await hub.start();
  return hub;
}

const PRIVATE_FILES = [
  'triad.db',
  'triad.db-wal',
  'triad.db-shm',
  'broker-retained.db',
  'broker-retained.db-wal',
  'broker-retained.db-shm',
  'owner.token',
  'owner.password',
];

const narrowing = (lines: LogLine[]) => lines.filter((line) => /readable by other users/.test(line.message));

describe('the data folder and its files are private to the user Triad runs as', () => {
  it('creates a missing data folder 0700 and its databases and secrets 0600', async () => {
    const dataDir = join(await tempDir(), 'triad-data');
    const hub = await startHub(dataDir);
    try {
      assert.equal(await modeOf(dataDir), '700');
      // While the hub runs, SQLite's -wal and -shm files are there too.
      for (const name of PRIVATE_FILES) assert.equal(await modeOf(join(dataDir, name)), '600', name);
    } finally {
      await hub.stop();
    }
  });

  it("leaves a folder the user made as it is, but keeps Triad's files in it private", async () => {
    const dataDir = join(await tempDir(), 'shared');
    await mkdir(dataDir);
    await chmod(dataDir, 0o755);
    const hub = await startHub(dataDir);
    try {
      assert.equal(await modeOf(dataDir), '755');
      for (const name of PRIVATE_FILES) assert.equal(await modeOf(join(dataDir, name)), '600', name);
    } finally {
      await hub.stop();
    }
  });

  it('narrows the databases of an existing install at start, and says so once', async () => {
    const dataDir = await tempDir();
    await (await startHub(dataDir)).stop();
    // As an older Triad left them.
    await chmod(join(dataDir, 'triad.db'), 0o644);
    await chmod(join(dataDir, 'broker-retained.db'), 0o644);
    const lines: LogLine[] = [];
    const hub = await startHub(dataDir, lines);
    try {
      assert.equal(await modeOf(join(dataDir, 'triad.db')), '600');
      assert.equal(await modeOf(join(dataDir, 'broker-retained.db')), '600');
      for (const name of PRIVATE_FILES) assert.equal(await modeOf(join(dataDir, name)), '600', name);
      assert.equal(narrowing(lines).length, 1, 'one line says so');
      assert.deepEqual(narrowing(lines)[0].fields?.files, [
        join(dataDir, 'triad.db'),
        join(dataDir, 'broker-retained.db'),
      ]);
    } finally {
      await hub.stop();
    }
    // Narrowed once: the next start has nothing to say.
    const again: LogLine[] = [];
    await (await startHub(dataDir, again)).stop();
    assert.deepEqual(narrowing(again), []);
  });
});
