import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ReplayResult } from '../../src/automation/index.ts';
import { parseRule } from '../../src/automation/parse/rule.ts';
import { memorySource, REPLAY_MAX_STEPS, REPLAY_TRACE_STEPS, replayRules } from '../../src/automation/replay.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { HOME, MIN, startTestHub, type TestHub } from './helpers.ts';

const NOW = Date.parse('2026-12-01T00:00:00Z');

/** The reviewer's rule: every minute, a coffee machine toggled 10,000 times. */
const TOGGLE_10000 = {
  id: 'l2',
  triggers: [{ trigger: 'cron', pattern: '* * * * *' }],
  actions: [{ repeat: { count: 10_000, sequence: [{ action: 'toggle', thing: 'living-room-fan' }] } }],
};

const EVERY_MINUTE = {
  id: 'every-minute',
  triggers: [{ trigger: 'cron', pattern: '* * * * *' }],
  actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
};

type Answer = ReplayResult & { error?: { code: string; message: string } };

async function replay(t: TestHub, rule: unknown, from: string, to: string) {
  const response = await t.api('/api/automations/replay', { method: 'POST', body: JSON.stringify({ rule, from, to }) });
  const text = await response.text();
  return { status: response.status, bytes: text.length, body: JSON.parse(text) as Answer };
}

describe('automations: a replay is bounded by the steps its runs take', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ clock: new VirtualClock(NOW) });
  });
  after(async () => {
    await t?.hub.stop();
  });

  it('stops 200 runs of a 10,000-round repeat at its bound on steps, truncated, in seconds and a small answer', async () => {
    const started = performance.now();
    const { status, bytes, body } = await replay(t, TOGGLE_10000, '2026-11-30T00:00:00Z', '2026-11-30T03:20:00Z');
    const seconds = (performance.now() - started) / 1000;
    assert.equal(status, 200, body.error?.message);
    assert.equal(body.truncated, true);
    // Each full run is 20,000 steps and commands: two of them, and the third is cut at the bound.
    assert.equal(body.until, '2026-11-30T00:03:00.000Z', 'it says where it stopped: the minute of the run it cut');
    assert.deepEqual(
      body.runs.map((r) => [r.at, r.status]),
      [
        ['2026-11-30T00:01:00.000Z', 'finished'],
        ['2026-11-30T00:02:00.000Z', 'finished'],
        ['2026-11-30T00:03:00.000Z', 'stopped'],
      ],
    );
    assert.match(body.runs[2].trace.error ?? '', new RegExp(`bound of ${REPLAY_MAX_STEPS} steps`));
    const commands = body.runs.reduce((sum, r) => sum + r.actions.length, 0);
    assert.ok(commands < REPLAY_MAX_STEPS, `${commands} commands recorded`);
    assert.ok(seconds < 10, `answered in ${seconds.toFixed(1)} s`);
    assert.ok(bytes < 5_000_000, `a ${bytes}-byte answer, well under the stated ~20 MB`);
  });

  it('shows the first and last steps of a long repeat in the trace, and how many were left out', async () => {
    const { body } = await replay(t, TOGGLE_10000, '2026-11-30T00:00:00Z', '2026-11-30T00:01:00Z');
    const [run] = body.runs;
    assert.equal(run.status, 'finished', 'count: 10000 is allowed, so its 10,000th round is no error');
    assert.equal(run.actions.length, 10_000, 'every command is still listed');
    assert.equal(run.trace.steps.length, REPLAY_TRACE_STEPS);
    assert.deepEqual(run.omittedSteps, { after: REPLAY_TRACE_STEPS / 2, count: 10_001 - REPLAY_TRACE_STEPS });
    assert.equal(run.trace.steps[0].action, 'repeat');
    assert.equal(run.trace.steps.at(-1)?.action, 'toggle');
  });

  it('keeps answering other requests while a heavy replay runs', async () => {
    let done = false;
    const replaying = replay(t, TOGGLE_10000, '2026-11-29T00:00:00Z', '2026-11-30T00:00:00Z').finally(() => {
      done = true;
    });
    const delays: number[] = [];
    await new Promise((r) => setTimeout(r, 20));
    while (!done) {
      const sent = performance.now();
      const ok = (await t.api('/api/health')).ok;
      if (ok && !done) delays.push(performance.now() - sent);
      await new Promise((r) => setTimeout(r, 10));
    }
    const { status, body } = await replaying;
    assert.equal(status, 200);
    assert.equal(body.truncated, true);
    assert.ok(delays.length > 0, 'a health check was answered while the replay ran');
    const slowest = Math.max(...delays);
    assert.ok(slowest < 500, `the slowest of ${delays.length} health checks took ${Math.round(slowest)} ms`);
  });

  it('returns a week of a plain one-minute cron whole, not truncated', async () => {
    const { status, body } = await replay(t, EVERY_MINUTE, '2026-11-01T00:00:00Z', '2026-11-08T00:00:00Z');
    assert.equal(status, 200);
    assert.equal(body.runs.length, 7 * 24 * 60);
    assert.equal(body.truncated, false);
    assert.equal(body.until, undefined);
    assert.ok(body.runs.every((r) => r.status === 'finished' && r.omittedSteps === undefined));
  });

  it('gives other work a turn in the middle of a 10,000-round repeat', async () => {
    const from = Date.parse('2026-11-30T00:00:00Z');
    let commands = 0;
    const fan = t.hub.twins.get(HOME, 'living-room-fan')?.thing;
    assert.ok(fan);
    const rule = parseRule(TOGGLE_10000, {
      householdId: HOME,
      thing: () => fan,
      hasLocation: false,
      origin: { kind: 'draft' },
    });
    // Each command the replay records looks its thing up: the count says how far the run is.
    const thing = () => {
      commands++;
      return fan;
    };
    let replaying = true;
    const seenMidRun: number[] = [];
    const watch = (async () => {
      while (replaying) {
        if (commands > 0 && commands < 10_000) seenMidRun.push(commands);
        await nextTurn();
      }
    })();
    const result = await replayRules({
      rules: [rule],
      householdId: HOME,
      from,
      to: from + MIN,
      source: memorySource([], []),
      thing,
      location: null,
    });
    replaying = false;
    await watch;
    assert.equal(result.runs.length, 1);
    assert.ok(seenMidRun.length > 0, 'a turn of the event loop came while the run was part way through');
  });
});
