import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectClient } from './mqtt-load.ts';
import { freePort, type ManagedProcess, ROOT, sleep, startProcess } from './processes.ts';

export type TriadStore =
  | { kind: 'sqlite'; writer?: 'thread' | 'inline' }
  | { kind: 'postgres'; url: string; schema: string };

export interface TriadProcess {
  process: ManagedProcess;
  url: string;
  token: string;
  dataDir: string;
  /** Milliseconds from spawning the process to its "is running" line. */
  startMs: number;
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Stops the process and, unless kept, deletes its data folder. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export interface TriadStartOptions {
  brokerUrl?: string;
  store?: TriadStore;
  /** Reuse a data folder (e.g. one pre-filled with things); a fresh temporary one otherwise. */
  dataDir?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…'] to profile the hub. */
  nodeFlags?: string[];
  /** Another checkout's `bin/triad.js`, to measure two builds side by side; this checkout's otherwise. */
  bin?: string;
}

/** Starts `triad start` as its own process, exactly as a user would, on loopback ports. */
export async function startTriad(options: TriadStartOptions = {}): Promise<TriadProcess> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'triad-bench-')));
  const httpPort = await freePort();
  // `npm run bench -- --cpu-prof` profiles every hub it starts (see bench/run.ts).
  const profileDir = process.env.TRIAD_BENCH_CPU_PROF;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const args = [
    ...profile,
    ...(options.nodeFlags ?? []),
    options.bin ?? join(ROOT, 'bin/triad.js'),
    'start',
    '--data',
    dataDir,
  ];
  args.push('--http-port', String(httpPort), '--http-host', '127.0.0.1', '--log-level', 'warn');
  if (options.brokerUrl) args.push('--mqtt-url', options.brokerUrl);
  else args.push('--mqtt-port', String(await freePort()));
  // A config file carries what flags cannot: the PostgreSQL schema, and API rate limits raised so
  // the load generator measures the API rather than the per-token limiter (100 requests/s by
  // default). The hub honours `rateLimits` once the CLI's config loader passes it on.
  const config = join(dataDir, 'bench-config.json');
  await writeFile(
    config,
    JSON.stringify({
      ...(options.store?.kind === 'postgres' || options.store?.writer ? { store: options.store } : {}),
      rateLimits: { api: { burst: 1_000_000, perSecond: 1_000_000 } },
    }),
  );
  args.push('--config', config);
  const spawned = performance.now();
  const proc = await startProcess({
    name: 'triad',
    command: process.execPath,
    args,
    cwd: ROOT,
    ready: /is running/,
    timeoutMs: 120_000,
  });
  const startMs = performance.now() - spawned;
  const token = (await readFile(join(dataDir, 'owner.token'), 'utf8')).trim();
  const url = `http://127.0.0.1:${httpPort}`;
  return {
    process: proc,
    url,
    token,
    dataDir,
    startMs,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(url + path, { ...init, headers });
    },
    async stop(stopOptions = {}) {
      await proc.stop(15_000);
      if (!stopOptions.keepData && !options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Home Assistant discovery config for one benchmark temperature sensor reporting on `bench/sensor/<id>`. */
export function sensorConfig(id: string): { topic: string; payload: string } {
  return {
    topic: `homeassistant/sensor/${id}/temperature/config`,
    payload: JSON.stringify({
      name: 'Temperature',
      state_topic: `bench/sensor/${id}`,
      value_template: '{{ value_json.temperature }}',
      device_class: 'temperature',
      unit_of_measurement: '°C',
      unique_id: `${id}_t`,
      device: { identifiers: [id], name: `Bench ${id}` },
    }),
  };
}

/** A Home Assistant discovery config for the benchmark's fan, a switch commanded on `bench/fan/set`. */
export function fanConfig(id: string): { topic: string; payload: string } {
  return {
    topic: `homeassistant/switch/${id}/power/config`,
    payload: JSON.stringify({
      name: 'Fan',
      command_topic: 'bench/fan/set',
      state_topic: `bench/fan/${id}/state`,
      payload_on: 'ON',
      payload_off: 'OFF',
      unique_id: `${id}_fan`,
      device: { identifiers: [id], name: `Bench ${id}` },
    }),
  };
}

interface ThingSummary {
  id: string;
  name: string;
  properties?: Record<string, unknown>;
}

/**
 * Announces devices the way they join in real life (retained discovery configs on the broker) and
 * waits until Triad lists every one of them; returns their thing ids by device name.
 */
export async function discover(
  triad: TriadProcess,
  brokerUrl: string,
  configs: Array<{ topic: string; payload: string; name: string }>,
): Promise<Map<string, string>> {
  const client = await connectClient(brokerUrl, 'discovery');
  try {
    for (const c of configs) await client.publishAsync(c.topic, c.payload, { qos: 1, retain: true });
  } finally {
    await client.endAsync();
  }
  const wanted = new Set(configs.map((c) => c.name));
  const deadline = performance.now() + 60_000;
  for (;;) {
    const things = (await (await triad.api('/api/things')).json()) as ThingSummary[];
    const found = new Map(things.filter((t) => wanted.has(t.name)).map((t) => [t.name, t.id]));
    if (found.size === wanted.size) return found;
    if (performance.now() > deadline) {
      throw new Error(`Triad discovered ${found.size} of ${wanted.size} bench devices within 60 s`);
    }
    await sleep(100);
  }
}

/** Clears the retained discovery configs, so the next system on the broker starts clean. */
export async function forget(brokerUrl: string, topics: string[]): Promise<void> {
  const client = await connectClient(brokerUrl, 'forget');
  try {
    for (const topic of topics) await client.publishAsync(topic, '', { qos: 1, retain: true });
  } finally {
    await client.endAsync();
  }
}
