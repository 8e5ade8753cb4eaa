/**
 * A `store.file` that names something other than a SQLite database is left exactly as it was
 * (mode included) and the start fails naming `store.file`, not the data folder. Only a database,
 * or an empty file SQLite will make one of, is narrowed to 0600.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { keepDatabasePrivate } from '../src/store/sqlite.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'triad-not-a-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe('a store file that is not a database', () => {
  it('is not narrowed; a database and an empty file are', () => {
    const text = join(dir, 'passwd');
    writeFileSync(text, 'root:x:0:0:root:/root:/bin/bash\n');
    chmodSync(text, 0o644);
    assert.deepEqual(keepDatabasePrivate(text), []);
    assert.equal(modeOf(text), '644');

    const database = join(dir, 'old.db');
    new Database(database).exec('CREATE TABLE t (x)');
    chmodSync(database, 0o644);
    assert.deepEqual(keepDatabasePrivate(database), [database]);
    assert.equal(modeOf(database), '600');

    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    chmodSync(empty, 0o644);
    assert.deepEqual(keepDatabasePrivate(empty), [empty]);
    assert.equal(modeOf(empty), '600');
  });

  it('stops the start with an error that names store.file, leaving the file as it was', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database, but readable by everyone on purpose\n');
    chmodSync(text, 0o644);
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ store: { kind: 'sqlite', file: text } }));
    const run = await runTriad([
      'start',
      '--config',
      config,
      '--data',
      join(dir, 'data'),
      '--http-port',
      '0',
      '--mqtt-port',
      '0',
    ]);
    assertOneLineError(run, /cannot open the database .*notes\.txt \(store\.file\): file is not a database/, 'start');
    assert.doesNotMatch(run.stderr, /--data/);
    assert.equal(modeOf(text), '644');
  });
});
