#!/usr/bin/env node
// `npm install` builds the dashboard, so `npm start` serves it right away. Skipped (with a note)
// when the dashboard's build tools were not installed, e.g. `npm install --omit=dev`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
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
