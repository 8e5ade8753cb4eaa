#!/usr/bin/env node
// Runs the command line bundled by `npm install` (dist/, see scripts/cli-bundle.mjs) while every
// source it holds is older than its build; otherwise the TypeScript sources directly, through tsx, so an
// edited source is run as it is and there is no build step to forget. TRIAD_FROM_SOURCE=1 (any
// value but 0) always runs the sources.
import { freshBundle } from '../scripts/cli-bundle.mjs';

const fromSource = !['', '0', undefined].includes(process.env.TRIAD_FROM_SOURCE);
let modules = fromSource ? null : freshBundle();
if (!modules) {
  const { register } = await import('tsx/esm/api');
  register();
  modules = { quietDebug: '../src/adapters/mqtt/quiet-debug.ts', cli: '../src/cli/main.ts' };
}
// Before anything loads MQTT: its disabled loggers otherwise allocate on every packet.
const { quietDisabledDebugLoggers } = await import(modules.quietDebug);
quietDisabledDebugLoggers();
const { main } = await import(modules.cli);
await main(process.argv);
