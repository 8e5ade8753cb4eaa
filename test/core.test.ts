import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Adapter, AdapterContext } from '../src/adapters/adapter.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import { CommandExpired } from '../src/core/errors.ts';
import type { Command, HubEvent } from '../src/core/events.ts';
import { HistoryWriter } from '../src/core/history.ts';
import { newId } from '../src/core/ids.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import { Watchers } from '../src/core/watchers.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';

/**
 * A device on the other side of an adapter: it applies commands after `delayMs` on the virtual
 * clock and reports its new state, or stays silent when `unplugged`. The hub's real MQTT path is
 * covered end to end elsewhere; here the lifecycle's timing is what is under test.
 */
class LoopbackLight implements Adapter {
  readonly name = 'loopback';
  ctx!: AdapterContext;
  unplugged = false;
  failWith: string | null = null;
  /** Thrown as CommandExpired: the adapter waited out the command's time for its device. */
  outOfReach: string | null = null;
  sent: Command[] = [];
  constructor(private readonly delayMs: number) {}
  async start(ctx: AdapterContext) {
    this.ctx = ctx;
  }
  async stop() {}
  async execute(command: Command) {
    if (this.failWith) throw new Error(this.failWith);
    if (this.outOfReach) throw new CommandExpired(this.outOfReach);
    this.sent.push(command);
    if (this.unplugged) return;
    const on =
      command.action === 'turn_on' ||
      (command.action === 'toggle' && this.ctx.getValue('h1', 'lamp', 'light.on') !== true);
    this.ctx.clock.setTimeout(() => {
      const reports = [{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: on, source: 'loopback' }];
      if (typeof command.input.brightness === 'number') {
        // Devices round on their own scale: 33 % is 84/254, which reads back as 33.07 %.
        const raw = Math.round((command.input.brightness * 254) / 100);
        reports.push({
          householdId: 'h1',
          thing: 'lamp',
          property: 'light.brightness',
          value: (raw * 100) / 254,
          source: 'loopback',
        } as never);
      }
      this.ctx.ingest(reports);
    }, this.delayMs);
  }
}

describe('core: twin, commands, history', () => {
  let clock: VirtualClock;
  let store: Store;
  let bus: LocalBus;
  let core: HubCore;
  let commands: CommandService;
  let history: HistoryWriter;
  let device: LoopbackLight;
  let events: HubEvent[];
  const log = createLogger({ level: 'silent' });

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 5, 1, 8));
    store = await openStore({ kind: 'sqlite', file: ':memory:' });
    bus = new LocalBus();
    events = [];
    bus.subscribe((e) => events.push(e));
    const twins = new TwinRegistry();
    device = new LoopbackLight(100);
    commands = new CommandService({
      clock,
      bus,
      store,
      twins,
      adapters: new Map([[device.name, device]]),
      log,
      defaultTimeoutMs: 5000,
    });
    core = new HubCore({ clock, bus, store, twins, commands, log });
    history = new HistoryWriter({ bus, store, clock, log, flushEveryMs: 200 });
    history.start();
    await device.start(core.contextFor(log));
    await core.upsertThing({
      id: 'lamp',
      householdId: 'h1',
      kind: 'device',
      name: 'Lamp',
      adapter: 'loopback',
      properties: vocabularyProperties(['light.on', 'light.brightness']),
      actions: vocabularyActions('light'),
    });
  });

  afterEach(async () => {
    commands.stop();
    await history.stop();
    await store.close();
  });

  it('turns a report into one state change with from, to and cause, and ignores repeats', () => {
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: true, source: 't', cause: 'why' }]);
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: true, source: 't' }]);
    const changes = events.filter((e) => e.type === 'state');
    assert.equal(changes.length, 1);
    assert.deepEqual(
      { from: changes[0].from, to: changes[0].to, cause: changes[0].cause },
      { from: null, to: true, cause: 'why' },
    );
  });

  it('refuses invalid reports and changes nothing', () => {
    core.ingest([
      { householdId: 'h1', thing: 'lamp', property: 'light.brightness', value: 140, source: 't' },
      { householdId: 'h1', thing: 'lamp', property: 'light.brightness', value: '50', source: 't' },
      { householdId: 'h1', thing: 'lamp', property: 'lock.locked', value: true, source: 't' },
      { householdId: 'h1', thing: 'nope', property: 'light.on', value: true, source: 't' },
      { householdId: 'h2', thing: 'lamp', property: 'light.on', value: true, source: 't' },
    ]);
    assert.equal(events.filter((e) => e.type === 'state').length, 0);
    assert.equal(core.getValue('h1', 'lamp', 'light.brightness'), undefined);
  });

  it('confirms a command when the device reports the requested state, not before', async () => {
    const command = await commands.dispatch({
      householdId: 'h1',
      thing: 'lamp',
      action: 'turn_on',
      input: { brightness: 33 },
      issuedBy: 'test',
    });
    assert.equal(command.status, 'pending');
    await clock.advance(10);
    assert.equal(commands.get(command.id)?.status, 'sent');
    await clock.advance(100);
    await commands.flush();
    const stored = await store.getCommand('h1', command.id);
    assert.equal(stored?.status, 'confirmed');
    const lifecycle = events
      .filter((e) => e.type === 'command')
      .map((e) => (e.type === 'command' ? e.command.status : ''));
    assert.deepEqual(lifecycle, ['pending', 'sent', 'confirmed']);
    const confirmation = events.findLast((e) => e.type === 'command');
    const change = events.find((e) => e.type === 'state' && e.property === 'light.brightness');
    assert.equal(confirmation?.cause, change?.id, 'the confirmation points at the report that proved it');
  });

  it('does not take the twin as it stands for an answer: a device already in the state confirms by its next report', async () => {
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: false, source: 't' }]);
    core.setAvailability('h1', 'lamp', false);
    device.unplugged = true; // offline: it hears nothing and says nothing
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'turn_off', issuedBy: 'test' });
    await clock.advance(1000);
    assert.equal(commands.get(command.id)?.status, 'sent', 'not confirmed by the last report from before it');
    // Back, and answering with its unchanged state: that is the device's own word.
    core.setAvailability('h1', 'lamp', true);
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: false, source: 't' }]);
    await commands.flush();
    assert.equal((await store.getCommand('h1', command.id))?.status, 'confirmed');
  });

  it('a retained report (the broker replaying a state from before) sets the twin but confirms no command', async () => {
    device.unplugged = true;
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'turn_on', issuedBy: 'test' });
    await clock.advance(10);
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: true, source: 't', retained: true }]);
    assert.equal(core.getValue('h1', 'lamp', 'light.on'), true, 'the twin has it');
    assert.equal(commands.get(command.id)?.status, 'sent', 'but it is no answer to the command');
    core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.on', value: true, source: 't' }]);
    assert.equal(commands.get(command.id)?.status, 'confirmed', 'the live report is');
  });

  it("confirms with the thing's own report as cause, when one batch carries several things", async () => {
    await core.upsertThing({
      id: 'fan',
      householdId: 'h1',
      kind: 'device',
      name: 'Fan',
      adapter: 'loopback',
      properties: vocabularyProperties(['switch.on']),
      actions: vocabularyActions('switch'),
    });
    device.unplugged = true;
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'turn_on', issuedBy: 'test' });
    await clock.advance(10);
    core.ingest([
      { householdId: 'h1', thing: 'lamp', property: 'light.on', value: true, source: 't' },
      { householdId: 'h1', thing: 'fan', property: 'switch.on', value: true, source: 't' },
    ]);
    const lampChange = events.findLast((e) => e.type === 'state' && e.thing === 'lamp');
    const confirmation = events.findLast((e) => e.type === 'command' && e.command.status === 'confirmed');
    assert.equal(confirmation?.type === 'command' && confirmation.command.id, command.id);
    assert.equal(confirmation?.cause, lampChange?.id, "the lamp's change, not the fan's");
  });

  it('expires a command the device never confirms', async () => {
    device.unplugged = true;
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'turn_off', issuedBy: 'test' });
    await clock.advance(4999);
    assert.equal(commands.get(command.id)?.status, 'sent');
    await clock.advance(2);
    await commands.flush();
    assert.equal((await store.getCommand('h1', command.id))?.status, 'expired');
  });

  it('fails a command the adapter cannot send, with its reason', async () => {
    device.failWith = 'radio is off';
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'toggle', issuedBy: 'test' });
    await clock.advance(1);
    await commands.flush();
    const stored = await store.getCommand('h1', command.id);
    assert.equal(stored?.status, 'failed');
    assert.equal(stored?.error, 'radio is off');
  });

  it('expires, not fails, a command whose device stayed out of reach until its time ran out', async () => {
    device.outOfReach = 'the lamp stayed out of reach until the command expired';
    const command = await commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'toggle', issuedBy: 'test' });
    await clock.advance(1);
    await commands.flush();
    const stored = await store.getCommand('h1', command.id);
    assert.equal(stored?.status, 'expired');
    assert.equal(stored?.error, device.outOfReach);
  });

  it('refuses unknown things, unknown actions and bad input before anything is stored or sent', async () => {
    await assert.rejects(commands.dispatch({ householdId: 'h1', thing: 'ghost', action: 'turn_on', issuedBy: 't' }), {
      status: 404,
    });
    await assert.rejects(commands.dispatch({ householdId: 'h1', thing: 'lamp', action: 'unlock', issuedBy: 't' }), {
      status: 404,
    });
    await assert.rejects(
      commands.dispatch({
        householdId: 'h1',
        thing: 'lamp',
        action: 'turn_on',
        input: { brightness: 'max' },
        issuedBy: 't',
      }),
      { status: 400, code: 'invalid_input' },
    );
    await assert.rejects(
      commands.dispatch({ householdId: 'h2', thing: 'lamp', action: 'turn_on', issuedBy: 't' }),
      { status: 404 },
      'another household cannot reach the thing',
    );
    assert.equal(device.sent.length, 0);
    assert.equal(events.filter((e) => e.type === 'command').length, 0);
  });

  it('writes history in batches and reloads the twin from the store', async () => {
    for (let i = 0; i <= 10; i++) {
      await clock.advance(1000);
      core.ingest([{ householdId: 'h1', thing: 'lamp', property: 'light.brightness', value: i * 10, source: 't' }]);
    }
    await history.flush();
    const points = await store.queryHistory({ householdId: 'h1', thing: 'lamp', property: 'light.brightness' });
    assert.deepEqual(
      points.map((p) => p.value),
      [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    );
    const twins = new TwinRegistry();
    const reloaded = new HubCore({ clock, bus: new LocalBus(), store, twins, commands, log });
    await reloaded.load();
    assert.equal(reloaded.getValue('h1', 'lamp', 'light.brightness'), 100);
  });

  it('resumes after a restart: expires what ran out, resends what was never sent', async () => {
    device.unplugged = true;
    const late = await commands.dispatch({
      householdId: 'h1',
      thing: 'lamp',
      action: 'turn_on',
      issuedBy: 't',
      timeoutMs: 1000,
    });
    const waiting = await commands.dispatch({
      householdId: 'h1',
      thing: 'lamp',
      action: 'turn_off',
      issuedBy: 't',
      timeoutMs: 60_000,
    });
    await commands.flush();
    commands.stop(); // the hub dies here
    await clock.advance(2000);
    device.unplugged = false;
    const restarted = new CommandService({
      clock,
      bus,
      store,
      twins: new TwinRegistry(),
      adapters: new Map([[device.name, device]]),
      log,
      defaultTimeoutMs: 5000,
    });
    await restarted.resume();
    await restarted.flush();
    assert.equal((await store.getCommand('h1', late.id))?.status, 'expired');
    assert.equal(restarted.get(waiting.id)?.status, 'sent', 'a sent command waits for its confirmation again');
    restarted.stop();
  });

  it('keeps history while the store is down, and drops only a row the store refuses', async () => {
    let down = true;
    const refused = 77;
    const flaky = Object.create(store) as Store;
    flaky.appendHistory = async (rows) => {
      if (down) throw new Error('database is unreachable');
      // As SQLite refuses a row (a CHECK it breaks); the outage above has no code: it passes.
      if (rows.some((r) => r.to === refused))
        throw Object.assign(new Error('row refused'), { code: 'SQLITE_CONSTRAINT_CHECK' });
      return store.appendHistory(rows);
    };
    const change = (i: number, value: number) => ({
      type: 'state' as const,
      id: `evt_test_${i}`,
      householdId: 'h1',
      ts: clock.now() + i,
      thing: 'lamp',
      property: 'light.brightness',
      from: null,
      to: value,
      source: 't',
    });
    const bus = new LocalBus();
    const w = new HistoryWriter({ bus, store: flaky, clock, log, flushEveryMs: 60_000 });
    w.start();
    for (let i = 0; i < 10; i++) bus.publish(change(i, i === 5 ? refused : i));
    await w.flush();
    assert.equal(w.backlog, 10, 'nothing is lost while the store is down');
    down = false;
    for (let attempt = 0; attempt < 3 && w.backlog > 0; attempt++) await w.flush();
    assert.equal(w.backlog, 0);
    const points = await store.queryHistory({ householdId: 'h1', thing: 'lamp', property: 'light.brightness' });
    assert.deepEqual(
      points.map((p) => p.value),
      [0, 1, 2, 3, 4, 6, 7, 8, 9],
    );
    await w.stop();
  });
});

describe('core: watchers (what ends with a revoked token or a removed device)', () => {
  it('calls each callback of a key once when it ends, and forgets callbacks removed before', () => {
    const watchers = new Watchers<string>();
    const calls: string[] = [];
    watchers.add('tok_a', () => calls.push('stream'));
    const removeViss = watchers.add('tok_a', () => calls.push('viss'));
    const removeOther = watchers.add('tok_b', () => calls.push('other'));
    removeViss();
    watchers.end('tok_a');
    watchers.end('tok_a');
    watchers.end('tok_unknown');
    assert.deepEqual(calls, ['stream'], 'the removed one is not called, and ending twice calls nothing more');
    removeOther();
    removeOther();
    assert.equal(watchers.size, 0, 'nothing is left behind once every connection has gone');
  });
});

describe('core: ids', () => {
  it('are unique, sort in the order they were made, and keep their shape across many random refills', () => {
    const start = Date.UTC(2026, 10, 29);
    // 20,000 ids draw the 4 KiB random pool about twenty times; 50 share each millisecond.
    const ids = Array.from({ length: 20_000 }, (_, n) => newId(start + Math.floor(n / 50), 'evt_'));
    for (const id of ids) assert.match(id, /^evt_[0-9a-f]{24}$/);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(ids[0].slice(4, 16), start.toString(16).padStart(12, '0'));
    // The random part is not constant (a pool that was never refilled would repeat it).
    assert.ok(new Set(ids.map((id) => id.slice(-8))).size > 19_000);
  });
});
