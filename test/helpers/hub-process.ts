import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether this machine can listen on `host` at all (an IPv6 address on a host without IPv6). */
export async function canListen(host: string): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, host, () => server.close(() => resolve(true)));
  });
}

export async function tempDir(prefix = 'triad-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface HubProcess {
  child: ChildProcess;
  url: string;
  token: string;
  dataDir: string;
  output: () => string;
  /** Sends a signal and waits for the process to exit; resolves to its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Calls the API with the owner token. */
  api(path: string, init?: RequestInit): Promise<Response>;
}

/** Starts `triad start` as its own process, the way a user would, and waits until it is ready. */
export async function startHubProcess(options: {
  /** The script to run instead of bin/triad.js (a bundle's launcher). */
  entry?: string;
  args?: string[];
  dataDir?: string;
  httpPort?: number;
  env?: Record<string, string>;
}): Promise<HubProcess> {
  const dataDir = options.dataDir ?? (await tempDir());
  const httpPort = options.httpPort ?? (await freePort());
  const args = [
    options.entry ?? 'bin/triad.js',
    'start',
    '--data',
    dataDir,
    '--http-port',
    String(httpPort),
    '--http-host',
    '127.0.0.1',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start in 30 s:\n${out}`)), 30_000);
    const check = () => {
      if (out.includes('is running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code} before it was ready:\n${out}`));
    });
  });
  const token = (await readFile(join(dataDir, 'owner.token'), 'utf8')).trim();
  const url = `http://127.0.0.1:${httpPort}`;
  return {
    child,
    url,
    token,
    dataDir,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
      if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(url + path, { ...init, headers });
    },
  };
}

/**
 * The flags of a hub that can be killed and started again as the same hub: a config file of
 * `settings` in its data folder and an MQTT port of its own, kept for every start.
 */
export async function restartableHub(
  dataDir: string,
  settings: Record<string, unknown>,
): Promise<{ args: string[]; mqttUrl: string }> {
  const mqttPort = await freePort();
  const config = join(dataDir, 'test-config.json');
  await writeFile(config, JSON.stringify(settings));
  return { args: ['--config', config, '--mqtt-port', String(mqttPort)], mqttUrl: `mqtt://127.0.0.1:${mqttPort}` };
}

/** A device account (`POST /api/devices`) on a hub, for an MQTT client to log in with. */
export async function deviceLogin(
  hub: HubProcess,
  name: string,
  topics: { publish: string[]; subscribe: string[] },
): Promise<{ username: string; password: string }> {
  const account = await hub.api('/api/devices', { method: 'POST', body: JSON.stringify({ name, ...topics }) });
  if (account.status !== 201) throw new Error(`POST /api/devices: ${account.status} ${await account.text()}`);
  return (await account.json()) as { username: string; password: string };
}

/** Polls `check` (assertions, say) until it passes without throwing, or the time runs out. */
export function eventuallyPasses(check: () => Promise<unknown> | unknown): Promise<true> {
  return eventually(async () => {
    await check();
    return true as const;
  });
}

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function eventually<T>(
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
