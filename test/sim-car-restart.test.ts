import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, freePort, tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';
import { VissTestClient } from './helpers/viss-client.ts';

/**
 * `triad sim car` stopped and started again, as a user restarts it, in a folder of its own: the
 * car carries on where it stopped (odometer, charge, locks) rather than coming back as a new car,
 * whose odometer running back a hub would take for a trip of negative distance.
 */

const root = new URL('../', import.meta.url).pathname;
/** Just before the 08:00 commute: it sets off at once and drives two minutes a second. */
const FLAGS = ['--start', '2026-01-05T07:59:58Z', '--speedup', '120'];
const FRESH_ODOMETER = 12_345_000;
const ODOMETER = 'Vehicle.TraveledDistance';
const CHARGE = 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current';
const REAR_LOCK = 'Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked';

describe('triad sim car: a restart', () => {
  const running = new Set<ChildProcess>();

  /** Starts `triad sim car` in `cwd` and connects to it. */
  const start = async (cwd: string, port: number) => {
    const child = spawn(
      process.execPath,
      [`${root}bin/triad.js`, 'sim', 'car', '--viss-port', String(port), ...FLAGS],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    running.add(child);
    child.once('exit', () => running.delete(child));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const url = await eventually(() => /VISS at (\S+)/.exec(out)?.[1], { timeoutMs: 20_000, what: `the car:\n${out}` });
    const client = await VissTestClient.open(url, { protocol: 'VISSv3' });
    const get = async (path: string) =>
      ((await client.ask({ action: 'get', path })).data as { dp: { value: string } }).dp.value;
    const stop = async () => {
      client.close();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      return exited;
    };
    return { get, client, stop, output: () => out };
  };

  after(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  it('carries on from its odometer, charge and locks', async () => {
    const cwd = await tempDir();
    const port = await freePort();
    const first = await start(cwd, port);
    await eventually(async () => Number(await first.get(ODOMETER)) > FRESH_ODOMETER + 300, {
      timeoutMs: 15_000,
      what: 'the car to drive',
    });
    // Unlocked on the road (it locked itself as it got going): it is to stay so.
    const unlocked = await first.client.ask({ action: 'set', path: REAR_LOCK, value: 'false' });
    assert.equal(unlocked.error, undefined, JSON.stringify(unlocked));
    const odometer = Number(await first.get(ODOMETER));
    const charge = Number(await first.get(CHARGE));
    assert.equal(await first.get(REAR_LOCK), 'false');
    assert.equal(await first.stop(), 0, first.output());

    const second = await start(cwd, port);
    try {
      const resumed = Number(await second.get(ODOMETER));
      assert.ok(resumed >= odometer, `the odometer goes on from ${odometer}, got ${resumed}`);
      const level = Number(await second.get(CHARGE));
      assert.ok(level <= charge && level > charge - 2, `the charge goes on from ${charge} %, got ${level} %`);
      assert.equal(await second.get(REAR_LOCK), 'false', 'the door left unlocked is still unlocked');
      assert.match(second.output(), /carrying on from/);
    } finally {
      await second.stop();
    }
  });

  it('refuses a --state it could never save to, before it listens', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a-file'), 'x');
    for (const [state, pattern] of [
      [dir, /--state .* is a folder; name a file in it/],
      [join(dir, 'a-file', 'car.json'), /is under .*a-file, which is a file, not a folder/],
      ['', /--state must name a file/],
    ] as const) {
      const run = await runTriad(['sim', 'car', '--viss-port', String(await freePort()), '--state', state]);
      assertOneLineError(run, pattern, `--state ${JSON.stringify(state)}`);
      assert.equal(run.code, 2);
    }
  });

  it('starts parked where --at says, at any hour, and refuses a place it does not know', async () => {
    const refused = await runTriad(['sim', 'car', '--viss-port', String(await freePort()), '--at', 'garage']);
    assertOneLineError(refused, /--at must be home or work, got "garage"/, '--at garage');
    assert.equal(refused.code, 2);

    // Ten in the morning: by the commute a new car is at work, without its cable.
    const cwd = await tempDir();
    const child = spawn(
      process.execPath,
      [`${root}bin/triad.js`, 'sim', 'car', '--viss-port', '0', '--start', '2026-01-05T10:00:00Z', '--at', 'home'],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const url = await eventually(() => /VISS at (\S+)/.exec(out)?.[1], { timeoutMs: 20_000, what: `the car:\n${out}` });
    const client = await VissTestClient.open(url, { protocol: 'VISSv3' });
    try {
      const get = async (path: string) =>
        ((await client.ask({ action: 'get', path })).data as { dp: { value: string } }).dp.value;
      assert.equal(
        await get('Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected'),
        'true',
        'at home, its cable in',
      );
      assert.equal(await get('Vehicle.IsMoving'), 'false');
      assert.match(out, /parked at home; it stays there \(no commute\)/);
    } finally {
      client.close();
      child.kill('SIGTERM');
    }
  });

  it('keeps no car on --viss-port 0 unless --state names a file: the port names no car', async () => {
    const cwd = await tempDir();
    const child = spawn(process.execPath, [`${root}bin/triad.js`, 'sim', 'car', '--viss-port', '0', ...FLAGS], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(() => /it is not kept \(give --state FILE to keep it\)/.test(out), {
      timeoutMs: 20_000,
      what: `the car:\n${out}`,
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    assert.deepEqual(await readdir(cwd), [], `nothing saved: ${out}`);
  });

  it('moves a state file it cannot resume aside instead of overwriting it', async () => {
    const cwd = await tempDir();
    const file = join(cwd, 'car.json');
    await writeFile(file, '{"car": {"odometer": "twelve thousand"}');
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [`${root}bin/triad.js`, 'sim', 'car', '--viss-port', String(port), '--state', file],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    running.add(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(() => /a new car; it is kept in/.test(out), { timeoutMs: 20_000, what: `the car:\n${out}` });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    const aside = (await readdir(cwd)).filter((name) => name.startsWith('car.json.unusable-'));
    assert.equal(aside.length, 1, out);
    assert.equal(await readFile(join(cwd, aside[0]), 'utf8'), '{"car": {"odometer": "twelve thousand"}');
    assert.match(await readFile(file, 'utf8'), /"odometer": 12345/, 'the new car is saved in its place');
  });
});
