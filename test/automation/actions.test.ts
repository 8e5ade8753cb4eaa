import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import { eventually } from '../helpers/hub-process.ts';
import { advance, HOME, MIN, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

/** What a run's notify steps said, in order: the easiest way to see which branches it took. */
const said = (trace: Trace) => trace.steps.filter((s) => s.action === 'notify').map((s) => s.detail);

describe('automations: actions', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const h of hubs) await h.hub.stop();
  });

  async function hub(options: Parameters<typeof startTestHub>[0] = {}) {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, ...options });
    hubs.push(t);
    return { t, clock };
  }

  it('choose, if, variables and stop take the branch the values call for', async () => {
    const { t, clock } = await hub();
    await postRule(t, {
      id: 'humidity-sorter',
      mode: 'queued',
      variables: { level: '{{ trigger.to }}' },
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        { variables: { double: '{{ level * 2 }}' } },
        {
          choose: [
            { conditions: ['level >= 80'], sequence: [{ action: 'notify', message: 'very humid {{ double }}' }] },
            { conditions: ['level >= 60'], sequence: [{ action: 'notify', message: 'humid' }] },
          ],
          default: [{ action: 'notify', message: 'dry' }],
        },
        {
          if: ['level < 30'],
          // biome-ignore lint/suspicious/noThenProperty: the rule format's if/then/else; this document is never awaited
          then: [{ stop: 'too dry to go on' }],
          else: [{ action: 'notify', message: 'not too dry' }],
        },
        { action: 'notify', message: 'end' },
      ],
    });
    for (const value of [85, 65, 40, 20]) {
      t.set('living-room-sensor', 'sensor.humidity', value);
      await advance(clock, 1000, 100);
    }
    const runs = await tracesOf(t, 'humidity-sorter');
    assert.deepEqual(runs.map(said), [
      ['very humid 170', 'not too dry', 'end'],
      ['humid', 'not too dry', 'end'],
      ['dry', 'not too dry', 'end'],
      ['dry'],
    ]);
    assert.deepEqual(
      runs.map((r) => r.status),
      ['finished', 'finished', 'finished', 'stopped'],
    );
    const stop = runs[3].steps.find((s) => s.action === 'stop');
    assert.equal(stop?.detail, 'too dry to go on');
    const branch = runs[0].steps.find((s) => s.action === 'choose');
    assert.equal(branch?.detail, 'option 0');
    assert.deepEqual(
      branch?.conditions?.map((c) => c.result),
      [true],
      'the trace shows the condition that chose the branch',
    );
  });

  it('stop with error: true ends the run as an error with the reason', async () => {
    const { t, clock } = await hub();
    await postRule(t, {
      id: 'refuse',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        { stop: 'sensor out of range', error: true },
        { action: 'turn_on', thing: 'living-room-fan' },
      ],
    });
    t.set('living-room-sensor', 'sensor.humidity', 99);
    await advance(clock, 1000, 100);
    const [run] = await tracesOf(t, 'refuse');
    assert.equal(run.status, 'error');
    assert.equal(run.error, 'sensor out of range');
    assert.equal(t.ruleCommands('refuse').length, 0, 'nothing after the stop runs');
  });

  it('repeat: count, while and until each run the right number of rounds with repeat.index', async () => {
    const { t, clock } = await hub();
    await postRule(t, {
      id: 'rounds',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.temperature' }],
      actions: [
        { repeat: { count: 3, sequence: [{ action: 'notify', message: 'count {{ repeat.index }}' }] } },
        { variables: { n: 0 } },
        {
          repeat: {
            while: ['n < 2'],
            sequence: [{ variables: { n: '{{ n + 1 }}' } }, { action: 'notify', message: 'while {{ n }}' }],
          },
        },
        {
          repeat: {
            until: ['n >= 4'],
            sequence: [{ variables: { n: '{{ n + 1 }}' } }, { action: 'notify', message: 'until {{ n }}' }],
          },
        },
        { repeat: { while: ['n > 100'], sequence: [{ action: 'notify', message: 'never' }] } },
      ],
    });
    t.set('living-room-sensor', 'sensor.temperature', 21);
    await advance(clock, 1000, 100);
    const [run] = await tracesOf(t, 'rounds');
    assert.equal(run.status, 'finished');
    assert.deepEqual(said(run), ['count 1', 'count 2', 'count 3', 'while 1', 'while 2', 'until 3', 'until 4']);
  });

  it('wait_for_trigger: goes on when the trigger comes, and times out at exactly its timeout', async () => {
    const { t, clock } = await hub();
    await postRule(t, {
      id: 'wait-for-humidity',
      triggers: [{ trigger: 'zone', thing: 'anna', zone: 'home' }],
      actions: [
        {
          wait_for_trigger: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
          timeout: '5m',
          continue_on_timeout: false,
        },
        { action: 'notify', message: 'humidity now {{ wait.trigger.to }}' },
      ],
    });
    t.set('anna', 'presence.zone', 'work');
    t.set('anna', 'presence.zone', 'home');
    await advance(clock, 2 * MIN);
    t.set('living-room-sensor', 'sensor.humidity', 55);
    await advance(clock, 1000, 100);

    t.set('anna', 'presence.zone', 'work');
    t.set('anna', 'presence.zone', 'home');
    const started = clock.now();
    await advance(clock, 6 * MIN);

    const [answered, unanswered] = await tracesOf(t, 'wait-for-humidity');
    assert.equal(answered.status, 'finished');
    assert.deepEqual(said(answered), ['humidity now 55']);
    assert.equal(answered.steps[0].finishedAt, T0 + 2 * MIN, 'it went on when the humidity changed');

    assert.equal(unanswered.status, 'timeout');
    assert.deepEqual(said(unanswered), [], 'continue_on_timeout: false ends the run');
    assert.equal(unanswered.steps[0].finishedAt, started + 5 * MIN);
    assert.deepEqual(await t.hub.store.listTimers('automations'), [], 'both waits left no timer behind');
  });

  it('scene: sets several things at once with the commands that reach the state', async () => {
    const { t, clock } = await hub();
    await postRule(t, {
      id: 'evening',
      triggers: [{ trigger: 'zone', thing: 'anna', zone: 'home' }],
      actions: [
        {
          action: 'scene',
          scene: {
            'living-room-fan': { 'switch.on': false },
            'hall-light': { 'light.on': true, 'light.brightness': 40 },
          },
        },
      ],
    });
    t.set('living-room-fan', 'switch.on', true);
    t.set('anna', 'presence.zone', 'work');
    t.set('anna', 'presence.zone', 'home');
    await advance(clock, 1000, 10);
    assert.deepEqual(
      t
        .ruleCommands('evening')
        .map((c) => [c.thing, c.action, c.input, c.status])
        .sort(),
      [
        ['hall-light', 'turn_on', { brightness: 40 }, 'confirmed'],
        ['living-room-fan', 'turn_off', {}, 'confirmed'],
      ],
    );
    assert.equal(t.hub.twins.value(HOME, 'hall-light', 'light.brightness'), 40);
    assert.equal(t.hub.twins.value(HOME, 'living-room-fan', 'switch.on'), false);
    const [run] = await tracesOf(t, 'evening');
    assert.deepEqual(
      run.steps[0].commands?.map((c) => c.status),
      ['confirmed', 'confirmed'],
    );
  });
});

describe('automations: notify', () => {
  let server: Server;
  let base = '';
  const received: Array<{ path: string; body: Record<string, unknown> }> = [];
  const hubs: TestHub[] = [];

  before(async () => {
    server = createServer((request, response) => {
      let text = '';
      request.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      request.on('end', () => {
        received.push({ path: request.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
        response.statusCode = request.url === '/broken' ? 500 : 204;
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const h of hubs) await h.hub.stop();
    await new Promise((resolve) => server.close(resolve));
  });

  it('publishes an event on the stream and posts to its webhook, or to the engine’s default one', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, engine: { notifyWebhook: `${base}/default` } });
    hubs.push(t);
    await postRule(t, {
      id: 'tell-someone',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        { action: 'notify', title: 'Humidity', message: 'now {{ trigger.to }} %', webhook: `${base}/explicit` },
        { action: 'notify', message: 'to the default' },
      ],
    });
    t.set('living-room-sensor', 'sensor.humidity', 72);
    const [run] = await eventually(async () => {
      const traces = await tracesOf(t, 'tell-someone');
      return traces[0]?.status === 'finished' && traces;
    });
    const explicit = received.find((r) => r.path === '/explicit');
    assert.equal(explicit?.body.message, 'now 72 %');
    assert.equal(explicit?.body.title, 'Humidity');
    assert.equal(explicit?.body.rule, 'tell-someone');
    assert.equal(explicit?.body.trace, run.id);
    assert.equal(explicit?.body.ts, new Date(T0).toISOString());
    assert.equal(received.find((r) => r.path === '/default')?.body.message, 'to the default');
    const events = t.events.filter((e) => e.type === 'automation.notify');
    assert.deepEqual(
      events.map((e) => ('data' in e ? e.data?.message : undefined)),
      ['now 72 %', 'to the default'],
    );
    const change = t.events.find((e) => e.type === 'state' && e.thing === 'living-room-sensor');
    assert.equal(events[0].cause, change?.id, 'the notification is caused by the state change');
  });

  it('records a webhook that answers with an error as the run’s failure', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'tell-a-broken-receiver',
      triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
      actions: [
        { action: 'notify', message: 'hello', webhook: `${base}/broken` },
        { action: 'turn_on', thing: 'living-room-fan' },
      ],
    });
    t.set('living-room-sensor', 'sensor.humidity', 50);
    const [run] = await eventually(async () => {
      const traces = await tracesOf(t, 'tell-a-broken-receiver');
      return traces[0]?.status === 'error' && traces;
    });
    assert.match(run.error ?? '', /broken: answered 500/);
    assert.equal(t.ruleCommands('tell-a-broken-receiver').length, 0, 'the run stopped at the failed step');
  });
});
