#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
// Before anything loads MQTT: its disabled loggers otherwise allocate on every packet.
const { quietDisabledDebugLoggers } = await import('../src/adapters/mqtt/quiet-debug.ts');
quietDisabledDebugLoggers();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
