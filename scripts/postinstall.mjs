#!/usr/bin/env node
// `npm install` bundles the command line (scripts/cli-bundle.mjs), so `triad start` starts in about
// half the time, and builds the dashboard, so `npm start` serves it right away. The dashboard is
// skipped (with a note) when its build tools were not installed, e.g. `npm install --omit=dev`; a
// bundle that cannot be built is skipped too, and the hub runs from its sources as before.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { buildBundle, ROOT as root } from './cli-bundle.mjs';

try {
  await buildBundle();
} catch (error) {
  console.log(`triad: command line not bundled (${error.message.split('\n')[0]}); it runs from its sources`);
}
if (!existsSync(`${root}web/index.html`)) process.exit(0);
if (!existsSync(`${root}node_modules/vite/package.json`)) {
  console.log('triad: dashboard not built (vite is not installed); run `npm run build` after installing it');
  process.exit(0);
}
const result = spawnSync(
  process.execPath,
  [`${root}node_modules/vite/bin/vite.js`, 'build', 'web', '--logLevel', 'warn'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
