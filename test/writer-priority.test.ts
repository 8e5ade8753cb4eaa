import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { StateChanged } from '../src/core/events.ts';
import { openStore } from '../src/store/index.ts';
import type { SqliteStore } from '../src/store/sqlite.ts';
import { MAX_SPREAD_PARTS, PART_ROWS, SqliteWriter, STARVED_MS } from '../src/store/sqlite-writer.ts';
import { type Policy, type SetPolicy, WriterPriority } from '../src/store/writer-priority.ts';
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

/** A SetPolicy that records each call and fails the ones `refuse` names. */
function recorder(refuse: (policy: Policy, call: number) => boolean = () => false) {
  const calls: Policy[] = [];
  const set: SetPolicy = async (thread, policy) => {
    assert.equal(thread, 4242);
    calls.push(policy);
    if (refuse(policy, calls.length)) throw new Error('Operation not permitted');
  };
  return { calls, set };
}

describe('writer priority decisions', () => {
  it('tries the whole round first and leaves the thread idle', async () => {
    const { calls, set } = recorder();
    const priority = new WriterPriority(set, 20);
    await priority.start(4242);
    assert.deepEqual(calls, ['idle', 'normal', 'idle']);
    assert.equal(priority.policy, 'idle');
  });

  it('stays normal, and never moves again, where the thread cannot step back', async () => {
    // As for a service without CAP_SYS_NICE or an RLIMIT_NICE: down is allowed, back up is not.
    const { calls, set } = recorder((policy) => policy === 'normal');
    const priority = new WriterPriority(set, 20);
    await priority.start(4242);
    await settle();
    assert.equal(priority.policy, 'off');
    priority.busy();
    priority.quiet();
    await sleep(40);
    // The round, then one more try at normal; nothing after.
    assert.deepEqual(calls, ['idle', 'normal', 'normal']);
  });

  it('is off where there is no way to move it at all', async () => {
    const { calls, set } = recorder(() => true);
    const priority = new WriterPriority(set, 20);
    await priority.start(4242);
    priority.busy();
    await sleep(40);
    assert.equal(priority.policy, 'off');
    assert.deepEqual(calls, ['idle', 'normal']);
  });

  it('goes normal on a backlog, and back to idle only after a quiet spell', async () => {
    const { calls, set } = recorder();
    const priority = new WriterPriority(set, 30);
    await priority.start(4242);
    calls.length = 0;
    priority.busy();
    priority.busy();
    assert.equal(priority.policy, 'normal');
    priority.quiet();
    await sleep(10);
    // Piling up again within the quiet spell: it stays normal, and the spell starts over.
    priority.busy();
    priority.quiet();
    await sleep(20);
    assert.equal(priority.policy, 'normal');
    await sleep(30);
    assert.equal(priority.policy, 'idle');
    assert.deepEqual(calls, ['normal', 'idle']);
    // Quiet while already idle changes nothing.
    priority.quiet();
    await sleep(40);
    assert.deepEqual(calls, ['normal', 'idle']);
    priority.stop();
  });

  it('a backlog that starts while it is still finding out leaves the thread normal', async () => {
    const { calls, set } = recorder();
    const priority = new WriterPriority(set, 30);
    const starting = priority.start(4242);
    priority.busy();
    await starting;
    assert.deepEqual(calls, ['idle', 'normal']);
    assert.equal(priority.policy, 'normal');
    // …and it steps back once things are quiet.
    await sleep(60);
    assert.equal(priority.policy, 'idle');
    priority.stop();
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
    if (priority.policy === 'off') {
      t.skip('this machine does not let a thread step back from SCHED_IDLE (no CAP_SYS_NICE or RLIMIT_NICE)');
      return;
    }
    const idleThreads = () => [...policies()].filter(([, policy]) => policy === 'SCHED_IDLE').map(([tid]) => tid);
    await until('one thread is idle', () => idleThreads().length === 1);
    const [writer] = idleThreads();
    assert.notEqual(writer, process.pid, 'not the main thread');
    // A small batch leaves it idle.
    await store.appendHistory([change(1), change(2)]);
    assert.equal(policies().get(writer), 'SCHED_IDLE');
    // A flood's batch: normal at once.
    const flood = Array.from({ length: PART_ROWS * MAX_SPREAD_PARTS + 1 }, (_, n) => change(n + 10));
    const writing = store.appendHistory(flood);
    assert.equal(priority.policy, 'normal');
    await writing;
    await until('the kernel has it normal', () => policies().get(writer) === 'SCHED_OTHER');
    // A quiet second later, idle again; everything written.
    await until('idle again', () => policies().get(writer) === 'SCHED_IDLE', 4000);
    const stored = await store.queryHistory({ householdId: household, thing: 'car', limit: 10_000 });
    assert.equal(stored.length, flood.length + 3);
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

  it('asks for the full share once nothing has come back for STARVED_MS, and settles when all is in', async () => {
    // A thread slow to answer looks the same as a starved one: a batch that takes it a while.
    const calls: string[] = [];
    const priority = Object.assign(new WriterPriority(async () => {}), {
      busy: () => calls.push('busy'),
      quiet: () => calls.push('quiet'),
    });
    const writer = new SqliteWriter(join(dir, 'triad.db'), 5000, priority);
    const big = 'x'.repeat(20_000);
    const rows = Array.from({ length: PART_ROWS * MAX_SPREAD_PARTS - 20 }, (_, n) => [
      unique('sc'),
      'hh',
      'car',
      `p${n}`,
      T0 + n,
      null,
      JSON.stringify(`${big}${n}`),
      null,
      'test',
    ]);
    const sql =
      'INSERT INTO history (id, household_id, thing, property, ts, from_value, value, cause, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const started = performance.now();
    let done = false;
    const writing = writer.write([{ sql, rows }]).then(() => {
      done = true;
    });
    const settled = writer.settled().then(() => {
      assert.ok(done, 'settled once the batch was in');
    });
    await writing;
    await settled;
    const took = performance.now() - started;
    if (took < STARVED_MS * 2) {
      // A machine this fast never gets to see it; nothing to judge.
      assert.ok(!calls.includes('busy') || took >= STARVED_MS);
    } else {
      assert.ok(calls.includes('busy'), `the batch took ${Math.round(took)} ms`);
    }
    assert.equal(calls.at(-1), 'quiet', 'and steps back once nothing waits');
    await writer.settled();
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
