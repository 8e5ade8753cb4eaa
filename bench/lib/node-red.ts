import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, type ManagedProcess, ROOT, startProcess } from './processes.ts';
import { progress } from './progress.ts';

/** Node-RED lives in the benchmark's own ignored folder, never among Triad's dependencies. */
const PEERS = join(ROOT, 'bench/.peers');
const RED_JS = join(PEERS, 'node_modules/node-red/red.js');

/** Installs Node-RED 4 (the last line for Node 20) into bench/.peers the first time it is needed. */
export async function ensureNodeRed(): Promise<string> {
  if (existsSync(RED_JS)) return RED_JS;
  await mkdir(PEERS, { recursive: true });
  progress.show('installing Node-RED 4 into bench/.peers (first run only)…');
  await new Promise<void>((resolve, reject) => {
    const npm = spawn('npm', ['install', '--prefix', PEERS, 'node-red@4', '--no-audit', '--no-fund'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const onData = (data: Buffer) => {
      log += data.toString();
      const line = data.toString().trim().split('\n').pop();
      if (line) progress.show(`installing Node-RED 4: ${line.slice(0, 80)}`);
    };
    npm.stdout.on('data', onData);
    npm.stderr.on('data', onData);
    npm.once('error', reject);
    npm.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`npm install node-red@4 failed (${code}):\n${log}`)),
    );
  });
  return RED_JS;
}

export interface NodeRedRule {
  reportFilter: string;
  commandTopic: string;
  threshold: number;
}

/**
 * The benchmark's rule as a user would draw it: mqtt in → switch (temperature above the
 * threshold) → change (payload becomes the command) → mqtt out. The change node keeps the report's
 * `seq` so each command can be matched to its report; it uses plain set/delete rules, not JSONata,
 * so Node-RED is not charged for an expression engine it does not need.
 */
export function ruleFlow(brokerPort: number, rule: NodeRedRule): unknown[] {
  return [
    { id: 'bench_tab', type: 'tab', label: 'bench' },
    {
      id: 'bench_broker',
      type: 'mqtt-broker',
      name: 'bench broker',
      broker: '127.0.0.1',
      port: String(brokerPort),
      clientid: '',
      autoConnect: true,
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
    },
    {
      id: 'bench_in',
      type: 'mqtt in',
      z: 'bench_tab',
      name: 'sensor report',
      topic: rule.reportFilter,
      qos: '0',
      datatype: 'json',
      broker: 'bench_broker',
      nl: false,
      rap: true,
      rh: 0,
      inputs: 0,
      wires: [['bench_switch']],
    },
    {
      id: 'bench_switch',
      type: 'switch',
      z: 'bench_tab',
      name: 'hot?',
      property: 'payload.temperature',
      propertyType: 'msg',
      rules: [{ t: 'gt', v: String(rule.threshold), vt: 'num' }],
      checkall: 'true',
      repair: false,
      outputs: 1,
      wires: [['bench_change']],
    },
    {
      id: 'bench_change',
      type: 'change',
      z: 'bench_tab',
      name: 'fan on',
      rules: [
        { t: 'set', p: 'payload.state', pt: 'msg', to: 'ON', tot: 'str' },
        { t: 'delete', p: 'payload.temperature', pt: 'msg' },
      ],
      wires: [['bench_out']],
    },
    {
      id: 'bench_out',
      type: 'mqtt out',
      z: 'bench_tab',
      name: 'fan command',
      topic: rule.commandTopic,
      qos: '0',
      retain: 'false',
      broker: 'bench_broker',
      wires: [],
    },
  ];
}

/** Starts Node-RED with a fresh user folder holding only the rule's flow, against `brokerUrl`. */
export async function startNodeRed(brokerUrl: string, rule: NodeRedRule): Promise<ManagedProcess> {
  const redJs = await ensureNodeRed();
  const userDir = join(PEERS, 'node-red-user');
  await rm(userDir, { recursive: true, force: true });
  await mkdir(userDir, { recursive: true });
  const brokerPort = Number(new URL(brokerUrl).port);
  await writeFile(join(userDir, 'flows.json'), JSON.stringify(ruleFlow(brokerPort, rule), null, 2));
  // Loopback only, no telemetry or update checks: the peer must not reach beyond the machine.
  await writeFile(
    join(userDir, 'settings.js'),
    `module.exports = {
  uiHost: '127.0.0.1',
  flowFile: 'flows.json',
  credentialSecret: false,
  diagnostics: { enabled: false },
  telemetry: { enabled: false },
  editorTheme: { tours: false },
  logging: { console: { level: 'info', metrics: false, audit: false } },
};
`,
  );
  const port = await freePort();
  return startProcess({
    name: 'node-red',
    command: process.execPath,
    args: [
      redJs,
      '--userDir',
      userDir,
      '--settings',
      join(userDir, 'settings.js'),
      '--port',
      String(port),
      'flows.json',
    ],
    cwd: userDir,
    ready: /Connected to broker/,
    timeoutMs: 60_000,
  });
}
