import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ReplayResult } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { createLogger, type LogLine } from '../../src/core/log.ts';
import { advance, MIN, postRule, startTestHub, type TestHub, tracesOf, writeRuleFile } from './helpers.ts';

/** 06:00 local time, so a rule `at: "06:30"` fires half an hour in. */
const T0 = new Date(2026, 5, 1, 6, 0).getTime();

/** A rule the file holds: the fan on at half past six. */
const FILE_RULE = {
  id: 'filerule',
  triggers: [{ trigger: 'time', at: '06:30' }],
  actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
};

async function ruleStatus(t: TestHub, id: string): Promise<number | string> {
  const response = await t.api(`/api/automations/${id}`);
  if (response.status !== 200) return response.status;
  return ((await response.json()) as { status: string }).status;
}

describe('automations: a broken rules file across a restart', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('keeps running the rules of the text that applied last, as the log says, and fires them', async () => {
    const first = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(first);
    await writeRuleFile(first, 'f.yaml', FILE_RULE);
    assert.equal(await ruleStatus(first, 'filerule'), 'active');
    const typo = { ...FILE_RULE, triggers: [{ trigger: 'time', at: '33:00' }] };
    await writeRuleFile(first, 'f.yaml', typo);
    assert.equal(await ruleStatus(first, 'filerule'), 'active', 'kept running while the hub runs');
    await first.hub.stop();
    hubs.pop();

    // The power comes back: the file still has the typo.
    const lines: LogLine[] = [];
    const clock = new VirtualClock(T0);
    const second = await startTestHub({
      clock,
      dataDir: first.dataDir,
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
    });
    hubs.push(second);
    assert.ok(
      lines.some((l) => l.message === 'rules file not applied; its previous rules keep running'),
      'the problem is logged as before',
    );
    assert.equal(await ruleStatus(second, 'filerule'), 'active', 'the previous rule is running after the restart');
    const problems = (await (await second.api('/api/automations/problems')).json()) as Array<{ file: string }>;
    assert.deepEqual(
      problems.map((p) => p.file),
      ['f.yaml'],
      'and the file is reported',
    );
    await advance(clock, 31 * MIN, 10_000);
    assert.deepEqual(
      (await tracesOf(second, 'filerule')).map((tr) => tr.status),
      ['finished'],
      'the alarm went off at 06:30',
    );

    // Fixed, the file's text applies and is the one kept from then on.
    await writeRuleFile(second, 'f.yaml', { ...FILE_RULE, name: 'Fixed' });
    const fixed = (await (await second.api('/api/automations/filerule')).json()) as { name: string };
    assert.equal(fixed.name, 'Fixed');
    assert.deepEqual(await (await second.api('/api/automations/problems')).json(), []);
  });

  it('forgets a deleted file: a broken file of that name written later brings nothing back', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await writeRuleFile(t, 'g.yaml', { ...FILE_RULE, id: 'grule' });
    await rm(join(t.dataDir, 'automations', 'g.yaml'));
    await t.engine.reloadFile('g.yaml');
    assert.equal(await ruleStatus(t, 'grule'), 404);
    await writeRuleFile(t, 'g.yaml', 'id: grule\ntriggers: [oops\n');
    await t.hub.stop();
    hubs.pop();
    const again = await startTestHub({ clock: new VirtualClock(T0), dataDir: t.dataDir });
    hubs.push(again);
    assert.equal(await ruleStatus(again, 'grule'), 404);
  });
});

describe('automations: rules file problems by household', () => {
  let t: TestHub | undefined;
  after(async () => {
    await t?.hub.stop();
  });

  it('another household sees none of the hub’s rules files, nor the rule ids they name', async () => {
    t = await startTestHub({ clock: new VirtualClock(T0) });
    await writeRuleFile(t, 'broken.yaml', { ...FILE_RULE, id: 'secret-alarm', triggers: [{ trigger: 'time' }] });
    const mine = await (await t.api('/api/automations/problems')).json();
    assert.equal((mine as unknown[]).length, 1, 'the hub’s own household sees its file’s problem');
    const made = await t.api('/api/households', { method: 'POST', body: JSON.stringify({ name: 'Neighbours' }) });
    assert.equal(made.status, 201, await made.clone().text());
    const { token } = (await made.json()) as { token: string };
    const theirs = await t.api('/api/automations/problems', { token });
    assert.equal(theirs.status, 200);
    assert.deepEqual(await theirs.json(), []);
  });
});

describe('automations: which event finished a rule’s command', () => {
  let t: TestHub | undefined;
  after(async () => {
    await t?.hub.stop();
  });

  it('is the report’s state change when there is one, and null when the report changed nothing', async () => {
    const clock = new VirtualClock(T0);
    t = await startTestHub({ clock });
    const hub = t;
    t.set('hall-light', 'light.on', false);
    await postRule(t, {
      id: 'light-by-humidity',
      mode: 'queued',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        {
          choose: [
            {
              conditions: [
                { condition: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.humidity', above: 60 },
              ],
              sequence: [{ action: 'turn_on', thing: 'hall-light' }],
            },
          ],
          default: [{ action: 'turn_off', thing: 'hall-light' }],
        },
      ],
    });
    const stateChange = (value: boolean) =>
      hub.events.filter((e) => e.type === 'state' && e.thing === 'hall-light' && e.to === value).at(-1)?.id;

    // Off told to a light already off: it answers off, which changes nothing and is no event.
    t.set('living-room-sensor', 'sensor.humidity', 40);
    await advance(clock, 1000, 100);
    // On told to a light that is off: its report changes light.on, and that event finished it.
    t.set('living-room-sensor', 'sensor.humidity', 70);
    await advance(clock, 1000, 100);

    const [off, on] = await tracesOf(t, 'light-by-humidity');
    const offCommand = off.steps.flatMap((s) => s.commands ?? [])[0];
    assert.equal(offCommand.status, 'confirmed');
    assert.notEqual(offCommand.finishedBy, off.trigger.cause, 'not the trigger, which did not finish it');
    assert.equal(offCommand.finishedBy, null);
    const onCommand = on.steps.flatMap((s) => s.commands ?? [])[0];
    assert.equal(onCommand.status, 'confirmed');
    assert.ok(stateChange(true));
    assert.equal(onCommand.finishedBy, stateChange(true));
  });
});

describe('automations: replay of a rule with `for:`', () => {
  let t: TestHub | undefined;
  after(async () => {
    await t?.hub.stop();
  });

  it('says a run is at its start, a minute after its trigger came', async () => {
    const clock = new VirtualClock(T0);
    t = await startTestHub({ clock });
    t.set('living-room-sensor', 'sensor.humidity', 40);
    await advance(clock, MIN);
    const crossed = clock.now();
    t.set('living-room-sensor', 'sensor.humidity', 70);
    await advance(clock, 5 * MIN, 10_000);
    const rule = {
      id: 'fan-when-humid-a-while',
      triggers: [
        { trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.humidity', above: 60, for: '60s' },
      ],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    };
    const response = await t.api('/api/automations/replay', {
      method: 'POST',
      body: JSON.stringify({ rule, from: new Date(T0).toISOString(), to: new Date(clock.now()).toISOString() }),
    });
    assert.equal(response.status, 200);
    const { runs } = (await response.json()) as ReplayResult;
    assert.equal(runs.length, 1);
    assert.equal(runs[0].trigger.ts, crossed, 'the trigger came at the crossing');
    assert.equal(runs[0].at, new Date(crossed + MIN).toISOString(), 'the run started a minute later');
    assert.equal(runs[0].at, new Date(runs[0].trace.startedAt).toISOString());
  });
});

describe('automations: parallel creates of one id', () => {
  let t: TestHub | undefined;
  after(async () => {
    await t?.hub.stop();
  });

  it('answer one 201 and the rest 409, as sequential ones do, and the first rule stays', async () => {
    t = await startTestHub({});
    const hub = t;
    const bodies = Array.from({ length: 6 }, (_, n) => ({
      id: 'same-id',
      name: `Take ${n}`,
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    }));
    const responses = await Promise.all(
      bodies.map((body) => hub.api('/api/automations', { method: 'POST', body: JSON.stringify(body) })),
    );
    const statuses = responses.map((r) => r.status);
    assert.deepEqual([...statuses].sort(), [201, 409, 409, 409, 409, 409], statuses.join(', '));
    const winner = statuses.indexOf(201);
    const saved = (await (await t.api('/api/automations/same-id')).json()) as { name: string };
    assert.equal(saved.name, `Take ${winner}`, 'the rule answered 201 is the one kept');
  });
});
