import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually, freePort } from '../helpers/hub-process.ts';
import { advance, HOME, MIN, postRule, replayCaptured, startTestHub, type TestHub } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

interface RuleView {
  id: string;
  status: string;
  problem: string | null;
  running: number;
  rule: Record<string, unknown>;
}

async function rules(t: TestHub): Promise<Record<string, RuleView>> {
  const list = (await (await t.api('/api/automations')).json()) as RuleView[];
  return Object.fromEntries(list.map((r) => [r.id, r]));
}

async function problems(t: TestHub): Promise<Array<{ file: string; line: number | null; message: string }>> {
  return (await (await t.api('/api/automations/problems')).json()) as Array<{
    file: string;
    line: number | null;
    message: string;
  }>;
}

describe('automations: rules judged again when things come and go', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('a removed thing makes its rules invalid at once, they come back with it, and other runs go on', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'fan-when-humid',
      triggers: [{ trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.humidity', above: 60 }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    });
    await postRule(t, {
      id: 'slow-light',
      triggers: [{ trigger: 'numeric_state', thing: 'living-room-sensor', property: 'sensor.temperature', above: 25 }],
      actions: [{ delay: '5m' }, { action: 'turn_on', thing: 'hall-light' }],
    });
    const fileText = YAML.stringify({
      id: 'fan-said',
      triggers: [{ trigger: 'state', thing: 'living-room-fan', property: 'switch.on', to: true }],
      actions: [{ action: 'notify', message: 'fan on' }],
    });
    await mkdir(join(t.dataDir, 'automations'), { recursive: true });
    await writeFile(join(t.dataDir, 'automations', 'fan.yaml'), fileText);
    await t.engine.reloadFile('fan.yaml');

    t.set('living-room-sensor', 'sensor.temperature', 20);
    t.set('living-room-sensor', 'sensor.temperature', 26);
    await advance(clock, 1000, 100);
    assert.equal((await rules(t))['slow-light'].running, 1, 'the unaffected rule is in its delay');

    const fan = t.hub.twins.get(HOME, 'living-room-fan')?.thing;
    assert.ok(fan);
    await t.hub.core.removeThing(HOME, 'living-room-fan');
    // The file's rule is located in its file, read from disk: wait for that rather than a clock.
    let view = await eventually(async () => {
      const v = await rules(t);
      return v['fan-said'].status === 'invalid' && v;
    });
    assert.equal(view['fan-when-humid'].status, 'invalid');
    assert.equal(view['fan-when-humid'].problem, 'actions[0].thing: unknown thing "living-room-fan"');
    assert.equal(view['fan-said'].status, 'invalid');
    const line = fileText.split('\n').findIndex((l) => l.includes('living-room-fan')) + 1;
    assert.equal(view['fan-said'].problem, `fan.yaml:${line}: triggers[0].thing: unknown thing "living-room-fan"`);
    assert.deepEqual(
      (await problems(t)).map((p) => [p.file, p.line, p.message]),
      [['fan.yaml', line, `fan.yaml:${line}: triggers[0].thing: unknown thing "living-room-fan"`]],
    );
    assert.equal(view['slow-light'].status, 'active');
    assert.equal(view['slow-light'].running, 1, 'the unaffected rule’s run was not restarted');

    const { createdAt: _c, updatedAt: _u, ...input } = fan;
    await t.home?.ctx.upsertThing(input);
    view = await eventually(async () => {
      const v = await rules(t);
      return v['fan-said'].status === 'active' && v;
    });
    assert.deepEqual(
      [
        view['fan-when-humid'].status,
        view['fan-when-humid'].problem,
        view['fan-said'].status,
        view['fan-said'].problem,
      ],
      ['active', null, 'active', null],
    );
    assert.deepEqual(await problems(t), []);
    t.set('living-room-sensor', 'sensor.humidity', 40);
    t.set('living-room-sensor', 'sensor.humidity', 70);
    await advance(clock, 1000, 100);
    assert.equal(t.ruleCommands('fan-when-humid').length, 1, 'the rule runs again with its thing back');

    await advance(clock, 5 * MIN, 5000);
    assert.equal(t.ruleCommands('slow-light').length, 1, 'the delay started before the removal ended once');
  });
});

describe('automations: replay ends at now, where recorded history does', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });
  const HOURLY = {
    id: 'hourly',
    triggers: [{ trigger: 'cron', pattern: '0 * * * *' }],
    actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
  };

  it('over the API: a future `to` is replayed up to now, said by `until` and `note`; a future `from` is a 400', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await advance(clock, 3 * 60 * MIN, MIN);
    const now = clock.now();
    const post = (from: number, to: number) =>
      t.api('/api/automations/replay', {
        method: 'POST',
        body: JSON.stringify({ rule: HOURLY, from: new Date(from).toISOString(), to: new Date(to).toISOString() }),
      });
    const response = await post(T0, now + 24 * 60 * MIN);
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      runs: Array<{ at: string }>;
      truncated: boolean;
      until?: string;
      note?: string;
    };
    assert.deepEqual(
      body.runs.map((r) => r.at),
      [1, 2, 3].map((h) => new Date(T0 + h * 60 * MIN).toISOString()),
      'the hours up to now, none after',
    );
    assert.equal(body.truncated, false);
    assert.equal(body.until, new Date(now).toISOString());
    assert.match(body.note ?? '', /is in the future; replayed recorded history up to now/);

    const past = (await (await post(T0, now)).json()) as { until?: string; note?: string };
    assert.equal(past.until, undefined, 'a range in the past is replayed as asked');
    assert.equal(past.note, undefined);

    const future = await post(now + MIN, now + 60 * MIN);
    assert.equal(future.status, 400);
    assert.match(((await future.json()) as { error: { message: string } }).error.message, /from .* is in the future/);
  });
});

describe('automations: traces listed as retention keeps them', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  /** `n` runs of a rule that only sends a command, each in a write window of its own. */
  async function runs(t: TestHub, clock: VirtualClock, n: number): Promise<void> {
    await postRule(t, {
      id: 'humid',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    });
    for (let i = 0; i < n; i++) {
      t.set('living-room-sensor', 'sensor.humidity', 40 + i);
      await advance(clock, 1100, 550);
    }
  }

  it('lists all that retention keeps by default (100), not 50', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await runs(t, clock, 60);
    const traces = (await (await t.api('/api/automations/humid/traces')).json()) as unknown[];
    assert.equal(traces.length, 60);
  });

  it('never lists more than retention keeps, though the store prunes later', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, engine: { retention: { perRule: 5 } } });
    hubs.push(t);
    await runs(t, clock, 12);
    const stored = await t.hub.store.listTraces({ householdId: HOME, rule: 'humid', limit: 1000 });
    assert.ok(stored.length > 5, `the store still holds ${stored.length} (pruned lazily)`);
    for (const path of ['/api/automations/humid/traces', '/api/automations/humid/traces?limit=1000']) {
      const traces = (await (await t.api(path)).json()) as Array<{ startedAt: number }>;
      assert.equal(traces.length, 5, path);
      assert.deepEqual(
        traces.map((x) => x.startedAt),
        stored.slice(0, 5).map((x) => x.startedAt),
        'the newest five',
      );
    }
  });
});

describe('automations: a webhook password is never shown', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  it('reads show `***` for it, the stored rule keeps it, and the webhook gets it as Basic auth', async () => {
    const received: Array<string | undefined> = [];
    const server = createServer((request, response) => {
      received.push(request.headers.authorization);
      request.resume();
      request.on('end', () => response.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://alice:s3cret@127.0.0.1:${port}/hook`;
    const created = await t.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({
        id: 'tell',
        triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
        actions: [
          {
            choose: [
              {
                conditions: [{ condition: 'expression', expression: 'true' }],
                sequence: [{ action: 'notify', message: 'hi', webhook: url }],
              },
            ],
          },
        ],
      }),
    });
    const createdText = await created.text();
    assert.equal(created.status, 201, createdText);
    const shown = `http://alice:***@127.0.0.1:${port}/hook`;
    for (const text of [
      createdText,
      await (await t.api('/api/automations')).text(),
      await (await t.api('/api/automations/tell')).text(),
    ]) {
      assert.ok(!text.includes('s3cret'), text);
      assert.ok(text.includes(shown), text);
    }
    const stored = await t.hub.store.listRules();
    assert.ok(JSON.stringify(stored).includes(url), 'the stored rule keeps the password');

    t.set('living-room-sensor', 'sensor.humidity', 50);
    await eventually(() => received.length === 1);
    assert.equal(received[0], `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);

    // Read, edited and sent back whole (as the dashboard's editor does): the password stays.
    const read = (await (await t.api('/api/automations/tell')).json()) as { rule: Record<string, unknown> };
    const edited = await t.api('/api/automations/tell', {
      method: 'PUT',
      body: JSON.stringify({ ...read.rule, name: 'Tell someone' }),
    });
    assert.equal(edited.status, 200, await edited.text());
    const kept = JSON.stringify(await t.hub.store.listRules());
    assert.ok(kept.includes(url) && kept.includes('Tell someone'), kept);
    t.set('living-room-sensor', 'sensor.humidity', 51);
    await eventually(() => received.length === 2);
    assert.equal(received[1], `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
  });

  it('a failed webhook’s error in the trace shows `***` too', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const port = await freePort();
    await postRule(t, {
      id: 'tell',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [{ action: 'notify', message: 'hi', webhook: `http://bob:hunter2@127.0.0.1:${port}/x` }],
    });
    t.set('living-room-sensor', 'sensor.humidity', 50);
    const traces = await eventually(async () => {
      const list = (await (await t.api('/api/automations/tell/traces')).json()) as Array<{ status: string }>;
      return list.length === 1 && list[0].status !== 'running' && list[0].status !== 'waiting' && list;
    });
    const text = JSON.stringify(traces);
    assert.ok(!text.includes('hunter2'), text);
    assert.match(text, /bob:\*\*\*@/);
  });
});

describe('automations: YAML over the API', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });
  const RULE = `id: yaml-rule
triggers:
  - trigger: state
    thing: living-room-sensor
    property: sensor.humidity
actions:
  - action: turn_on
    thing: living-room-fan
`;

  it('accepts application/yaml, application/x-yaml and text/yaml for rules and replay', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    for (const [i, type] of ['application/yaml', 'application/x-yaml', 'text/yaml; charset=utf-8'].entries()) {
      const response = await t.api('/api/automations', {
        method: 'POST',
        headers: { 'content-type': type },
        body: RULE.replace('yaml-rule', `yaml-rule-${i}`),
      });
      assert.equal(response.status, 201, `${type}: ${await response.text()}`);
    }
    const put = await t.api('/api/automations/yaml-rule-0', {
      method: 'PUT',
      headers: { 'content-type': 'application/yaml' },
      body: `${RULE.replace('yaml-rule', 'yaml-rule-0')}name: Renamed\n`,
    });
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal(((await put.json()) as { name: string }).name, 'Renamed');

    await advance(clock, 10 * MIN, MIN);
    const replayText = `from: ${new Date(T0).toISOString()}\nto: ${new Date(T0 + 5 * MIN).toISOString()}\nrule:\n${RULE.replace(/^/gm, '  ')}`;
    const replay = await t.api('/api/automations/replay', {
      method: 'POST',
      headers: { 'content-type': 'text/yaml' },
      body: replayText,
    });
    assert.equal(replay.status, 200, await replay.clone().text());
    assert.deepEqual(((await replay.json()) as { runs: unknown[] }).runs, []);
  });

  it('answers a document of nested aliases (a "billion laughs") with a 400, not a 500', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    // Nine levels of nine aliases each: 9^9 items once expanded.
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const bomb = `${levels.join('\n')}\n`;
    for (const [path, body] of [
      ['/api/automations', bomb],
      ['/api/automations/replay', `${bomb}from: ${new Date(T0).toISOString()}\n`],
    ]) {
      const response = await t.api(path, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body });
      assert.equal(response.status, 400, `${path}: ${await response.clone().text()}`);
      const { error } = (await response.json()) as { error: { message: string } };
      assert.match(error.message, /alias/i);
    }
    assert.equal((await t.api('/api/health')).status, 200);
  });

  it('names the line (and column) of a YAML problem', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    const post = async (body: string) => {
      const response = await t.api('/api/automations', {
        method: 'POST',
        headers: { 'content-type': 'application/yaml' },
        body,
      });
      return {
        status: response.status,
        message: ((await response.json()) as { error: { message: string } }).error.message,
      };
    };
    const syntax = await post('id: x\ntriggers:\n  - trigger: state\n   thing: [oops\n');
    assert.equal(syntax.status, 400);
    assert.match(syntax.message, /^line 4, column \d+: YAML: /);
    const unknown = await post(RULE.replace('thing: living-room-fan', 'thing: living-room-fridge'));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.message, 'line 8, column 12: actions[0].thing: unknown thing "living-room-fridge"');
    const asJsonString = await t.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify(RULE.replace('thing: living-room-fan', 'thing: living-room-fridge')),
    });
    assert.match(((await asJsonString.json()) as { error: { message: string } }).error.message, /^line 8, column 12: /);
    const replay = await t.api('/api/automations/replay', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'from: 2026-01-01T00:00:00Z\nto: [\n',
    });
    assert.equal(replay.status, 400);
    assert.match(
      ((await replay.json()) as { error: { message: string } }).error.message,
      /^line \d+, column \d+: YAML: /,
    );
    const elsewhere = await t.api('/api/things/living-room-fan/actions/turn_on', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'brightness: 3\n',
    });
    assert.equal(elsewhere.status, 415, 'the rest of the API still speaks JSON');
  });
});

describe('automations: `triad replay` problems, one line each', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  const command = (args: Partial<Parameters<typeof replayCaptured>[0]>) => replayCaptured({ file: '', ...args });

  it('a missing rule file, a missing --from, and a future --to', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    await advance(clock, 3 * 60 * MIN, MIN);
    await t.hub.stop();
    const dataDir = t.dataDir;
    const missing = join(dataDir, 'nope.yaml');
    const notFound = await command({
      file: missing,
      data: dataDir,
      from: new Date(T0).toISOString(),
      to: new Date(T0 + MIN).toISOString(),
    });
    assert.equal(notFound.code, 2);
    assert.equal(notFound.stderr, `triad replay: file not found: ${missing}\n`);

    const file = join(dataDir, 'hourly.yaml');
    await writeFile(
      file,
      YAML.stringify({
        id: 'hourly',
        triggers: [{ trigger: 'cron', pattern: '0 * * * *' }],
        actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
      }),
    );
    const noFrom = await command({ file, data: dataDir, to: new Date(T0).toISOString() });
    assert.equal(noFrom.code, 2);
    assert.equal(noFrom.stderr, 'triad replay: --from is required (ISO 8601 times)\n');

    const now = T0 + 3 * 60 * MIN;
    const future = await command({
      file,
      data: dataDir,
      from: new Date(T0).toISOString(),
      to: new Date(now + 86_400_000).toISOString(),
      clock: new VirtualClock(now),
    });
    assert.equal(future.code, 0, future.stderr);
    const result = JSON.parse(future.stdout) as { runs: Array<{ at: string }>; until?: string; note?: string };
    assert.equal(result.runs.length, 3, 'the hours up to now');
    assert.equal(result.until, new Date(now).toISOString());
    assert.match(future.stderr, /^triad replay: to \(.*\) is in the future; replayed recorded history up to now/m);
  });
});
