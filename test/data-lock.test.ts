import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataLock, LOCK_FILE } from '../src/core/data-lock.ts';
import { freePort, startHubProcess, tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('one hub per data folder', () => {
  it('a second hub on a folder in use is refused with the first one named, and starts once the first has stopped', async () => {
    const first = await startHubProcess({ args: ['--mqtt-port', String(await freePort())] });
    try {
      const lock = JSON.parse(readFileSync(join(first.dataDir, LOCK_FILE), 'utf8')) as { pid: number };
      assert.equal(lock.pid, first.child.pid);
      const second = await runTriad([
        'start',
        ...['--data', first.dataDir, '--http-port', String(await freePort()), '--mqtt-port', String(await freePort())],
      ]);
      assertOneLineError(
        second,
        new RegExp(`data folder .* is in use by another Triad hub \\(pid ${first.child.pid}, started .*--data`),
        'a second hub on the folder',
      );
      // The first is untouched, and so is its lock.
      assert.equal((await first.api('/api/health')).status, 200);
      assert.equal(JSON.parse(readFileSync(join(first.dataDir, LOCK_FILE), 'utf8')).pid, first.child.pid);
    } finally {
      assert.equal(await first.stop(), 0);
    }
    assert.equal(existsSync(join(first.dataDir, LOCK_FILE)), false, 'a stopped hub lets the folder go');
    const again = await startHubProcess({ dataDir: first.dataDir, args: ['--mqtt-port', String(await freePort())] });
    assert.equal((await again.api('/api/health')).status, 200);
    assert.equal(await again.stop(), 0);
  });

  it('a hub killed outright leaves a lock the next one takes over', async () => {
    const first = await startHubProcess({ args: ['--mqtt-port', String(await freePort())] });
    await first.stop('SIGKILL');
    assert.ok(existsSync(join(first.dataDir, LOCK_FILE)), 'the killed hub left its lock');
    const next = await startHubProcess({ dataDir: first.dataDir, args: ['--mqtt-port', String(await freePort())] });
    try {
      assert.equal(JSON.parse(readFileSync(join(first.dataDir, LOCK_FILE), 'utf8')).pid, next.child.pid);
    } finally {
      await next.stop();
    }
  });

  it('a second hub in the same process is refused too, at once or later, and takes the folder once the first lets go', async () => {
    const dir = await tempDir();
    const file = join(dir, LOCK_FILE);
    const both = await Promise.allSettled([DataLock.take(dir), DataLock.take(dir)]);
    const taken = both.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = both.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    assert.equal(taken.length, 1, 'exactly one of two taken at the same moment');
    assert.match(refused[0]?.message ?? '', /in use by another Triad hub in this process/);
    await assert.rejects(DataLock.take(dir), /in use by another Triad hub in this process/);
    assert.ok(existsSync(file), 'a refusal leaves the holder its lock');
    await taken[0].release();
    await taken[0].release(); // twice: harmless
    assert.equal(existsSync(file), false);
    const next = await DataLock.take(dir);
    assert.ok(existsSync(file));
    await next.release();
  });

  it('a lock naming a process that is gone, a reused pid or nothing readable is taken over', async () => {
    const dir = await tempDir();
    const file = join(dir, LOCK_FILE);
    const sleeper = spawn('sleep', ['30']);
    try {
      const leftovers = [
        JSON.stringify({ pid: await deadPid(), since: '1', startedAt: '2026-01-01T00:00:00.000Z' }),
        // A live process, but not the one that wrote the lock: it started at another time.
        JSON.stringify({ pid: sleeper.pid, since: '1', startedAt: '2026-01-01T00:00:00.000Z' }),
        '{"pid": 12',
        JSON.stringify({ pid: -4 }),
        '',
      ];
      for (const leftover of leftovers) {
        await writeFile(file, leftover);
        const lock = await DataLock.take(dir);
        assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid, `taken over from ${leftover}`);
        await lock.release();
        assert.equal(existsSync(file), false);
      }
      // A live process whose start matches (or cannot be told) holds it.
      await writeFile(file, JSON.stringify({ pid: sleeper.pid, since: null, startedAt: '2026-01-01T00:00:00.000Z' }));
      await assert.rejects(DataLock.take(dir), (error: Error) => {
        assert.match(
          error.message,
          new RegExp(`in use by another Triad hub \\(pid ${sleeper.pid}, started 2026-01-01`),
        );
        return true;
      });
      assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, sleeper.pid, 'the holder keeps it');
    } finally {
      sleeper.kill();
    }
  });

  it('a lock naming a hub that has exited but is not yet reaped (a zombie) is taken over', async () => {
    // `sh` starts a short sleep in the background, then becomes a long sleep that never reaps it:
    // once the short one exits it stays a zombie, as a killed hub does under a slow init.
    const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30']);
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d) => resolve(String(d)))));
      const stateOf = () => {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      };
      const since = stateOf()[19];
      for (let i = 0; i < 100 && stateOf()[0] !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stateOf()[0], 'Z', 'the short sleep is a zombie');
      const dir = await tempDir();
      const file = join(dir, LOCK_FILE);
      await writeFile(file, JSON.stringify({ pid, host: hostname(), since, startedAt: '2026-01-01T00:00:00.000Z' }));
      const lock = await DataLock.take(dir);
      assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, process.pid);
      await lock.release();
    } finally {
      parent.kill();
    }
  });

  it('a lock from before a reboot is taken over, even naming the same pid started at the same tick', async () => {
    // After a power cut, a hub started at boot can get the pid and start tick its dead self had.
    const dir = await tempDir();
    const file = join(dir, LOCK_FILE);
    const stat = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    const since = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const before = { pid: process.pid, host: hostname(), since, startedAt: '2026-01-01T00:00:00.000Z' };
    await writeFile(file, JSON.stringify({ ...before, boot: 'a-boot-that-has-ended' }));
    const lock = await DataLock.take(dir);
    const taken = JSON.parse(readFileSync(file, 'utf8')) as { boot: string; startedAt: string };
    assert.equal(taken.boot, boot);
    assert.notEqual(taken.startedAt, before.startedAt, 'the lock is ours now');
    await lock.release();
    // The same lock from this boot is this process's own: refused, as a second hub here.
    await writeFile(file, JSON.stringify({ ...before, boot }));
    await assert.rejects(DataLock.take(dir), /in use by another Triad hub in this process/);
  });

  it('of hubs taking a folder at the same moment, free or left by a dead hub, exactly one gets it', async () => {
    const root = new URL('../', import.meta.url).pathname;
    const taker = join(await tempDir(), 'take.mts');
    // Each process waits for the same moment, takes the lock, says whether it got it, and holds
    // what it got until the test has counted.
    await writeFile(
      taker,
      `import { DataLock } from ${JSON.stringify(join(root, 'src/core/data-lock.ts'))};
       const [dir, at] = process.argv.slice(2);
       while (Date.now() < Number(at));
       try { await DataLock.take(dir); console.log('got'); } catch (error) { console.log('refused', error.message); }
       setTimeout(() => process.exit(0), 1500);`,
    );
    for (const leftover of [null, async (file: string) => writeFile(file, JSON.stringify({ pid: await deadPid() }))]) {
      const dir = await tempDir();
      await leftover?.(join(dir, LOCK_FILE));
      const at = Date.now() + 1500;
      const runs = Array.from({ length: 4 }, () => {
        const child = spawn(process.execPath, ['--import', 'tsx', taker, dir, String(at)], { cwd: root });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          out += d.toString();
        });
        return new Promise<string>((resolve) => child.once('exit', () => resolve(out.trim())));
      });
      const said = await Promise.all(runs);
      assert.equal(said.filter((line) => line === 'got').length, 1, said.join('\n'));
      assert.equal(said.filter((line) => line.startsWith('refused the data folder')).length, 3, said.join('\n'));
    }
  });
});
