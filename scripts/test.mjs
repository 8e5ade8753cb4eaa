#!/usr/bin/env node
// Node 20's test runner does not expand globs, so this finds the test files and passes them
// explicitly. `npm test -- test/foo.test.ts` runs just the named files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const skip = new Set(['node_modules', '.git', 'web', 'bench', 'triad-data', 'dist']);

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.length ? args : find(root, []).sort();
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-force-exit', '--test-concurrency=2', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
