import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Adapter, AdapterContext } from '../../src/adapters/adapter.ts';
import type { Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import type { Command } from '../../src/core/events.ts';
import type { HubServices, Subsystem } from '../../src/core/hub.ts';
import { vocabularyActions, vocabularyProperties } from '../../src/model/thing.ts';
import { advance, HOME, MIN, postRule, startTestHub, type TestHub } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();
/** Runs across rules after which a test's engine is stopped: a loop nobody stopped. */
const RUNAWAY = 500;

/**
 * A coffee machine that takes its commands and never answers, as the demo's did for the reviewer:
 * every command to it stays open until it expires (the test hub's timeout is a minute).
 */
class SilentCoffeeMachine implements Adapter, Subsystem {
  readonly name = 'silent-coffee';
  readonly sent: Command[] = [];

  async start(target: AdapterContext | HubServices): Promise<void> {
    if ('addAdapter' in target) {
      await target.addAdapter(this);
      return;
    }
    await target.upsertThing({
      householdId: HOME,
      kind: 'device',
      adapter: this.name,
      id: 'coffee-machine',
      name: 'Coffee machine',
      properties: vocabularyProperties(['switch.on']),
      actions: vocabularyActions('switch'),
    });
  }

  async stop(): Promise<void> {}

  async execute(command: Command): Promise<void> {
    this.sent.push(command);
  }
}

async function withHub(test: (t: TestHub, clock: VirtualClock, coffee: SilentCoffeeMachine) => Promise<void>) {
  const clock = new VirtualClock(T0);
  const coffee = new SilentCoffeeMachine();
  const t = await startTestHub({ clock, subsystems: [coffee] });
  // A loop that is not stopped runs at the processor's pace and starves the test too: past far
  // more runs than any of these tests expects, the engine is stopped and the assertions tell.
  let runs = 0;
  t.hub.bus.subscribe((event) => {
    if (event.type === 'automation.run' && ++runs === RUNAWAY) void t.engine.stop();
  });
  try {
    await test(t, clock, coffee);
  } finally {
    await t.hub.stop();
  }
}

/** A rule's traces, oldest first, by their status. */
async function statuses(t: TestHub, rule: string): Promise<string[]> {
  return (await t.engine.traces(HOME, rule)).reverse().map((trace) => trace.status);
}

describe('automations: rules that react to what rules do do not loop', () => {
  it("a rule on command events is not triggered by its own commands' events", async () => {
    await withHub(async (t, clock, coffee) => {
      await postRule(t, {
        id: 't7',
        triggers: [{ trigger: 'event', event_type: 'command' }],
        actions: [{ action: 'toggle', thing: 'coffee-machine' }],
      });
      const asked = await t.api('/api/things/hall-light/actions/turn_on', { method: 'POST', body: '{}' });
      assert.equal(asked.status, 202, await asked.clone().text());
      const { commandId } = (await asked.json()) as { commandId: string };
      // Past the coffee machine's commands' expiry: each ends `expired`, another event of t7's own.
      await advance(clock, 2 * MIN, 500);
      const health = await t.api('/api/health');
      assert.equal(health.status, 200, 'the hub still answers');

      // One run per event of the person's command (pending, sent, confirmed), none for t7's own.
      const personal = t.events.filter((e) => e.type === 'command' && e.command.id === commandId);
      assert.deepEqual(
        personal.map((e) => (e.type === 'command' ? e.command.status : null)),
        ['pending', 'sent', 'confirmed'],
      );
      assert.equal(coffee.sent.length, personal.length, 'one coffee-machine command per run');
      assert.deepEqual(await statuses(t, 't7'), ['finished', 'finished', 'finished']);
      const own = t.ruleCommands('t7');
      assert.equal(own.length, 3);
      assert.ok(
        own.every((c) => c.status === 'expired'),
        "t7's commands expired, and their events started nothing",
      );

      // A rule's own commands are in its traces, not one audit line each, failures included.
      await t.hub.commands.flush();
      const audit = (await (await t.api('/api/audit?limit=1000')).json()) as Array<{
        actor: { id: string };
        result: string;
      }>;
      assert.deepEqual(
        audit.filter((line) => line.actor.id === 'rule:t7'),
        [],
        "t7's expired commands are not in the audit trail",
      );
    });
  });

  it("two rules that answer each other's commands stop when the chain comes back a second time", async () => {
    await withHub(async (t, clock) => {
      const confirmed = (thing: string) => ({
        trigger: 'event',
        event_type: 'command',
        data: { thing, status: 'confirmed' },
      });
      await postRule(t, {
        id: 'fan-follows-light',
        triggers: [confirmed('hall-light')],
        actions: [{ action: 'toggle', thing: 'living-room-fan' }],
      });
      await postRule(t, {
        id: 'light-follows-fan',
        triggers: [confirmed('living-room-fan')],
        actions: [{ action: 'toggle', thing: 'hall-light' }],
      });
      const asked = await t.api('/api/things/hall-light/actions/turn_on', { method: 'POST', body: '{}' });
      assert.equal(asked.status, 202);
      // Each device confirms 10 ms after a command: a loop would go round every 20 ms.
      await advance(clock, 5000, 100);
      assert.equal((await t.api('/api/health')).status, 200);

      // fan-follows-light, light-follows-fan, fan-follows-light again (its one return),
      // light-follows-fan again, and then fan-follows-light a third time: stopped.
      assert.deepEqual(await statuses(t, 'fan-follows-light'), ['finished', 'finished', 'skipped']);
      assert.deepEqual(await statuses(t, 'light-follows-fan'), ['finished', 'finished']);
      const stopped = (await t.engine.traces(HOME, 'fan-follows-light'))[0] as Trace;
      assert.match(
        stopped.error ?? '',
        /loop of rules .*\(fan-follows-light → light-follows-fan → fan-follows-light → light-follows-fan → fan-follows-light\)/,
      );
      assert.equal(t.ruleCommands('fan-follows-light').length + t.ruleCommands('light-follows-fan').length, 4);
    });
  });

  it('two rules on every command event stop, however their commands end, and leave none open', async () => {
    await withHub(async (t, clock) => {
      // Each run's command brings three events that start the other rule; the coffee machine's
      // expire a minute later and start it again: the reviewer's loop, through two rules.
      await postRule(t, {
        id: 'fan-on-any-command',
        triggers: [{ trigger: 'event', event_type: 'command' }],
        actions: [{ action: 'toggle', thing: 'living-room-fan' }],
      });
      await postRule(t, {
        id: 'coffee-on-any-command',
        triggers: [{ trigger: 'event', event_type: 'command' }],
        actions: [{ action: 'toggle', thing: 'coffee-machine' }],
      });
      assert.equal((await t.api('/api/things/hall-light/actions/turn_on', { method: 'POST', body: '{}' })).status, 202);
      const runs = () => t.events.filter((e) => e.type === 'automation.run').length;
      await advance(clock, 3 * MIN, 1000);
      const after3 = runs();
      await advance(clock, 3 * MIN, 1000);
      assert.equal(runs(), after3, 'no run after the loop was stopped');
      assert.ok(after3 < RUNAWAY, `${after3} runs`);
      const commands = [...t.ruleCommands('fan-on-any-command'), ...t.ruleCommands('coffee-on-any-command')];
      assert.equal(commands.length, after3, 'one command per run');
      assert.deepEqual(
        commands.filter((c) => c.status === 'pending' || c.status === 'sent'),
        [],
        'no command left open',
      );
      assert.equal((await t.api('/api/health')).status, 200);
    });
  });

  it('two rules that answer each other through the states their commands change stop as well', async () => {
    await withHub(async (t, clock) => {
      await postRule(t, {
        id: 'fan-with-light',
        triggers: [{ trigger: 'state', thing: 'hall-light', property: 'light.on' }],
        actions: [{ action: 'toggle', thing: 'living-room-fan' }],
      });
      await postRule(t, {
        id: 'light-with-fan',
        triggers: [{ trigger: 'state', thing: 'living-room-fan', property: 'switch.on' }],
        actions: [{ action: 'toggle', thing: 'hall-light' }],
      });
      // A person at the switch: a report, not any rule's doing.
      t.set('hall-light', 'light.on', true);
      await advance(clock, 5000, 100);
      assert.deepEqual(await statuses(t, 'fan-with-light'), ['finished', 'finished', 'skipped']);
      assert.deepEqual(await statuses(t, 'light-with-fan'), ['finished', 'finished']);

      // The rule is not held back afterwards: the next report starts a chain of its own.
      const light = t.hub.twins.value(HOME, 'hall-light', 'light.on');
      t.set('hall-light', 'light.on', !light);
      await advance(clock, 5000, 100);
      assert.deepEqual(await statuses(t, 'fan-with-light'), [
        'finished',
        'finished',
        'skipped',
        'finished',
        'finished',
        'skipped',
      ]);
    });
  });
});
