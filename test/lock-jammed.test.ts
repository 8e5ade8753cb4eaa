import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { Adapter, AdapterContext } from '../src/adapters/adapter.ts';
import { AutomationEngine, type Trace } from '../src/automation/index.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import type { Command, HubEvent } from '../src/core/events.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

const JAMMED = 'the lock reports it is jammed';

/** A lock's adapter that only records what it is told: the tests speak for the lock. */
class SilentLock implements Adapter {
  readonly name = 'silent-lock';
  sent: Command[] = [];
  async start(_ctx: AdapterContext) {}
  async stop() {}
  async execute(command: Command) {
    this.sent.push(command);
  }
}

describe('a command to a lock that reports it is jammed', () => {
  let clock: VirtualClock;
  let store: Store;
  let bus: LocalBus;
  let twins: TwinRegistry;
  let core: HubCore;
  let commands: CommandService;
  let lock: SilentLock;
  let events: HubEvent[];
  const log = createLogger({ level: 'silent' });

  const report = (property: string, value: unknown) =>
    core.ingest([{ householdId: 'h1', thing: 'door', property, value, source: 'lock' }]);
  const send = (action: string) =>
    commands.dispatch({ householdId: 'h1', thing: 'door', action, issuedBy: 'test', timeoutMs: 30_000 });
  const statusOf = (id: string) => commands.get(id)?.status;

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 5, 1, 8));
    store = await openStore({ kind: 'sqlite', file: ':memory:' });
    bus = new LocalBus();
    events = [];
    bus.subscribe((e) => events.push(e));
    twins = new TwinRegistry();
    lock = new SilentLock();
    commands = new CommandService({
      clock,
      bus,
      store,
      twins,
      adapters: new Map([[lock.name, lock]]),
      log,
      defaultTimeoutMs: 30_000,
    });
    core = new HubCore({ clock, bus, store, twins, commands, log });
    await core.upsertThing({
      id: 'door',
      householdId: 'h1',
      kind: 'device',
      name: 'Front door',
      adapter: lock.name,
      properties: vocabularyProperties(['lock.locked', 'lock.jammed']),
      actions: vocabularyActions('lock'),
    });
    report('lock.locked', false);
    report('lock.jammed', false);
    await clock.advance(1000);
  });

  afterEach(async () => {
    commands.stop();
    await store.close();
  });

  it('fails at once with the reason, stored and announced like any end', async () => {
    const command = await send('lock');
    await clock.advance(1);
    assert.equal(statusOf(command.id), 'sent');
    report('lock.jammed', true);
    assert.equal(statusOf(command.id), 'failed', 'no waiting for the timeout');
    assert.equal(commands.get(command.id)?.error, JAMMED);
    await commands.flush();
    const stored = await store.getCommand('h1', command.id);
    assert.equal(stored?.status, 'failed');
    assert.equal(stored?.error, JAMMED);
    assert.deepEqual(
      stored?.log?.map((step) => step.status),
      ['pending', 'sent', 'failed'],
    );
    const announced = events.filter((e) => e.type === 'command' && e.command.id === command.id);
    const last = announced.at(-1);
    assert.ok(last?.type === 'command');
    assert.deepEqual([last.command.status, last.command.error], ['failed', JAMMED]);
    const jam = events.find((e) => e.type === 'state' && e.property === 'lock.jammed' && e.to === true);
    assert.equal(last.cause, jam?.id, 'the jam report is what failed it');
    // Nothing is left to expire it later.
    await clock.advance(60_000);
    assert.equal((await store.getCommand('h1', command.id))?.status, 'failed');
  });

  it('fails an unlock too, and a lock whose last word was already "locked"', async () => {
    const unlock = await send('unlock');
    await clock.advance(1);
    report('lock.jammed', true);
    assert.equal(commands.get(unlock.id)?.error, JAMMED);

    // Locked, then told to lock again: a jam keeps lock.locked true, which must not confirm it.
    report('lock.locked', true);
    report('lock.jammed', false);
    await clock.advance(1000);
    const relock = await send('lock');
    await clock.advance(1);
    report('lock.jammed', true);
    assert.equal(statusOf(relock.id), 'failed');
    assert.equal(commands.get(relock.id)?.error, JAMMED);
  });

  it('is not failed by a report of jammed = false, nor by a jam reported before it was sent', async () => {
    report('lock.jammed', true);
    await clock.advance(1000);
    const command = await send('lock');
    await clock.advance(1);
    // A report that says nothing new about the jam: the twin's jammed = true is from before.
    report('lock.locked', false);
    assert.equal(statusOf(command.id), 'sent');
    report('lock.jammed', false);
    assert.equal(statusOf(command.id), 'sent');
    report('lock.locked', true);
    assert.equal(statusOf(command.id), 'confirmed');
    await commands.flush();
    assert.equal((await store.getCommand('h1', command.id))?.status, 'confirmed');
  });

  it('fails when the lock, jammed before, says it is still jammed after the command', async () => {
    report('lock.jammed', true);
    await clock.advance(1000);
    const command = await send('unlock');
    await clock.advance(1);
    assert.equal(statusOf(command.id), 'sent');
    report('lock.jammed', true);
    assert.equal(statusOf(command.id), 'failed');
  });

  it("fails a rule's command, sent before it is stored", async () => {
    const command = commands.dispatchNow({ householdId: 'h1', thing: 'door', action: 'lock', issuedBy: 'rule:night' });
    await clock.advance(1);
    report('lock.jammed', true);
    assert.equal(statusOf(command.id), 'failed');
    await commands.flush();
    assert.equal((await store.getCommand('h1', command.id))?.error, JAMMED);
  });

  it('fails a command sent before a restart when the lock reports the jam after it', async () => {
    const command = await send('lock');
    await clock.advance(1);
    await commands.flush();
    commands.stop(); // the hub dies here
    await clock.advance(2000);
    const restarted = new CommandService({
      clock,
      bus,
      store,
      twins,
      adapters: new Map([[lock.name, lock]]),
      log,
      defaultTimeoutMs: 30_000,
    });
    await restarted.resume();
    assert.equal(restarted.get(command.id)?.status, 'sent');
    const reloaded = new HubCore({ clock, bus, store, twins, commands: restarted, log });
    reloaded.ingest([{ householdId: 'h1', thing: 'door', property: 'lock.jammed', value: true, source: 'lock' }]);
    assert.equal(restarted.get(command.id)?.status, 'failed');
    await restarted.flush();
    assert.equal((await store.getCommand('h1', command.id))?.error, JAMMED);
    restarted.stop();
  });

  it('leaves actions without failure reports alone', async () => {
    await core.upsertThing({
      id: 'lamp',
      householdId: 'h1',
      kind: 'device',
      name: 'Lamp',
      adapter: lock.name,
      properties: vocabularyProperties(['switch.on']),
      actions: vocabularyActions('switch'),
    });
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'turn_on', issuedBy: 't' });
    await clock.advance(1);
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'switch.on', value: false, source: 'lamp' }]);
    assert.equal(statusOf(command.id), 'sent');
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'switch.on', value: true, source: 'lamp' }]);
    assert.equal(statusOf(command.id), 'confirmed');
  });
});

/**
 * End to end: a Home Assistant MQTT lock on the hub's embedded broker that answers LOCK with its
 * `state_jammed` payload. The clock is virtual and never reaches the command's timeout, so a
 * command that ends does so because of the lock's report.
 */
describe('an MQTT lock that jams', () => {
  const clock = new VirtualClock(Date.UTC(2026, 5, 1, 20));
  let hub: Hub;
  let device: MqttClient;
  let lockId = '';
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(hub.httpUrl + path, {
      ...init,
      headers: {
        authorization: `Bearer ${hub.ownerToken}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1', allowAnonymous: true },
      clock,
      log: createLogger({ level: 'silent' }),
    }).use(new AutomationEngine());
    await hub.start();
    device = await mqtt.connectAsync(hub.mqttUrl, { clientId: `lock-${randomBytes(4).toString('hex')}` });
    await device.subscribeAsync('front/lock/set');
    device.on('message', (topic) => {
      // The bolt sticks whichever way it is told to go.
      if (topic === 'front/lock/set') void device.publishAsync('front/lock', 'stuck');
    });
    await device.publishAsync(
      'homeassistant/lock/front/config',
      JSON.stringify({
        name: 'Front door',
        unique_id: 'front-door-lock',
        command_topic: 'front/lock/set',
        state_topic: 'front/lock',
        state_jammed: 'stuck',
      }),
    );
    lockId = await eventually(
      () => hub.twins.list(hub.householdId).find((twin) => twin.thing.properties['lock.jammed'])?.thing.id,
      { what: 'the lock, discovered' },
    );
    await device.publishAsync('front/lock', 'UNLOCKED');
    await eventually(() => hub.core.getValue(hub.householdId, lockId, 'lock.locked') === false, {
      what: 'the lock unlocked',
    });
    await hub.core.upsertThing({
      householdId: hub.householdId,
      kind: 'device',
      adapter: 'core',
      id: 'night-button',
      name: 'Night button',
      properties: vocabularyProperties(['switch.on']),
      actions: {},
    });
  });

  after(async () => {
    await device?.endAsync();
    await hub?.stop();
  });

  it('fails the API command with the reason, without waiting for its timeout', async () => {
    const sent = await api(`/api/things/${lockId}/actions/lock`, { method: 'POST' });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const command = await eventually(
      async () => {
        const { body } = await api(`/api/commands/${sent.body.commandId}`);
        return body.status === 'sent' || body.status === 'pending' ? null : body;
      },
      { what: 'the command to end' },
    );
    assert.equal(command.status, 'failed', JSON.stringify(command));
    assert.equal(command.error, JAMMED);
    assert.equal(hub.core.getValue(hub.householdId, lockId, 'lock.jammed'), true);
    await hub.commands.flush();
    const stored = await hub.store.getCommand(hub.householdId, sent.body.commandId as string);
    assert.deepEqual([stored?.status, stored?.error], ['failed', JAMMED]);
  });

  it("shows a rule's jammed lock command as failed in its trace", async () => {
    const rule = {
      id: 'lock-at-night',
      name: 'Lock the front door at night',
      triggers: [{ trigger: 'state', thing: 'night-button', property: 'switch.on', to: true }],
      actions: [{ action: 'lock', thing: lockId }],
    };
    const created = await api('/api/automations', { method: 'POST', body: JSON.stringify(rule) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    hub.core.ingest([
      { householdId: hub.householdId, thing: 'night-button', property: 'switch.on', value: true, source: 'test' },
    ]);
    const record = await eventually(
      async () => {
        const res = await fetch(`${hub.httpUrl}/api/automations/${rule.id}/traces`, {
          headers: { authorization: `Bearer ${hub.ownerToken}` },
        });
        const traces = (await res.json()) as Trace[];
        const commands = traces.flatMap((trace) => trace.steps.flatMap((step) => step.commands ?? []));
        return commands.find((c) => c.status !== 'pending' && c.status !== 'sent');
      },
      { what: "the rule's command to end in its trace" },
    );
    assert.deepEqual([record.status, record.error], ['failed', JAMMED]);
  });
});
