import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  const start = async (cwd: string, port: number, flags: string[] = FLAGS) => {
    const child = spawn(
      process.execPath,
      [`${root}bin/triad.js`, 'sim', 'car', '--viss-port', String(port), ...flags],
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
    const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
      client.close();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      return exited;
    };
    return { get, client, stop, pid: child.pid as number, output: () => out };
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
    // When it was saved (the wall clock), and apart from it the simulated time it was saved at.
    const kept = JSON.parse(await readFile(join(cwd, 'triad-data', `sim-car-${port}.json`), 'utf8'));
    assert.ok(Math.abs(Date.parse(kept.savedAt) - Date.now()) < 60_000, `saved just now, not at ${kept.savedAt}`);
    assert.match(kept.simulatedAt, /^2026-01-05T08:/, 'the simulated time it was saved at');

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

  it('killed outright mid-drive, carries on at most about a second of driving behind', async () => {
    // Ten simulated seconds a second: the drive to work takes about 45 s of wall-clock time.
    const speedup = 10;
    const flags = ['--start', '2026-01-05T07:59:58Z', '--speedup', String(speedup)];
    const cwd = await tempDir();
    const port = await freePort();
    const file = join(cwd, 'triad-data', `sim-car-${port}.json`);
    const first = await start(cwd, port, flags);
    await eventually(() => existsSync(file), { timeoutMs: 15_000, what: `the first save:\n${first.output()}` });
    // Six seconds of driving after a save: a car saved every 10 s has not been saved since.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const read = Number(await first.get(ODOMETER));
    assert.equal(await first.get('Vehicle.IsMoving'), 'true', 'still on the road');
    await first.stop('SIGKILL');
    // The bound in wall-clock time: 1.5 s of driving at the route's top speed (80 km/h).
    const bound = 1.5 * speedup * (80 / 3.6);
    const saved = (JSON.parse(await readFile(file, 'utf8')) as { car: { odometer: number } }).car.odometer;
    assert.ok(
      saved >= read - bound,
      `saved at most ${Math.round(bound)} m behind ${read} m, got ${Math.round(saved)} m`,
    );

    const second = await start(cwd, port, flags);
    try {
      const resumed = Number(await second.get(ODOMETER));
      assert.ok(resumed >= read - bound, `resumed at most ${Math.round(bound)} m behind ${read} m, got ${resumed} m`);
      assert.match(second.output(), /carrying on from/);
    } finally {
      await second.stop();
    }
  });

  it('refuses a second car on the same state file, naming the one that holds it; a killed one holds nothing', async () => {
    const cwd = await tempDir();
    const state = join(cwd, 'car.json');
    const first = await start(cwd, await freePort(), [...FLAGS, '--state', state]);
    await eventually(() => existsSync(state), { timeoutMs: 15_000, what: `the first save:\n${first.output()}` });
    const second = await runTriad(['sim', 'car', '--viss-port', String(await freePort()), '--state', state, ...FLAGS]);
    assertOneLineError(
      second,
      new RegExp(`state file \\S*car\\.json is in use by another simulated car \\(pid ${first.pid}, started .*--state`),
      'a second car on the same file',
    );
    assert.equal(second.code, 2);
    assert.ok(Number(await first.get(ODOMETER)) >= FRESH_ODOMETER, 'the first runs on');
    // Killed outright, it leaves its lock behind; that lock holds nothing.
    await first.stop('SIGKILL');
    const third = await start(cwd, await freePort(), [...FLAGS, '--state', state]);
    try {
      assert.match(third.output(), /carrying on from/);
    } finally {
      assert.equal(await third.stop(), 0, third.output());
    }
    assert.deepEqual(await readdir(cwd), ['car.json'], 'a car stopped lets its file go');
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
