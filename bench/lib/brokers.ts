import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ManagedProcess, startProcess, tsNode } from './processes.ts';

export interface Broker {
  /** 'mosquitto' or 'aedes'. */
  kind: string;
  url: string;
  /** The broker's process, when this run started it (its CPU can then be measured). */
  process: ManagedProcess | null;
  stop(): Promise<void>;
}

const MOSQUITTO_PATHS = [
  '/usr/sbin/mosquitto',
  '/usr/bin/mosquitto',
  '/usr/local/sbin/mosquitto',
  '/opt/homebrew/sbin/mosquitto',
];

/**
 * A private Mosquitto on a loopback port of our choosing, so other users of the machine's broker
 * cannot disturb the figures. Queues are unbounded: a flood must be measured, not silently dropped
 * by the broker. Returns null when no Mosquitto binary is installed.
 */
export async function startMosquitto(): Promise<Broker | null> {
  const binary = MOSQUITTO_PATHS.find((p) => existsSync(p));
  if (!binary) return null;
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'triad-bench-mosquitto-'));
  const config = join(dir, 'mosquitto.conf');
  await writeFile(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      'set_tcp_nodelay true',
      'log_dest stderr',
      '',
    ].join('\n'),
  );
  const proc = await startProcess({
    name: 'mosquitto',
    command: binary,
    args: ['-c', config],
    ready: /running|Opening ipv4 listen socket/,
    timeoutMs: 10_000,
  });
  return { kind: 'mosquitto', url: `mqtt://127.0.0.1:${port}`, process: proc, stop: () => proc.stop() };
}

/** Triad's embedded broker (aedes) in a child process of its own. */
export async function startAedes(): Promise<Broker> {
  const { command, args } = tsNode('aedes-broker.ts');
  const proc = await startProcess({ name: 'aedes', command, args, ready: /aedes listening on \d+/ });
  const port = Number(/aedes listening on (\d+)/.exec(proc.output())?.[1]);
  return { kind: 'aedes', url: `mqtt://127.0.0.1:${port}`, process: proc, stop: () => proc.stop() };
}
