import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { VirtualClock } from '../../src/core/clock.ts';
import { createLogger, type LogLine } from '../../src/core/log.ts';
import { PeopleService } from '../../src/people/index.ts';
import { advance, HOME, MIN, postRule, replayCaptured, startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

interface RuleView {
  id: string;
  status: string;
  mode: string | null;
  warnings: string[];
  rule: Record<string, unknown>;
}

const NOTIFY = [{ action: 'notify', message: 'sun' }];
const GARAGE_MESSAGE = 'garage fan on: {{ state("garage-fan", "switch.on") }}';

interface ErrorBody {
  error: { code: string; message: string };
}

/** A rule whose runs wait a minute, so a second trigger finds the first still running. */
const SLOW_FAN = {
  id: 'slow-fan',
  triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  actions: [{ delay: '1m' }, { action: 'toggle', thing: 'living-room-fan' }],
};

describe('automations: `max` only where it means something', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  for (const mode of ['single', 'restart', undefined]) {
    it(`is refused on a ${mode ?? 'default (single)'} rule created over the API, with a 400 naming max, and nothing is stored`, async () => {
      const t = await startTestHub({ clock: new VirtualClock(T0) });
      hubs.push(t);
      const rule = { ...SLOW_FAN, ...(mode ? { mode } : {}), max: 3 };
      const response = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
      assert.equal(response.status, 400);
      const { error } = (await response.json()) as ErrorBody;
      assert.equal(error.code, 'invalid_rule');
      assert.ok(error.message.startsWith('max: '), error.message);
      assert.match(error.message, /only applies to mode queued and parallel/);
      assert.match(error.message, new RegExp(`mode is ${mode ?? 'single \\(the default\\)'}`));
      assert.deepEqual(await t.hub.store.listRules(HOME), []);
      assert.equal((await t.api('/api/automations/slow-fan')).status, 404);
    });
  }

  it('is refused in a replacement (JSON or YAML, with its line), which changes nothing; queued and parallel keep it', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, SLOW_FAN);
    const json = await t.api('/api/automations/slow-fan', {
      method: 'PUT',
      body: JSON.stringify({ ...SLOW_FAN, mode: 'restart', max: 2 }),
    });
    assert.equal(json.status, 400);
    assert.match(((await json.json()) as ErrorBody).error.message, /^max: only applies to mode queued and parallel/);
    const text = YAML.stringify({ ...SLOW_FAN, max: 2 });
    const yaml = await t.api('/api/automations/slow-fan', {
      method: 'PUT',
      headers: { 'content-type': 'application/yaml' },
      body: text,
    });
    assert.equal(yaml.status, 400);
    const line = text.split('\n').findIndex((l) => l.startsWith('max:')) + 1;
    assert.match(((await yaml.json()) as ErrorBody).error.message, new RegExp(`^line ${line}(, column \\d+)?: max: `));
    const [stored] = await t.hub.store.listRules(HOME);
    assert.deepEqual(stored.body, SLOW_FAN, 'the stored rule is as it was');

    for (const mode of ['queued', 'parallel']) {
      const ok = await t.api('/api/automations/slow-fan', {
        method: 'PUT',
        body: JSON.stringify({ ...SLOW_FAN, mode, max: 2 }),
      });
      assert.equal(ok.status, 200, `${mode} takes max`);
    }
  });

  it('a rule stored or written in a file with it still loads after an upgrade: max ignored, with a warning', async () => {
    const first = await startTestHub({ clock: new VirtualClock(T0) });
    // As an older version stored it, when `max` on a single rule was accepted.
    await first.hub.store.saveRule({
      householdId: HOME,
      id: 'old-single',
      body: { ...SLOW_FAN, id: 'old-single', mode: 'single', max: 5 },
      createdAt: T0,
      updatedAt: T0,
    });
    // A template that reads a thing that is not there rendered as nothing: it loads, with a warning.
    await first.hub.store.saveRule({
      householdId: HOME,
      id: 'old-template',
      body: { ...SLOW_FAN, id: 'old-template', actions: [{ action: 'notify', message: GARAGE_MESSAGE }] },
      createdAt: T0,
      updatedAt: T0,
    });
    await mkdir(join(first.dataDir, 'automations'), { recursive: true });
    await writeFile(
      join(first.dataDir, 'automations', 'restart.yaml'),
      YAML.stringify({ ...SLOW_FAN, id: 'old-restart', mode: 'restart', max: 4 }),
    );
    await first.hub.stop();

    const lines: LogLine[] = [];
    const clock = new VirtualClock(T0 + MIN);
    const t = await startTestHub({
      clock,
      dataDir: first.dataDir,
      log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }),
    });
    hubs.push(t);
    const views = (await (await t.api('/api/automations')).json()) as RuleView[];
    const byId = Object.fromEntries(views.map((v) => [v.id, v]));
    assert.equal(byId['old-single'].status, 'active');
    assert.equal(byId['old-restart'].status, 'active');
    assert.deepEqual(byId['old-single'].warnings, [
      "max: ignored: only applies to mode queued and parallel, and this rule's mode is single",
    ]);
    assert.deepEqual(byId['old-restart'].warnings, [
      "max: ignored: only applies to mode queued and parallel, and this rule's mode is restart",
    ]);
    assert.equal(byId['old-single'].rule.max, 5, 'the rule is shown as it was written');
    assert.equal(byId['old-template'].status, 'active');
    assert.deepEqual(byId['old-template'].warnings, [
      `actions[0].message: state(): unknown thing "garage-fan", in {{ state("garage-fan", "switch.on") }}; it renders as nothing`,
    ]);
    const warned = lines.filter((l) => l.level === 'warn' && /fields that mean nothing/.test(l.message));
    assert.deepEqual(warned.map((l) => l.fields?.rule).sort(), ['old-restart', 'old-single', 'old-template']);
    assert.deepEqual(
      warned.find((l) => l.fields?.rule === 'old-restart')?.fields?.file,
      'restart.yaml',
      'a file rule’s warning names its file',
    );

    // The stored rule runs as a single rule, and can still be switched off and on as it is.
    for (const value of [40, 41]) {
      t.set('living-room-sensor', 'sensor.humidity', value);
      await advance(clock, 1000);
    }
    await advance(clock, 2 * MIN, 5000);
    assert.deepEqual(
      (await tracesOf(t, 'old-single')).map((tr) => tr.status),
      ['finished', 'skipped'],
    );
    assert.equal((await t.api('/api/automations/old-single/disable', { method: 'POST' })).status, 200);
    assert.equal((await t.api('/api/automations/old-single/enable', { method: 'POST' })).status, 200);
  });
});

describe('automations: `max` in a rule file `triad replay` reads', () => {
  it('replays the rule, max ignored, and says so on stderr', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    t.set('living-room-sensor', 'sensor.humidity', 40);
    await advance(clock, MIN);
    t.set('living-room-sensor', 'sensor.humidity', 41);
    await advance(clock, MIN);
    await t.hub.stop();
    const file = join(t.dataDir, 'slow-fan.yaml');
    await writeFile(file, YAML.stringify({ ...SLOW_FAN, max: 3 }));
    const { code, stdout, stderr } = await replayCaptured({
      file,
      data: t.dataDir,
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 2 * MIN).toISOString(),
      clock,
    });
    assert.equal(code, 0, stderr);
    assert.equal(
      stderr,
      `triad replay: ${file}: rule slow-fan: max: ignored: only applies to mode queued and parallel, and this rule's mode is single (the default)\n`,
    );
    assert.ok((JSON.parse(stdout) as { runs: unknown[] }).runs.length > 0);
  });
});

describe('automations: sun triggers and the household’s location', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('without a location, the error says to PUT /api/household; once it is put there, the rule is taken and fires at sunrise', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, subsystems: [new PeopleService()] });
    hubs.push(t);
    const sunrise = { id: 'sunrise', triggers: [{ trigger: 'sun', event: 'sunrise' }], actions: NOTIFY };
    const afterSunset = {
      id: 'after-sunset',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      conditions: [{ condition: 'sun', after: 'sunset' }],
      actions: NOTIFY,
    };
    for (const [rule, field] of [
      [sunrise, 'triggers[0].event'],
      [afterSunset, 'conditions[0].condition'],
    ] as const) {
      const refused = await t.api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
      assert.equal(refused.status, 400);
      const { error } = (await refused.json()) as ErrorBody;
      assert.equal(
        error.message,
        `${field}: needs the household's location, to know when the sun rises and sets there: set it with PUT /api/household {"latitude": …, "longitude": …}`,
      );
    }
    assert.deepEqual(await t.hub.store.listRules(HOME), []);

    // What the message says to do, as the README's "People and presence" does it: Berlin.
    const put = await t.api('/api/household', {
      method: 'PUT',
      body: JSON.stringify({ latitude: 52.52, longitude: 13.405 }),
    });
    assert.equal(put.status, 200);
    await postRule(t, sunrise);
    await postRule(t, afterSunset);
    await advance(clock, 24 * 60 * MIN, 5 * MIN);
    const [fired] = (await tracesOf(t, 'sunrise')).map((tr) => new Date(tr.trigger.ts));
    assert.ok(fired, 'the sunrise rule fired');
    // Berlin's sunrise on 2 June is about 02:45 UTC.
    const minutes = fired.getUTCHours() * 60 + fired.getUTCMinutes();
    assert.equal(fired.getUTCDate(), 2);
    assert.ok(minutes >= 2 * 60 + 30 && minutes <= 3 * 60, `sunrise at ${fired.toISOString()}`);
  });
});

describe('automations: templates that read what is not there', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });
  const base = {
    id: 'templated',
    triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
  };
  const cases = [
    {
      what: 'an unknown thing in a notify message',
      actions: [{ action: 'notify', message: GARAGE_MESSAGE }],
      message: 'actions[0].message: state(): unknown thing "garage-fan", in {{ state("garage-fan", "switch.on") }}',
    },
    {
      what: 'an unknown property in an action’s input',
      actions: [
        {
          action: 'turn_on',
          thing: 'hall-light',
          data: { brightness: "{{ state('living-room-sensor', 'sensor.pressure') }}" },
        },
      ],
      message:
        "actions[0].data.brightness: state(): unknown property \"sensor.pressure\" on living-room-sensor (properties: sensor.temperature, sensor.humidity), in {{ state('living-room-sensor', 'sensor.pressure') }}",
    },
    {
      what: 'a field no trigger brings, in a variable',
      actions: [{ variables: { level: '{{ trigger.too }}' } }],
      message:
        /^actions\[0\]\.variables\.level: trigger has no field "too" \(fields: id, type, cause, ts, thing, property, from, to, /,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.what} at save, naming the field, and stores nothing`, async () => {
      const t = await startTestHub({ clock: new VirtualClock(T0) });
      hubs.push(t);
      const response = await t.api('/api/automations', {
        method: 'POST',
        body: JSON.stringify({ ...base, actions: c.actions }),
      });
      assert.equal(response.status, 400);
      const { error } = (await response.json()) as ErrorBody;
      assert.equal(error.code, 'invalid_rule');
      if (typeof c.message === 'string') assert.equal(error.message, c.message);
      else assert.match(error.message, c.message);
      assert.deepEqual(await t.hub.store.listRules(HOME), []);
    });
  }

  it('at run time, a value that is missing is named in the step’s detail, not left silently empty', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      ...base,
      actions: [
        // Known at save, but nothing has reported the light's brightness yet.
        { variables: { level: "{{ state('hall-light', 'light.brightness') }}" } },
        { action: 'notify', title: 'Light', message: 'light at {{ level }} %, humidity {{ trigger.to }} %' },
        { action: 'turn_on', thing: 'hall-light', data: { brightness: '{{ level }}' } },
      ],
    });
    t.set('living-room-sensor', 'sensor.humidity', 55);
    await advance(clock, 1000);
    const [trace] = await tracesOf(t, 'templated');
    assert.deepEqual(
      trace.steps.map((step) => [step.action, step.detail]),
      [
        ['variables', "no value for {{ state('hall-light', 'light.brightness') }}"],
        ['notify', 'light at  %, humidity 55 % (no value for {{ level }})'],
        ['turn_on', 'no value for {{ level }}'],
      ],
    );

    // With the value there, nothing is said.
    t.set('hall-light', 'light.brightness', 40);
    t.set('living-room-sensor', 'sensor.humidity', 56);
    await advance(clock, 1000);
    const second = (await tracesOf(t, 'templated'))[1];
    assert.deepEqual(
      second.steps.map((step) => [step.action, step.detail]),
      [
        ['variables', undefined],
        ['notify', 'light at 40 %, humidity 56 %'],
        ['turn_on', undefined],
      ],
    );
  });
});
