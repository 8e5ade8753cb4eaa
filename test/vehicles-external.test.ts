import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { runCarSimulatorCommand } from '../src/sim/car/cli.ts';
import { VehicleService } from '../src/vehicles/index.ts';
import { eventually, freePort, tempDir } from './helpers/hub-process.ts';

/**
 * Triad pointed at a VISS server it did not start: the car simulator run as `triad sim car` in its
 * own process (in-process through the same command function until the CLI offers `sim car`), on
 * the wall clock, parked at work at noon.
 */

const root = new URL('../', import.meta.url).pathname;

async function cliHasSimCar(): Promise<boolean> {
  return /command\('sim'\)|'sim car'|runCarSimulatorCommand/.test(await readFile(`${root}src/cli/main.ts`, 'utf8'));
}

describe('a hub attached to an external VISS car', () => {
  let stopSim: () => Promise<void> = async () => {};
  let hub: Hub;
  let url = '';

  before(async () => {
    const port = await freePort();
    url = `ws://127.0.0.1:${port}/`;
    if (await cliHasSimCar()) {
      const child = spawn(
        process.execPath,
        [`${root}bin/triad.js`, 'sim', 'car', '--viss-port', String(port), '--start', '2026-01-05T12:00:00Z'],
        {
          // A folder of its own: the simulator keeps its car in ./triad-data, and this test wants a new one.
          cwd: await tempDir(),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      await eventually(() => out.includes('simulated car is running'), { timeoutMs: 20_000, what: 'triad sim car' });
      stopSim = async () => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      };
    } else {
      const sim = await runCarSimulatorCommand({ vissPort: port, start: '2026-01-05T12:00:00Z' });
      stopSim = () => sim.stop();
    }
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    }).use(new VehicleService());
    await hub.start();
  });

  after(async () => {
    await hub?.stop();
    await stopSim();
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('mirrors the car and locks it through VISS', async () => {
    const attached = await api('/api/vehicles', {
      method: 'POST',
      body: JSON.stringify({ name: 'Commuter', viss: url }),
    });
    assert.equal(attached.status, 201);
    const state = await eventually(async () => {
      const { body } = await api('/api/vehicles/commuter');
      const s = body.state as Record<string, unknown>;
      return typeof s['battery.level'] === 'number' && s;
    });
    assert.equal(state['vehicle.moving'], false);
    assert.equal(state['lock.locked'], true);
    const unlock = await api('/api/things/commuter/actions/unlock', { method: 'POST', body: '{}' });
    assert.equal(unlock.status, 202);
    await eventually(async () => (await api(`/api/commands/${unlock.body.commandId}`)).body.status === 'confirmed');
    const lock = await api('/api/things/commuter/actions/lock', { method: 'POST', body: '{}' });
    await eventually(async () => (await api(`/api/commands/${lock.body.commandId}`)).body.status === 'confirmed');
    const { body } = await api('/api/vehicles/commuter');
    assert.equal((body.state as Record<string, unknown>)['lock.locked'], true);
    assert.equal(body.connected, true);
  });
});
