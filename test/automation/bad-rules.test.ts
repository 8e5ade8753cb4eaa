import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually } from '../helpers/hub-process.ts';
import {
  crossSixty,
  HOME,
  HUMID_RULE,
  postRule,
  startTestHub,
  type TestHub,
  tracesOf,
  writeRuleFile,
} from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

interface RuleView {
  id: string;
  name: string;
  status: string;
  file: string | null;
}

async function listRules(t: TestHub): Promise<RuleView[]> {
  return (await (await t.api('/api/automations')).json()) as RuleView[];
}

describe('automations: bad rules over the API', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  const cases: Array<{ what: string; rule: Record<string, unknown>; field: string; message: RegExp }> = [
    {
      what: 'a rule id with capitals and a space',
      rule: { ...HUMID_RULE, id: 'Fan When Humid' },
      field: 'id',
      message: /^id: "Fan When Humid" is not a rule id: lower-case letters/,
    },
    {
      what: 'a rule id that is a number',
      rule: { ...HUMID_RULE, id: 42 },
      field: 'id',
      message: /^id: must be text: lower-case letters/,
    },
    {
      what: 'a rule without an id',
      rule: { ...HUMID_RULE, id: undefined },
      field: 'id',
      message: /^id: is required: lower-case letters/,
    },
    {
      what: 'an unknown thing',
      rule: { ...HUMID_RULE, actions: [{ action: 'turn_on', thing: 'garage-fan' }] },
      field: 'actions[0].thing',
      message: /unknown thing "garage-fan"/,
    },
    {
      what: 'an unknown property',
      rule: { ...HUMID_RULE, triggers: [{ ...HUMID_RULE.triggers[0], property: 'sensor.pressure' }] },
      field: 'triggers[0].property',
      message: /unknown property "sensor.pressure" on living-room-sensor/,
    },
    {
      what: 'an unknown action',
      rule: { ...HUMID_RULE, actions: [{ action: 'open', thing: 'living-room-fan' }] },
      field: 'actions[0].action',
      message: /unknown action "open" on living-room-fan/,
    },
    {
      what: 'an unknown trigger type',
      rule: { ...HUMID_RULE, triggers: [{ trigger: 'moon', phase: 'full' }] },
      field: 'triggers[0].trigger',
      message: /unknown trigger type "moon"/,
    },
    {
      what: 'a value of the wrong type for the property',
      rule: {
        ...HUMID_RULE,
        conditions: [{ condition: 'state', thing: 'living-room-fan', property: 'switch.on', state: 'on' }],
      },
      field: 'conditions[0].state',
      message: /switch\.on must be a boolean/,
    },
  ];
  for (const c of cases) {
    it(`rejects ${c.what} with 400 naming ${c.field}, and stores nothing`, async () => {
      const t = await startTestHub({ clock: new VirtualClock(T0) });
      hubs.push(t);
      const response = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(c.rule) });
      assert.equal(response.status, 400);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'invalid_rule');
      assert.ok(error.message.startsWith(`${c.field}: `), error.message);
      assert.match(error.message, c.message);
      assert.deepEqual(await listRules(t), []);
      assert.deepEqual(await t.hub.store.listRules(HOME), []);
      assert.equal((await t.api('/api/automations/fan-when-humid')).status, 404);
    });
  }

  it('a bad replacement changes nothing: the previous version keeps running', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, HUMID_RULE);
    const response = await t.api('/api/automations/fan-when-humid', {
      method: 'PUT',
      body: JSON.stringify({ ...HUMID_RULE, name: 'Broken', actions: [{ action: 'turn_on', thing: 'nope' }] }),
    });
    assert.equal(response.status, 400);
    const [stored] = await t.hub.store.listRules(HOME);
    assert.equal(stored.body.name, 'Fan when humid', 'the stored rule is the old one');
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1, 'and it still runs');
  });

  it('a rule that fails at run time records it in its trace and other rules still run', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    // The input is a template, so it can only be checked when it is filled in: 70 × 10 is not a brightness.
    await postRule(t, {
      id: 'too-bright',
      triggers: HUMID_RULE.triggers,
      actions: [
        { action: 'turn_on', thing: 'hall-light', data: { brightness: '{{ trigger.to * 10 }}' } },
        { action: 'turn_on', thing: 'living-room-fan' },
      ],
    });
    await postRule(t, { ...HUMID_RULE, id: 'also-humid' });
    await crossSixty(t, clock);
    const [failed] = await tracesOf(t, 'too-bright');
    assert.equal(failed.status, 'error');
    assert.match(failed.error ?? '', /hall-light: .*brightness/);
    assert.equal(failed.steps[0].commands?.[0].status, 'refused');
    assert.equal(failed.steps.length, 1, 'the run stopped at the failed step');
    assert.equal(t.ruleCommands('also-humid').length, 1, 'the other rule ran');
  });
});

describe('automations: rules files', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('a broken file reports file, line and field, and its previous rules keep running', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await writeRuleFile(t, 'humid.yaml', HUMID_RULE);
    assert.deepEqual(
      (await listRules(t)).map((r) => [r.id, r.status, r.file]),
      [['fan-when-humid', 'active', 'humid.yaml']],
    );

    const broken = YAML.stringify({ ...HUMID_RULE, actions: [{ action: 'turn_on', thing: 'garage-fan' }] });
    await writeRuleFile(t, 'humid.yaml', broken);
    const problems = (await (await t.api('/api/automations/problems')).json()) as Array<{
      file: string;
      line: number;
      field: string;
      message: string;
    }>;
    const line = broken.split('\n').findIndex((l) => l.includes('garage-fan')) + 1;
    assert.deepEqual(
      problems.map((p) => [p.file, p.line, p.field]),
      [['humid.yaml', line, 'actions[0].thing']],
    );
    assert.match(problems[0].message, new RegExp(`^humid\\.yaml:${line}: actions\\[0\\]\\.thing: unknown thing`));
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1, 'the previous version still runs');

    await writeRuleFile(t, 'humid.yaml', { ...HUMID_RULE, name: 'Fixed' });
    assert.deepEqual(await (await t.api('/api/automations/problems')).json(), []);
    assert.equal((await listRules(t))[0].name, 'Fixed');
  });

  it('a YAML syntax error is reported with its line', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await writeRuleFile(t, 'bad.yaml', 'id: x\ntriggers:\n  - trigger: state\n   thing: [oops\n');
    const [problem] = (await (await t.api('/api/automations/problems')).json()) as Array<{
      file: string;
      line: number;
      message: string;
    }>;
    assert.equal(problem.file, 'bad.yaml');
    assert.ok(problem.line >= 3 && problem.line <= 5, `line ${problem.line}`);
    assert.match(problem.message, /^bad\.yaml:\d+: YAML: /);
    assert.deepEqual(await listRules(t), [], 'nothing from the broken file is loaded');
  });

  it('the folder watcher loads a file added, reloads it when changed, and unloads it when removed', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, engine: { watch: true, reloadDebounceMs: 50 } });
    hubs.push(t);
    const file = join(t.dataDir, 'automations', 'watched.yaml');
    // The debounce runs on the hub's clock: move it along while waiting for the file system.
    const until = (check: (rules: RuleView[]) => boolean, what: string) =>
      eventually(
        async () => {
          await clock.advance(100);
          return check(await listRules(t));
        },
        { what },
      );

    await writeFile(file, YAML.stringify(HUMID_RULE));
    await until((rules) => rules.some((r) => r.id === 'fan-when-humid' && r.status === 'active'), 'the new file');
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1);

    await writeFile(file, YAML.stringify({ ...HUMID_RULE, name: 'Renamed', enabled: false }));
    await until((rules) => rules[0]?.name === 'Renamed', 'the changed file');
    assert.equal((await listRules(t))[0].status, 'disabled');
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1, 'the disabled version does not run');

    await rm(file);
    await until((rules) => rules.length === 0, 'the removed file');
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1);
  });
});
