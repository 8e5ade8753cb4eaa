import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { StateChanged } from '../src/core/events.ts';
import { openStore } from '../src/store/index.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { MAX_SPREAD_PARTS, PART_ROWS, SqliteWriter, STARVED_MS } from '../src/store/sqlite-writer.ts';
import { ChrtMover, chrtCanMove, type Policy, type SetPolicy, WriterPriority } from '../src/store/writer-priority.ts';
import { tempDir } from './helpers/hub-process.ts';
import { T0, unique } from './helpers/stores.ts';

/**
 * The SQLite writer thread runs in Linux's SCHED_IDLE class while it keeps up and in the normal
 * class while writes pile up (src/store/writer-priority.ts). The first part pins the decisions,
 * with the policy calls recorded; the second watches a real store's thread in the kernel's own
 * account of it (`chrt -p`).
 */
const settle = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A SetPolicy that records each call as [thread, policy], taking `ms` for each, and failing the ones `refuse` names. */
function recorder(options: { ms?: number; refuse?: (call: number) => boolean } = {}) {
  const calls: Array<[number, Policy]> = [];
  /** The most moves ever on their way at once. */
  const inFlight = { now: 0, most: 0 };
  const set: SetPolicy = async (thread, policy) => {
    calls.push([thread, policy]);
    const call = calls.length;
    inFlight.most = Math.max(inFlight.most, ++inFlight.now);
    try {
      if (options.ms) await sleep(options.ms);
      if (options.refuse?.(call)) throw new Error('No such process');
    } finally {
      inFlight.now--;
    }
  };
  const policies = () => calls.map(([, policy]) => policy);
  return { calls, set, policies, inFlight };
}

const yes = async () => true;
const no = async () => false;

describe('writer priority decisions', () => {
  it('asks once whether the thread can move both ways, then leaves it idle', async () => {
    const { calls, set } = recorder();
    let asked = 0;
    const priority = new WriterPriority(set, async () => ++asked > 0, 20);
    await priority.start(4242);
    assert.deepEqual(calls, [[4242, 'idle']]);
    assert.equal(priority.policy, 'idle');
    // A new thread (the first one died): taken over without asking again, and moved alone.
    priority.stop();
    await priority.start(4343);
    assert.deepEqual(calls, [
      [4242, 'idle'],
      [4343, 'idle'],
    ]);
    assert.equal(asked, 1);
  });

  it('never touches the thread where it could not step back', async () => {
    // As for a service without CAP_SYS_NICE or an RLIMIT_NICE: down is allowed, back up is not.
    const { calls, set } = recorder();
    const priority = new WriterPriority(set, no, 20);
    await priority.start(4242);
    priority.busy();
    priority.quiet();
    await sleep(60);
    assert.equal(priority.policy, 'off');
    assert.deepEqual(calls, []);
  });

  it('goes normal on a backlog, and back to idle only after a quiet spell', async () => {
    const { set, policies } = recorder();
    const priority = new WriterPriority(set, yes, 300);
    await priority.start(4242);
    priority.busy();
    priority.busy();
    await settle();
    assert.equal(priority.policy, 'normal');
    priority.quiet();
    await sleep(100);
    // Piling up again within the quiet spell: it stays normal, and the spell starts over.
    priority.busy();
    priority.quiet();
    await sleep(150);
    assert.equal(priority.policy, 'normal', 'the spell started over');
    await sleep(400);
    assert.equal(priority.policy, 'idle');
    assert.deepEqual(policies(), ['idle', 'normal', 'idle']);
    // Quiet while already idle changes nothing.
    priority.quiet();
    await sleep(50);
    assert.deepEqual(policies(), ['idle', 'normal', 'idle']);
    priority.stop();
  });

  it('a backlog that starts while it is still finding out leaves the thread normal', async () => {
    const { set, policies } = recorder();
    const priority = new WriterPriority(set, () => sleep(20).then(() => true), 100);
    const starting = priority.start(4242);
    priority.busy();
    await starting;
    // A new thread starts in the normal class: nothing to move.
    assert.deepEqual(policies(), []);
    assert.equal(priority.policy, 'normal');
    // …and it steps back once things are quiet.
    await sleep(250);
    assert.equal(priority.policy, 'idle');
    assert.deepEqual(policies(), ['idle']);
    priority.stop();
  });

  it('moves one at a time, in order, and ends where the last call left it', async () => {
    // Each move takes a while: a backlog arrives while the first is still on its way.
    const { set, policies, inFlight } = recorder({ ms: 30 });
    const priority = new WriterPriority(set, yes, 1000);
    const starting = priority.start(4242);
    await sleep(5);
    priority.busy();
    priority.busy();
    await starting;
    await until('the moves are done', () => policies().length === 2);
    await sleep(40);
    assert.deepEqual(policies(), ['idle', 'normal']);
    assert.equal(priority.policy, 'normal');
    assert.equal(inFlight.most, 1, 'one move at a time');
    priority.stop();
    // Wanted normal, then idle again, while the first move is on its way: the middle one is skipped.
    const quick = recorder({ ms: 30 });
    const flipping = new WriterPriority(quick.set, yes, 1);
    const started = flipping.start(4242);
    await sleep(5);
    flipping.busy();
    flipping.quiet();
    await started;
    await sleep(60);
    assert.deepEqual(quick.policies(), ['idle']);
    assert.equal(flipping.policy, 'idle');
    flipping.stop();
  });

  it('takes over a new thread even when the last move on the old one fails', async () => {
    // The thread dies with a move on its way; a new one starts before that move fails.
    const { calls, set } = recorder({ ms: 20, refuse: (call) => call === 2 });
    const priority = new WriterPriority(set, yes, 1000);
    await priority.start(4242);
    priority.busy();
    await sleep(5);
    priority.stop();
    await priority.start(4343);
    await until('the new thread is moved', () => calls.length === 3);
    await sleep(30);
    assert.deepEqual(calls, [
      [4242, 'idle'],
      [4242, 'normal'],
      [4343, 'idle'],
    ]);
    assert.equal(priority.policy, 'idle');
    priority.stop();
  });

  it('a thread that is gone is left alone, and a move that fails is not retried in a loop', async () => {
    const { calls, set } = recorder({ refuse: (call) => call >= 2 });
    const priority = new WriterPriority(set, yes, 20);
    await priority.start(4242);
    priority.busy();
    await sleep(50);
    priority.busy();
    await sleep(50);
    assert.deepEqual(calls, [
      [4242, 'idle'],
      [4242, 'normal'],
      [4242, 'normal'],
    ]);
    priority.stop();
    const before = calls.length;
    priority.busy();
    priority.quiet();
    await sleep(60);
    assert.equal(calls.length, before, 'nothing after stop');
  });
});

/** Each thread of this process with the scheduling policy the kernel reports for it. */
function policies(): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync('/proc/self/task')) {
    const shown = spawnSync('chrt', ['-p', tid], { encoding: 'utf8' }).stdout;
    const policy = /policy:\s*(SCHED_\w+)/.exec(shown)?.[1];
    if (policy) out.set(Number(tid), policy);
  }
  return out;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

const noChrt = spawnSync('chrt', ['--help']).status !== 0 && 'no chrt (util-linux) on this machine';

describe('the writer thread in the kernel', { skip: process.platform !== 'linux' ? 'Linux only' : noChrt }, () => {
  let dir: string;
  let store: SqliteStore;
  before(async () => {
    dir = await tempDir('triad-priority-');
    store = (await openStore({ kind: 'sqlite', file: join(dir, 'triad.db') })) as SqliteStore;
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is idle while it keeps up, normal under a flood, and idle again after', async (t) => {
    const household = unique('hh');
    const change = (n: number): StateChanged => ({
      type: 'state',
      id: unique(`sc${n}`),
      householdId: household,
      ts: T0 + n,
      thing: 'car',
      property: `p${n % 10}`,
      from: n - 1,
      to: n,
      source: 'viss',
      cause: null,
    });
    // A write starts the thread; it reports its id, and the hub tries the whole round.
    await store.appendHistory([change(0)]);
    const priority = (store as unknown as { writer: { priority: WriterPriority } }).writer.priority;
    await until('the hub has found out', () => priority.policy !== 'starting');
    const idleThreads = () => [...policies()].filter(([, policy]) => policy === 'SCHED_IDLE').map(([tid]) => tid);
    if (priority.policy === 'off') {
      // This machine lets a thread step down but not back (no CAP_SYS_NICE or RLIMIT_NICE): untouched.
      assert.deepEqual(idleThreads(), []);
      t.diagnostic('the writer thread cannot move both ways here; checked it was left alone');
      return;
    }
    await until('one thread is idle', () => idleThreads().length === 1);
    const [writer] = idleThreads();
    assert.notEqual(writer, process.pid, 'not the main thread');
    // A flood's batch: normal at once.
    const flood = Array.from({ length: PART_ROWS * MAX_SPREAD_PARTS + 1 }, (_, n) => change(n + 10));
    await store.appendHistory(flood);
    const policyOf = (tid: number) =>
      /policy:\s*(SCHED_\w+)/.exec(spawnSync('chrt', ['-p', String(tid)], { encoding: 'utf8' }).stdout)?.[1];
    await until('the kernel has it normal', () => policyOf(writer) === 'SCHED_OTHER');
    // A quiet second later, idle again; everything written.
    await until('idle again', () => policyOf(writer) === 'SCHED_IDLE', 4000);
    const stored = await store.queryHistory({ householdId: household, thing: 'car', limit: 10_000 });
    assert.equal(stored.length, flood.length + 1);
  });
});

describe('the thread mover (one shell for every move)', {
  skip: process.platform !== 'linux' ? 'Linux only' : noChrt,
}, () => {
  it('moves a thread both ways through the same shell, refuses what is no thread, and starts again after its shell ends', async (t) => {
    if (!(await chrtCanMove())) {
      t.skip('this machine lets a thread step down but not back');
      return;
    }
    // A process of the test's own, whose one thread is moved and read back from the kernel.
    const target = spawn('sleep', ['30']);
    const mover = new ChrtMover();
    try {
      const tid = target.pid as number;
      const policyOf = () =>
        /policy:\s*(SCHED_\w+)/.exec(spawnSync('chrt', ['-p', String(tid)], { encoding: 'utf8' }).stdout)?.[1];
      await mover.set(tid, 'idle');
      const shell = mover.shellPid;
      assert.ok(shell, 'a shell runs');
      assert.equal(policyOf(), 'SCHED_IDLE');
      await mover.set(tid, 'normal');
      assert.equal(policyOf(), 'SCHED_OTHER');
      // Moves asked at once are answered in turn, each by its own line.
      await Promise.all([mover.set(tid, 'idle'), mover.set(tid, 'normal'), mover.set(tid, 'idle')]);
      assert.equal(policyOf(), 'SCHED_IDLE');
      assert.equal(mover.shellPid, shell, 'every move went through the one shell');
      // No such thread: chrt fails, the move is refused, the shell goes on.
      await assert.rejects(mover.set(2 ** 30, 'idle'), /could not move/);
      await assert.rejects(mover.set(-1, 'idle'), /not a thread id/);
      await assert.rejects(mover.set(1.5, 'idle'), /not a thread id/);
      await mover.set(tid, 'normal');
      assert.equal(policyOf(), 'SCHED_OTHER');
      assert.equal(mover.shellPid, shell);
      // The shell killed from outside: the next move starts another one.
      process.kill(shell, 'SIGKILL');
      await until('the shell is gone', () => mover.shellPid === undefined);
      await mover.set(tid, 'idle');
      assert.notEqual(mover.shellPid, undefined);
      assert.notEqual(mover.shellPid, shell);
      assert.equal(policyOf(), 'SCHED_IDLE');
    } finally {
      mover.close();
      target.kill();
    }
    assert.equal(mover.shellPid, undefined);
    await assert.rejects(new ChrtMover(null).set(process.pid, 'idle'), /no chrt/);
  });
});

describe('a writer the thread falls behind', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('triad-starved-');
    // The schema the writes below need.
    const store = (await openStore({ kind: 'sqlite', file: join(dir, 'triad.db'), writer: 'inline' })) as SqliteStore;
    await store.close();
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('asks for the full share once nothing has come back for STARVED_MS, and settles when all is in', async (t) => {
    // A thread slow to answer looks the same as a starved one: a batch that takes it a while.
    class Recording extends WriterPriority {
      calls: string[] = [];
      override busy(): void {
        this.calls.push('busy');
        super.busy();
      }
      override quiet(): void {
        this.calls.push('quiet');
        super.quiet();
      }
    }
    const priority = new Recording(async () => {}, yes, 1000);
    const writer = new SqliteWriter(join(dir, 'triad.db'), 5000, priority);
    const sql =
      'INSERT INTO history (id, household_id, thing, property, ts, from_value, value, cause, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const row = (n: number, value: string) => [unique('sc'), 'hh', 'car', `p${n}`, T0 + n, null, value, null, 'test'];
    // The first write starts the thread, which reports its id; the watchdog runs once it is idle.
    await writer.write([{ sql, rows: [row(0, '0')] }]);
    await until('the thread is idle', () => priority.policy === 'idle');
    priority.calls.length = 0;
    const big = 'x'.repeat(100_000);
    const rows = Array.from({ length: PART_ROWS * MAX_SPREAD_PARTS - 20 }, (_, n) =>
      row(n + 1, JSON.stringify(`${big}${n}`)),
    );
    const started = performance.now();
    let done = false;
    const writing = writer.write([{ sql, rows }]).then(() => {
      done = true;
    });
    // Asked for while the batch is on its way: resolves after it, not before.
    const settled = writer.settled().then(() => assert.ok(done, 'settled once the batch was in'));
    await writing;
    await settled;
    const took = performance.now() - started;
    assert.equal(priority.calls.at(-1), 'quiet', 'and steps back once nothing waits');
    await writer.close();
    if (took < STARVED_MS * 3) {
      t.skip(`the batch took only ${Math.round(took)} ms here: too fast to tell`);
      return;
    }
    assert.ok(priority.calls.includes('busy'), `the batch took ${Math.round(took)} ms and no busy came`);
  });

  it('settles what was handed over before it was asked, not what comes after', async () => {
    const writer = new SqliteWriter(join(dir, 'triad.db'), 5000, null);
    const sql = 'INSERT INTO households (id, name, settings, created_at) VALUES (?, ?, ?, ?)';
    const household = (name = 'Home') => [unique('hh'), name, '{}', T0];
    let firstDone = false;
    const first = writer.write([{ sql, rows: [household()] }]).then(() => {
      firstDone = true;
    });
    const settled = writer.settled();
    // A long batch handed over after the question: settled does not wait for it.
    let laterDone = false;
    const big = 'y'.repeat(100_000);
    const later = writer
      .write([{ sql, rows: Array.from({ length: 400 }, (_, n) => household(`${big}${n}`)) }])
      .then(() => {
        laterDone = true;
      });
    await settled;
    assert.ok(firstDone, 'what was asked about is in');
    assert.ok(!laterDone, 'and what came after was not waited for');
    await Promise.all([first, later]);
    await writer.close();
  });
});

describe('virtual time and real writes', () => {
  it('moves on only once what waitAlsoFor names is done', async () => {
    const clock = new VirtualClock(T0);
    let written = false;
    let pending: Promise<void> = Promise.resolve();
    clock.waitAlsoFor(() => pending);
    const fired: Array<[number, boolean]> = [];
    clock.setTimeout(() => {
      // A timer's work goes through real I/O that takes a while…
      pending = sleep(30).then(() => {
        written = true;
      });
      fired.push([clock.now(), written]);
    }, 1000);
    clock.setTimeout(() => fired.push([clock.now(), written]), 1001);
    await clock.advance(2000);
    // …and the next timer, a virtual millisecond later, found it done.
    assert.deepEqual(fired, [
      [T0 + 1000, false],
      [T0 + 1001, true],
    ]);
  });
});
