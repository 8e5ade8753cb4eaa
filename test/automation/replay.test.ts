import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { REPLAY_MAX_TRIGGERS } from '../../src/automation/engine.ts';
import type { ReplayResult } from '../../src/automation/index.ts';
import { parseRule } from '../../src/automation/parse/rule.ts';
import { memorySource, REPLAY_MAX_RUNS, replayRules } from '../../src/automation/replay.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { vocabularyActions, vocabularyProperties } from '../../src/model/thing.ts';
import { advance, FAN_RULE_YAML, HOME, MIN, replayCaptured, startTestHub, type TestHub } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
const iso = (ms: number) => new Date(ms).toISOString();

const EVERY_MINUTE = {
  id: 'every-minute',
  triggers: [{ trigger: 'cron', pattern: '* * * * *' }],
  actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
};

const DELAY_RULE = {
  id: 'fan-for-a-while',
  triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  actions: [
    { action: 'turn_on', thing: 'living-room-fan' },
    { delay: '20m' },
    { action: 'turn_off', thing: 'living-room-fan' },
  ],
};

/**
 * A recorded hour: someone home; the temperature crosses 25 °C at +1 min but drops back at +5,
 * crosses again at +10 and stays until +40; the humidity changes once at +2 min. No rule is loaded
 * while it is recorded, so the history is all there is.
 */
async function recordHour(t: TestHub, clock: VirtualClock): Promise<void> {
  t.set('household', 'presence.anyone_home', true);
  t.set('living-room-sensor', 'sensor.temperature', 22);
  const script: Array<[number, string, number]> = [
    [1, 'sensor.temperature', 26],
    [2, 'sensor.humidity', 70],
    [5, 'sensor.temperature', 24],
    [10, 'sensor.temperature', 27],
    [40, 'sensor.temperature', 20],
  ];
  let at = 0;
  for (const [minute, property, value] of script) {
    await advance(clock, (minute - at) * MIN, MIN);
    at = minute;
    t.set('living-room-sensor', property, value);
  }
  await advance(clock, 20 * MIN, MIN);
}

async function replay(t: TestHub, rule: unknown, from: number, to: number) {
  const response = await t.api('/api/automations/replay', {
    method: 'POST',
    body: JSON.stringify({ rule, from: iso(from), to: iso(to) }),
  });
  return { status: response.status, body: (await response.json()) as ReplayResult & { error?: { message: string } } };
}

describe('automations: replay over recorded history', () => {
  let t: TestHub;
  let clock: VirtualClock;
  // The range starts after the first values, so the replay must begin from the state before it.
  const from = T0 + 30_000;
  const to = T0 + 60 * MIN;

  before(async () => {
    clock = new VirtualClock(T0);
    t = await startTestHub({ clock });
    await recordHour(t, clock);
  });
  after(async () => {
    await t?.hub.stop();
  });

  it('returns the one run the contract rule would have made, 10 minutes after the lasting crossing', async () => {
    const sentBefore = t.home?.sent.length;
    const eventsBefore = t.events.length;
    const { status, body } = await replay(t, FAN_RULE_YAML, from, to);
    assert.equal(status, 200);
    assert.equal(body.runs.length, 1, 'the crossing at +1 min dropped back within 10 minutes');
    const [run] = body.runs;
    assert.equal(run.at, iso(T0 + 20 * MIN), 'the run is at its start, once the 10 minutes had passed');
    assert.equal(run.trace.startedAt, T0 + 20 * MIN, 'it ran once the 10 minutes had passed');
    assert.equal(run.status, 'finished');
    assert.deepEqual(run.actions, [{ action: 'turn_on', thing: 'living-room-fan', input: {} }]);
    assert.equal(run.trace.steps[0].commands?.[0].status, 'dry_run');
    assert.deepEqual(
      run.trace.conditions.map((c) => c.result),
      [true],
      'someone was home, as recorded before the range began',
    );

    assert.equal(t.home?.sent.length, sentBefore, 'nothing reached a device');
    assert.equal(
      t.events.slice(eventsBefore).filter((e) => e.type === 'command' || e.type.startsWith('automation.')).length,
      0,
      'no command and no automation event went on the bus',
    );
    assert.deepEqual(await t.hub.store.listTraces({ householdId: 'home', rule: 'fan-when-hot' }), []);
  });

  it('takes the rule as YAML text, as an object, or as the id of a saved rule, with the same runs', async () => {
    const text = await replay(t, FAN_RULE_YAML, from, to);
    const object = await replay(t, YAML.parse(FAN_RULE_YAML), from, to);
    assert.equal(
      (await t.api('/api/automations', { method: 'POST', body: JSON.stringify(FAN_RULE_YAML) })).status,
      201,
    );
    const saved = await replay(t, 'fan-when-hot', from, to);
    const view = (r: ReplayResult) => r.runs.map((x) => [x.at, x.rule, x.status, x.actions]);
    assert.deepEqual(view(object.body), view(text.body));
    assert.deepEqual(view(saved.body), view(text.body));
    assert.equal(saved.body.runs.length, 1);
  });

  it('finishes a delay at exactly its deadline, not at the next recorded event', async () => {
    const { body } = await replay(t, DELAY_RULE, from, to);
    assert.equal(body.runs.length, 1);
    const [run] = body.runs;
    assert.deepEqual(
      run.actions.map((a) => a.action),
      ['turn_on', 'turn_off'],
    );
    const [, delay, off] = run.trace.steps;
    assert.equal(delay.finishedAt, T0 + 22 * MIN);
    assert.equal(off.at, T0 + 22 * MIN);
  });

  it('reports a run still in its delay when the range ends as it stands', async () => {
    const { body } = await replay(t, DELAY_RULE, from, T0 + 10 * MIN);
    assert.equal(body.runs.length, 1);
    assert.equal(body.runs[0].status, 'waiting');
    assert.deepEqual(
      body.runs[0].actions.map((a) => a.action),
      ['turn_on'],
    );
  });

  it('returns every run of a week of a one-minute cron, not truncated', async () => {
    // A week before the hub's now: recorded history ends now, so a replay's range lies before it.
    const weekFrom = Date.parse('2026-05-01T00:00:00Z');
    const weekTo = Date.parse('2026-05-08T00:00:00Z');
    const { status, body } = await replay(t, EVERY_MINUTE, weekFrom, weekTo);
    assert.equal(status, 200);
    assert.equal(body.runs.length, 7 * 24 * 60, 'one run a minute, the first at 00:01 and the last at `to`');
    assert.equal(body.runs[0].at, '2026-05-01T00:01:00.000Z');
    assert.equal(body.runs.at(-1)?.at, '2026-05-08T00:00:00.000Z');
    assert.equal(body.truncated, false);
    assert.equal(body.until, undefined);
  });

  it('stops at the bound on triggers judged, runs or not, and says where', async () => {
    // Nothing says anyone was away in the 60 days before the recording (the hub's history begins
    // at T0), so every minute is judged and none is a run.
    const whenAway = {
      ...EVERY_MINUTE,
      id: 'every-minute-when-away',
      conditions: [{ condition: 'state', thing: 'household', property: 'presence.anyone_home', state: false }],
    };
    const start = T0 - 60 * 86_400_000;
    const { status, body } = await replay(t, whenAway, start, start + 60 * 86_400_000);
    assert.equal(status, 200);
    assert.equal(body.runs.length, 0);
    assert.equal(body.conditionFailed, REPLAY_MAX_TRIGGERS);
    assert.equal(body.truncated, true);
    assert.equal(body.until, iso(start + REPLAY_MAX_TRIGGERS * MIN), 'the minute of the last trigger judged');
  });

  it('stops a replay with too many runs where its runs end, and the hub answers meanwhile', async () => {
    // Ten years of a one-minute cron: five million runs, which once ran the hub out of memory.
    const tenYears = 10 * 365 * 24 * 60 * MIN;
    // Health checks answered while the replay was still running: none if it held the event loop.
    let answeredDuring = 0;
    let done = false;
    const started = performance.now();
    const replaying = replay(t, EVERY_MINUTE, T0 - tenYears, T0).finally(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    while (!done) {
      const ok = (await t.api('/api/health')).ok;
      if (ok && !done) answeredDuring++;
      await new Promise((r) => setTimeout(r, 20));
    }
    const { status, body } = await replaying;
    assert.equal(status, 200);
    assert.equal(body.truncated, true);
    assert.equal(body.runs.length, REPLAY_MAX_RUNS, 'the runs kept in the answer');
    const until = Date.parse(body.until ?? '');
    assert.equal(until, T0 - tenYears + REPLAY_MAX_RUNS * MIN, 'it says where it stopped: one run a minute');
    assert.equal(body.runs.at(-1)?.at, body.until, 'the runs are complete up to `until`, and none is past it');
    assert.equal(new Set(body.runs.map((r) => r.at)).size, REPLAY_MAX_RUNS, 'one run for each minute up to it');
    assert.ok(
      answeredDuring > 0,
      `the hub answered ${answeredDuring} health checks during the ${Math.round(performance.now() - started)} ms replay`,
    );
  });

  it('answers 400 naming the problem for a bad rule or range, and stores nothing', async () => {
    const badThing = await replay(
      t,
      { ...DELAY_RULE, id: 'draft', actions: [{ action: 'turn_on', thing: 'no-such-fan' }] },
      from,
      to,
    );
    assert.equal(badThing.status, 400);
    assert.match(badThing.body.error?.message ?? '', /actions\[0\]\.thing: unknown thing "no-such-fan"/);
    const backwards = await replay(t, DELAY_RULE, to, from);
    assert.equal(backwards.status, 400);
    const response = await t.api('/api/automations/replay', {
      method: 'POST',
      body: JSON.stringify({ rule: DELAY_RULE, from: 'yesterday', to: iso(to) }),
    });
    assert.equal(response.status, 400);
    const ids = ((await (await t.api('/api/automations')).json()) as Array<{ id: string }>).map((r) => r.id);
    assert.ok(!ids.includes('draft') && !ids.includes('fan-for-a-while'), 'a replayed draft is never saved');
  });
});

describe('automations: replay bounds, exactly', () => {
  const fan = {
    id: 'fan',
    householdId: HOME,
    kind: 'device' as const,
    name: 'Fan',
    adapter: 'test',
    properties: vocabularyProperties(['switch.on']),
    actions: vocabularyActions('switch'),
    createdAt: iso(T0),
    updatedAt: iso(T0),
  };
  const rule = (doc: Record<string, unknown>) =>
    parseRule(doc, { householdId: HOME, thing: () => fan, hasLocation: false, origin: { kind: 'draft' } });
  const run = (rules: ReturnType<typeof rule>[], maxRuns: number, to = T0 + 86_400_000) =>
    replayRules({
      rules,
      householdId: HOME,
      from: T0,
      to,
      source: memorySource([], []),
      thing: () => fan,
      location: null,
      maxRuns,
    });
  const cron = (id: string, actions: unknown[]) =>
    rule({ id, mode: 'parallel', max: 100, triggers: [{ trigger: 'cron', pattern: '* * * * *' }], actions });

  it('finishes the minute it reached the bound in: two rules due then both run, and `until` is that minute', async () => {
    const on = [{ action: 'turn_on', thing: 'fan' }];
    const result = await run([cron('first', on), cron('second', on)], 101);
    assert.equal(result.runs.length, 102, 'the 101st run ended at +51 min, and so did the 102nd');
    assert.equal(result.until, iso(T0 + 51 * MIN));
    assert.deepEqual(
      result.runs.slice(-2).map((r) => [r.rule, r.at]),
      [
        ['first', iso(T0 + 51 * MIN)],
        ['second', iso(T0 + 51 * MIN)],
      ],
    );
  });

  it('reports runs still in a delay when it stops, as they stood, since they were triggered before `until`', async () => {
    const slow = cron('slow', [
      { action: 'turn_on', thing: 'fan' },
      { delay: '5m' },
      { action: 'turn_off', thing: 'fan' },
    ]);
    const result = await run([slow], 100);
    // The 100th run ends at +105 min (triggered at +100); those of +101 to +105 are in their delay.
    assert.equal(result.until, iso(T0 + 105 * MIN));
    const waiting = result.runs.filter((r) => r.status === 'waiting');
    assert.deepEqual(
      waiting.map((r) => r.at),
      [101, 102, 103, 104, 105].map((m) => iso(T0 + m * MIN)),
    );
    assert.equal(result.runs.length, 105, 'every trigger up to `until` is there, once');
    // What it returned is what a replay that ended at `until` returns: no more, no less.
    const upToUntil = await run([slow], Number.POSITIVE_INFINITY, T0 + 105 * MIN);
    assert.equal(upToUntil.truncated, false);
    const view = (r: ReplayResult) => r.runs.map((x) => [x.at, x.status, x.actions.map((a) => a.action)]);
    assert.deepEqual(view(result), view(upToUntil));
  });
});

describe('automations: `triad replay` (runReplayCommand)', () => {
  let dataDir = '';
  let ruleFile = '';

  before(async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    await recordHour(t, clock);
    await t.hub.stop();
    dataDir = t.dataDir;
    await mkdir(join(dataDir, 'drafts'), { recursive: true });
    ruleFile = join(dataDir, 'drafts', 'fan.yaml');
    await writeFile(ruleFile, `${FAN_RULE_YAML}---\n${YAML.stringify(DELAY_RULE)}`);
  });

  /** Runs the command with stdout and stderr captured; the hub's data is read from its folder. */
  async function command(args: { from: string; to: string; file?: string }) {
    return replayCaptured({ file: ruleFile, data: dataDir, ...args });
  }

  it('prints every file rule’s runs as JSON, and no progress bar for a short range', async () => {
    const { code, stdout, stderr } = await command({ from: iso(T0 + 30_000), to: iso(T0 + 60 * MIN) });
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as ReplayResult;
    assert.deepEqual(
      result.runs.map((r) => [r.rule, r.at, r.actions.map((a) => a.action)]),
      [
        ['fan-for-a-while', iso(T0 + 2 * MIN), ['turn_on', 'turn_off']],
        ['fan-when-hot', iso(T0 + 20 * MIN), ['turn_on']],
      ],
    );
    assert.equal(stderr, '');
  });

  it('draws a progress bar to 100 % on a range longer than a day', async () => {
    const { code, stdout, stderr } = await command({ from: iso(T0 - 2 * 86_400_000), to: iso(T0 + 86_400_000) });
    assert.equal(code, 0, stderr);
    const lines = stderr.trim().split('\n');
    assert.ok(lines.length >= 1);
    assert.match(lines.at(-1) ?? '', /^replay \[#{30}\] 100% {2}\d+ events$/);
    assert.equal((JSON.parse(stdout) as ReplayResult).runs.length, 2);
  });

  it('stops at the bound on runs as the API does: `until`, a bar that ends there, and a line saying so', async () => {
    const cronFile = join(dataDir, 'drafts', 'every-minute.yaml');
    await writeFile(cronFile, YAML.stringify(EVERY_MINUTE));
    const start = Date.parse('2026-11-01T00:00:00Z');
    const { code, stdout, stderr } = await command({
      file: cronFile,
      from: iso(start),
      to: iso(start + 21 * 86_400_000),
    });
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as ReplayResult;
    assert.equal(result.runs.length, REPLAY_MAX_RUNS);
    assert.equal(result.truncated, true);
    assert.equal(result.until, iso(start + REPLAY_MAX_RUNS * MIN));
    assert.equal(result.runs.at(-1)?.at, result.until);
    const lines = stderr.trim().split('\n');
    assert.match(lines.at(-2) ?? '', /^replay \[#+\.+\] {2}66% /, 'the bar stops where the replay did');
    assert.equal(
      lines.at(-1),
      `triad replay: stopped at its bound on runs; the ${REPLAY_MAX_RUNS} runs are those of a replay up to ${result.until}`,
    );
  });

  it('exits 2 with a message for bad times or a broken rule file, naming file, line and field', async () => {
    const badTime = await command({ from: 'last week', to: iso(T0) });
    assert.equal(badTime.code, 2);
    assert.match(badTime.stderr, /--from and --to must be ISO 8601/);
    const broken = join(dataDir, 'drafts', 'broken.yaml');
    await writeFile(broken, FAN_RULE_YAML.replace('thing: living-room-fan', 'thing: living-room-fridge'));
    const result = await command({ file: broken, from: iso(T0), to: iso(T0 + MIN) });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /broken\.yaml:17: actions\[0\]\.thing: unknown thing "living-room-fridge"/);
    assert.equal(result.stdout, '');
  });
});
