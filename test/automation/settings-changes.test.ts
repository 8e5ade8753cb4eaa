import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { nextSunTime } from '../../src/automation/time/sun.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { PeopleService } from '../../src/people/index.ts';
import {
  advance,
  crossSixty,
  HOME,
  HUMID_RULE,
  MIN,
  postRule,
  startTestHub,
  type TestHub,
  tracesOf,
  writeRuleFile,
} from './helpers.ts';

/** Midnight UTC on 2 June: Berlin's sunrise is near 02:45 UTC, New York's near 09:25 UTC. */
const T0 = Date.UTC(2026, 5, 2);
const DAY = 24 * 60 * MIN;
const BERLIN = { latitude: 52.52, longitude: 13.405 };
const NEW_YORK = { latitude: 40.71, longitude: -74.0 };

interface RuleView {
  id: string;
  status: string;
  enabled: boolean;
  override: boolean | null;
  file: string | null;
}

async function rules(t: TestHub): Promise<RuleView[]> {
  const response = await t.api('/api/automations');
  assert.equal(response.status, 200);
  return (await response.json()) as RuleView[];
}

async function putLocation(t: TestHub, where: { latitude: number; longitude: number }): Promise<void> {
  const response = await t.api('/api/household', { method: 'PUT', body: JSON.stringify(where) });
  assert.equal(response.status, 200, await response.text());
}

describe('automations: the household’s location set or moved while the hub runs', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('a file’s sun rule, invalid for want of a location, is loaded once PUT /api/household sets it', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, subsystems: [new PeopleService()] });
    hubs.push(t);
    await writeRuleFile(t, 'sun.yaml', {
      id: 'at-sunrise',
      triggers: [{ trigger: 'sun', event: 'sunrise' }],
      actions: [{ action: 'notify', message: 'up' }],
    });
    const before = (await (await t.api('/api/automations/problems')).json()) as Array<{ message: string }>;
    assert.equal(before.length, 1);
    assert.match(before[0].message, /needs the household's location/);

    await putLocation(t, BERLIN);
    // The change is announced, and judged before the rules are read.
    const announced = t.events.filter((e) => e.type === 'household.updated');
    assert.deepEqual(
      announced.map((e) => ('data' in e ? e.data : null)),
      [{ changed: ['latitude', 'longitude'] }],
    );
    assert.deepEqual(await (await t.api('/api/automations/problems')).json(), []);
    assert.deepEqual(
      (await rules(t)).map((r) => [r.id, r.status]),
      [['at-sunrise', 'active']],
    );
    const sunrise = nextSunTime('sunrise', 0, clock.now(), BERLIN);
    await advance(clock, sunrise + 2 * MIN - clock.now(), 30 * MIN);
    const fired = (await tracesOf(t, 'at-sunrise')).map((tr) => tr.trigger.ts);
    assert.deepEqual(fired, [sunrise]);
  });

  it('a sun trigger moves to the new location’s sunrise at once, without saving the rule', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, subsystems: [new PeopleService()] });
    hubs.push(t);
    await putLocation(t, BERLIN);
    await postRule(t, {
      id: 'at-sunrise',
      triggers: [{ trigger: 'sun', event: 'sunrise' }],
      actions: [{ action: 'notify', message: 'up' }],
    });
    await advance(clock, 10 * MIN, MIN);
    await putLocation(t, NEW_YORK);
    const moved = clock.now();
    const berlin = nextSunTime('sunrise', 0, moved, BERLIN);
    const newYork = nextSunTime('sunrise', 0, moved, NEW_YORK);
    assert.ok(newYork - berlin > 60 * MIN, 'Berlin’s sunrise comes hours before New York’s');
    await advance(clock, newYork + 2 * MIN - clock.now(), 30 * MIN);
    const fired = (await tracesOf(t, 'at-sunrise')).map((tr) => new Date(tr.trigger.ts).toISOString());
    assert.equal(fired[0], new Date(newYork).toISOString(), `fired at ${fired.join(', ')}`);
    assert.ok(!fired.includes(new Date(berlin).toISOString()), 'not at Berlin’s sunrise');
  });

  it('no run can wait on a sun trigger: a wait_for_trigger on sunset is refused, over the API and in a file', async () => {
    // So no waiting run holds a sunset worked out for where the household was before it moved:
    // only a rule's own sun triggers come at sun times, and those are armed again on a move.
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, subsystems: [new PeopleService()] });
    hubs.push(t);
    await putLocation(t, BERLIN);
    const rule = {
      id: 'wait-for-sunset',
      triggers: HUMID_RULE.triggers,
      actions: [
        { wait_for_trigger: [{ trigger: 'sun', event: 'sunset' }], timeout: '20h' },
        { action: 'turn_on', thing: 'living-room-fan' },
      ],
    };
    const response = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
    assert.equal(response.status, 400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'invalid_rule');
    assert.match(error.message, /^actions\[0\]\.wait_for_trigger\[0\]\.trigger: a wait cannot use a sun trigger/);

    await writeRuleFile(t, 'wait.yaml', rule);
    const problems = (await (await t.api('/api/automations/problems')).json()) as Array<{ message: string }>;
    assert.equal(problems.length, 1);
    assert.match(problems[0].message, /a wait cannot use a sun trigger/);
    assert.deepEqual(await rules(t), []);
  });
});

describe('automations: switching a rule from a file on and off over the API', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('the switch is stored: it holds through reloads of the file and a restart, and only the switch is taken', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await writeRuleFile(t, 'humid.yaml', HUMID_RULE);

    const off = await t.api('/api/automations/fan-when-humid', {
      method: 'PUT',
      body: JSON.stringify({ enabled: false }),
    });
    assert.equal(off.status, 200, await off.clone().text());
    const view = (await off.json()) as RuleView;
    assert.deepEqual([view.status, view.enabled, view.override, view.file], ['disabled', false, false, 'humid.yaml']);
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 0, 'switched off, it does not run');

    // On again (what the file says): the switch is dropped, and the rule runs.
    const on = await t.api('/api/automations/fan-when-humid/enable', { method: 'POST' });
    assert.equal(on.status, 200);
    assert.deepEqual(
      (await rules(t)).map((r) => [r.id, r.status, r.override]),
      [['fan-when-humid', 'active', null]],
    );
    assert.deepEqual(await t.hub.store.listRules(HOME), []);
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1);

    assert.equal((await t.api('/api/automations/fan-when-humid/disable', { method: 'POST' })).status, 200);
    assert.deepEqual(
      (await t.hub.store.listRules(HOME)).map((r) => [r.id, r.body.enabled]),
      [['file-switch:fan-when-humid', false]],
    );
    // The file edited and read again: the switch still holds.
    await writeRuleFile(t, 'humid.yaml', { ...HUMID_RULE, name: 'Renamed' });
    assert.deepEqual(
      (await rules(t)).map((r) => [r.id, r.status, r.override]),
      [['fan-when-humid', 'disabled', false]],
    );
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1, 'still off after the reload');

    // Anything but the switch is the file's to say.
    for (const [method, body, status] of [
      ['PUT', JSON.stringify({ ...HUMID_RULE, name: 'Edited' }), 409],
      ['PUT', JSON.stringify({ enabled: false, name: 'Edited' }), 409],
      ['DELETE', undefined, 409],
      ['PUT', JSON.stringify({ enabled: 'no' }), 400],
    ] as const) {
      const refused = await t.api('/api/automations/fan-when-humid', { method, body });
      assert.equal(refused.status, status, `${method} ${body}`);
      if (status === 409) {
        const { error } = (await refused.json()) as { error: { code: string; message: string } };
        assert.equal(error.code, 'defined_in_file');
        assert.match(error.message, /comes from humid\.yaml; edit that file instead/);
      }
    }

    // A restart: the switch is read back with the file, and is no rule of its own.
    await t.hub.stop();
    hubs.splice(hubs.indexOf(t), 1);
    const clock2 = new VirtualClock(T0 + DAY);
    const second = await startTestHub({ clock: clock2, dataDir: t.dataDir });
    hubs.push(second);
    assert.deepEqual(
      (await rules(second)).map((r) => [r.id, r.status, r.enabled, r.override]),
      [['fan-when-humid', 'disabled', false, false]],
    );
    await crossSixty(second, clock2);
    assert.equal(second.ruleCommands('fan-when-humid').length, 0, 'still off after a restart');
    assert.equal((await second.api('/api/automations/fan-when-humid/enable', { method: 'POST' })).status, 200);
    await crossSixty(second, clock2);
    assert.equal(second.ruleCommands('fan-when-humid').length, 1);
  });
});

describe('automations: the switch of a rule from a file goes with the rule', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  async function switchOff(t: TestHub, id: string): Promise<void> {
    assert.equal((await t.api(`/api/automations/${id}/disable`, { method: 'POST' })).status, 200);
    assert.deepEqual(
      (await t.hub.store.listRules(HOME)).map((r) => [r.id, r.body.enabled]),
      [[`file-switch:${id}`, false]],
    );
  }

  async function removeRuleFile(t: TestHub, name: string): Promise<void> {
    await rm(join(t.dataDir, 'automations', name));
    await t.engine.reloadFile(name);
  }

  it('its file deleted, the switch is dropped: a file added later with that id starts as it says', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await writeRuleFile(t, 'humid.yaml', HUMID_RULE);
    await switchOff(t, 'fan-when-humid');

    await removeRuleFile(t, 'humid.yaml');
    assert.deepEqual(await rules(t), []);
    assert.deepEqual(await t.hub.store.listRules(HOME), [], 'no switch left behind');

    await writeRuleFile(t, 'new.yaml', { ...HUMID_RULE, name: 'A new rule' });
    assert.deepEqual(
      (await rules(t)).map((r) => [r.id, r.status, r.override, r.file]),
      [['fan-when-humid', 'active', null, 'new.yaml']],
    );
    await crossSixty(t, clock);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1, 'the new rule runs');
  });

  it('the rule taken out of a file that stays, the switch is dropped; the file’s other rules keep theirs', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const other = { ...HUMID_RULE, id: 'other-humid' };
    await writeRuleFile(t, 'humid.yaml', `${YAML.stringify(HUMID_RULE)}---\n${YAML.stringify(other)}`);
    assert.equal((await t.api('/api/automations/other-humid/disable', { method: 'POST' })).status, 200);
    assert.equal((await t.api('/api/automations/fan-when-humid/disable', { method: 'POST' })).status, 200);
    assert.deepEqual((await t.hub.store.listRules(HOME)).map((r) => r.id).sort(), [
      'file-switch:fan-when-humid',
      'file-switch:other-humid',
    ]);

    await writeRuleFile(t, 'humid.yaml', other);
    assert.deepEqual(
      (await t.hub.store.listRules(HOME)).map((r) => r.id),
      ['file-switch:other-humid'],
    );
    assert.deepEqual(
      (await rules(t)).map((r) => [r.id, r.status, r.override]),
      [['other-humid', 'disabled', false]],
    );

    await writeRuleFile(t, 'humid.yaml', `${YAML.stringify(HUMID_RULE)}---\n${YAML.stringify(other)}`);
    assert.deepEqual(
      (await rules(t)).map((r) => [r.id, r.status, r.override]),
      [
        ['fan-when-humid', 'active', null],
        ['other-humid', 'disabled', false],
      ],
    );
  });

  it('a file deleted while the hub was down: its switch is dropped at start; a broken file keeps its rules’ switches', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await writeRuleFile(t, 'humid.yaml', HUMID_RULE);
    await writeRuleFile(t, 'other.yaml', { ...HUMID_RULE, id: 'other-humid' });
    assert.equal((await t.api('/api/automations/fan-when-humid/disable', { method: 'POST' })).status, 200);
    assert.equal((await t.api('/api/automations/other-humid/disable', { method: 'POST' })).status, 200);
    await t.hub.stop();
    hubs.splice(hubs.indexOf(t), 1);

    // Down: humid.yaml is deleted, other.yaml gets a typo.
    await rm(join(t.dataDir, 'automations', 'humid.yaml'));
    await writeFile(join(t.dataDir, 'automations', 'other.yaml'), 'id: other-humid\ntriggers: [oops\n');
    const clock2 = new VirtualClock(T0 + DAY);
    const second = await startTestHub({ clock: clock2, dataDir: t.dataDir });
    hubs.push(second);
    assert.deepEqual(
      (await second.hub.store.listRules(HOME)).map((r) => r.id),
      ['file-switch:other-humid'],
      'the deleted file’s switch is gone; the broken file’s stays',
    );

    // The typo fixed: still switched off. A new humid.yaml: on, as it says.
    await writeRuleFile(second, 'other.yaml', { ...HUMID_RULE, id: 'other-humid' });
    await writeRuleFile(second, 'humid.yaml', HUMID_RULE);
    assert.deepEqual(
      (await rules(second)).map((r) => [r.id, r.status, r.override]),
      [
        ['fan-when-humid', 'active', null],
        ['other-humid', 'disabled', false],
      ],
    );
    await crossSixty(second, clock2);
    assert.equal(second.ruleCommands('fan-when-humid').length, 1);
    assert.equal(second.ruleCommands('other-humid').length, 0);
  });
});
