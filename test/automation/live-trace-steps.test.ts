import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { Trace } from '../../src/automation/index.ts';
import { TRACE_STEPS } from '../../src/automation/runtime/trace.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import type { StoreChoice } from '../../src/core/hub.ts';
import { eventually } from '../helpers/hub-process.ts';
import { needService, services } from '../helpers/services.ts';
import { dropSchema } from '../helpers/stores.ts';
import { advance, HOME, MIN, startTestHub, type TestHub, tracesOf, writeRuleFile } from './helpers.ts';

/**
 * A live run's trace keeps its first and last TRACE_STEPS / 2 steps, as a replay's does, and says
 * how many it left out between (`omittedSteps`): a run of `repeat: {count: 10000}` stored a 3 MB
 * trace, and a rule keeps 100. What is kept reads back from SQLite and PostgreSQL alike, and a run
 * that waits after its long repeat, and is resumed after a restart, adds to the count.
 */

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const ROUNDS = 400;

/** A repeat of ROUNDS toggles, a wait, a shorter repeat and a last command. */
const LONG_RULE = {
  id: 'toggle-a-lot',
  triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  actions: [
    { repeat: { count: ROUNDS, sequence: [{ action: 'toggle', thing: 'living-room-fan' }] } },
    { delay: '10m' },
    { repeat: { count: 20, sequence: [{ action: 'toggle', thing: 'hall-light' }] } },
    { action: 'turn_on', thing: 'living-room-fan' },
  ],
};

/** The rule's newest trace once it has the status asked for (and `also` holds). */
async function newestTrace(t: TestHub, status: string, also: (trace: Trace) => boolean = () => true): Promise<Trace> {
  return eventually(async () => {
    const trace = (await tracesOf(t, LONG_RULE.id)).at(-1);
    return trace?.status === status && also(trace) && trace;
  });
}

const schema = `triad_test_${randomBytes(6).toString('hex')}`;
const backends: Array<{ name: string; store: StoreChoice; skip: string | false }> = [
  { name: 'SQLite', store: { kind: 'sqlite' }, skip: false },
  { name: 'PostgreSQL', store: { kind: 'postgres', url: services.pg, schema }, skip: await needService('pg') },
];

for (const { name, store, skip } of backends) {
  describe(`automations: a live run's trace keeps ${TRACE_STEPS} steps (${name})`, { skip }, () => {
    after(async () => {
      if (store.kind === 'postgres' && !skip) await dropSchema(schema);
    });

    it('keeps the first and last steps of a long repeat, counts the rest, and reads back after a restart', async () => {
      const clock = new VirtualClock(T0);
      const first = await startTestHub({ clock, store });
      try {
        // A rule from a file (test/automation/rule-version-restart.test.ts covers API rules
        // across a restart on PostgreSQL).
        await writeRuleFile(first, 'long.yaml', LONG_RULE);
        first.set('living-room-sensor', 'sensor.humidity', 70);
        await advance(clock, 2000, 100);

        // Waiting in its delay: the trace stored so far is bounded already.
        const waiting = await newestTrace(first, 'waiting');
        // The repeat step, ROUNDS toggles, and the delay.
        const taken = 1 + ROUNDS + 1;
        assert.equal(waiting.steps.length, TRACE_STEPS);
        assert.deepEqual(waiting.omittedSteps, { after: TRACE_STEPS / 2, count: taken - TRACE_STEPS });
        assert.equal(waiting.steps[0].action, 'repeat');
        assert.equal(waiting.steps.at(-1)?.action, 'delay');
        assert.equal(waiting.steps.at(-1)?.status, 'waiting');
      } finally {
        await first.hub.stop();
      }

      // Resumed after a restart, the run goes on writing the stored (bounded) trace.
      const clock2 = new VirtualClock(T0 + 2 * MIN);
      const second = await startTestHub({ clock: clock2, store, dataDir: first.dataDir });
      try {
        await advance(clock2, 9 * MIN, 5000);
        // Its last command's confirmation reaches the step kept for it.
        const done = await newestTrace(second, 'finished', (t) => t.steps.at(-1)?.commands?.[0].status === 'confirmed');
        const taken = 1 + ROUNDS + 1 + 1 + 20 + 1;
        assert.equal(done.steps.length, TRACE_STEPS);
        assert.deepEqual(done.omittedSteps, { after: TRACE_STEPS / 2, count: taken - TRACE_STEPS });
        assert.deepEqual(
          done.steps.slice(0, 2).map((s) => s.action),
          ['repeat', 'toggle'],
        );
        assert.deepEqual(
          done.steps.slice(-3).map((s) => s.action),
          ['toggle', 'toggle', 'turn_on'],
        );
        // The one trace, as read alone, is the same.
        const one = await second.api(`/api/automations/${LONG_RULE.id}/traces/${done.id}`);
        assert.equal(one.status, 200);
        const read = (await one.json()) as Trace;
        assert.deepEqual(read.omittedSteps, done.omittedSteps);
        assert.equal(read.steps.length, TRACE_STEPS);
        const bytes = JSON.stringify(read).length;
        assert.ok(bytes < 100_000, `a ${bytes}-byte trace`);
        assert.equal(second.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), true);
      } finally {
        await second.hub.stop();
      }
    });
  });
}
