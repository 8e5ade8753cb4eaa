#!/usr/bin/env node
// Runs the command line bundled by `npm install` (dist/, see scripts/cli-bundle.mjs) while every
// source it holds is older than its build; otherwise the TypeScript sources directly, through tsx,
// so an edited source is run as it is and there is no build step to forget. TRIAD_FROM_SOURCE=1
// (any value but 0) always runs the sources.
import { chooseBuild, runCommandLine } from '../scripts/cli-bundle.mjs';

await runCommandLine(chooseBuild(), process.argv);
