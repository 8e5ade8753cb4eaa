import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { quietDisabledDebugLoggers } from '../src/adapters/mqtt/quiet-debug.ts';

// This file never imports mqtt itself, so its packet library loads after the loggers are quieted,
// as it does in the hub started by bin/triad.js.
const require = createRequire(import.meta.url);
const packetDir = dirname(
  require.resolve('mqtt-packet/package.json', { paths: [dirname(require.resolve('mqtt/package.json'))] }),
);
const fromPacket = createRequire(`${packetDir}/parser.js`);

test('MQTT packet library gets silent loggers for disabled namespaces and real ones for enabled', () => {
  const real = fromPacket('debug') as { enable(ns: string): void; color?: unknown };
  real.enable('triad-test-on');
  quietDisabledDebugLoggers();
  quietDisabledDebugLoggers(); // twice is the same as once
  const debug = fromPacket('debug') as ((ns: string) => { enabled: boolean; color?: unknown }) & { quiet?: boolean };
  assert.equal(debug.quiet, true);
  const off = debug('mqtt-packet:parser');
  assert.equal(off.enabled, false);
  assert.equal(off.color, undefined, 'a disabled namespace gets the do-nothing logger');
  const on = debug('triad-test-on');
  assert.equal(on.enabled, true);
  assert.notEqual(on.color, undefined, 'an enabled namespace keeps the real logger');
  const extended = (off as unknown as { extend(sub: string): { namespace: string } }).extend('more');
  assert.equal(extended.namespace, 'mqtt-packet:parser:more');
});

test('the packet parser still parses and the writer still writes with the quiet loggers', () => {
  quietDisabledDebugLoggers();
  const mqttPacket = fromPacket('./mqtt.js') as {
    parser(opts: object): { on(e: string, f: (p: unknown) => void): void; parse(b: Buffer): number };
    generate(p: object): Buffer;
  };
  const bytes = mqttPacket.generate({
    cmd: 'publish',
    topic: 'home/fan/set',
    payload: Buffer.from('ON'),
    qos: 0,
    retain: false,
    dup: false,
  });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const seen: Array<{ topic: string; payload: Buffer }> = [];
  parser.on('packet', (p) => seen.push(p as { topic: string; payload: Buffer }));
  parser.parse(bytes);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].topic, 'home/fan/set');
  assert.equal(seen[0].payload.toString(), 'ON');
});
