import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Adapter } from '../src/adapters/adapter.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import type { Command, HubEvent, Report } from '../src/core/events.ts';
import { HistoryWriter } from '../src/core/history.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';

/**
 * A report its device stamped before the property's current value (a charge point's queue sent
 * after an outage) is the device's past, not its state: it changes nothing, starts nothing,
 * confirms nothing and is not written to history. Reports stamped on arrival behave as they
 * always did, even when the state they replace carries a later time.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** An adapter that takes commands and answers nothing: what confirms them is under test. */
class QuietCharger implements Adapter {
  readonly name = 'quiet';
  sent: Command[] = [];
  async start() {}
  async stop() {}
  async execute(command: Command) {
    this.sent.push(command);
  }
}

describe('core: a report older than the state it would replace', () => {
  let clock: VirtualClock;
  let store: Store;
  let bus: LocalBus;
  let core: HubCore;
  let commands: CommandService;
  let history: HistoryWriter;
  let events: HubEvent[];
  const log = createLogger({ level: 'silent' });
  const report = (property: string, value: unknown, ts?: number): Report => ({
    householdId: 'h1',
    thing: 'cp-h',
    property,
    value,
    ts,
    source: 'ocpp',
  });
  const changes = () => events.flatMap((e) => (e.type === 'state' ? [`${e.property} ${e.from} → ${e.to}`] : []));
  const stored = async (property: string) =>
    (await store.queryHistory({ householdId: 'h1', thing: 'cp-h', property })).map((p) => p.value);

  async function startCore(): Promise<void> {
    bus = new LocalBus();
    bus.subscribe((e) => events.push(e));
    const twins = new TwinRegistry();
    commands = new CommandService({
      clock,
      bus,
      store,
      twins,
      adapters: new Map([['quiet', new QuietCharger()]]),
      log,
      defaultTimeoutMs: 60_000,
    });
    core = new HubCore({ clock, bus, store, twins, commands, log });
    history = new HistoryWriter({ bus, store, clock, log, flushEveryMs: 200 });
    history.start();
    await core.load();
  }

  async function stopCore(): Promise<void> {
    commands.stop();
    await history.stop();
  }

  beforeEach(async () => {
    clock = new VirtualClock(Date.UTC(2026, 5, 1, 12));
    store = await openStore({ kind: 'sqlite', file: ':memory:' });
    events = [];
    await startCore();
    await core.upsertThing({
      id: 'cp-h',
      householdId: 'h1',
      kind: 'charger',
      name: 'Driveway',
      adapter: 'quiet',
      properties: {
        ...vocabularyProperties([
          'charging.connected',
          'charging.charging',
          'charging.power',
          'charging.current_limit',
        ]),
        'charging.status': { schema: { type: 'string', maxLength: 32 } },
      },
      actions: vocabularyActions('charging'),
    });
    // The charger came up two hours ago, Available.
    core.ingest([
      report('charging.status', 'Available', clock.now() - 2 * HOUR),
      report('charging.power', 0, clock.now() - 2 * HOUR),
    ]);
    await history.flush();
    events = [];
  });

  afterEach(async () => {
    await stopCore();
    await store.close();
  });

  it('a Faulted stamped an hour ago, after Available stamped now, changes nothing, writes no history and survives a reload', async () => {
    core.ingest([report('charging.status', 'Available', clock.now())]);
    core.ingest([report('charging.status', 'Faulted', clock.now() - HOUR)]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.status'), 'Available', "the charger's latest word");
    assert.deepEqual(changes(), [], 'no change for rules to hear');
    await history.flush();
    assert.deepEqual(await stored('charging.status'), ['Available'], 'no row in the past');

    // A restart reads the same: the store was never told of the Faulted.
    await stopCore();
    await startCore();
    assert.equal(core.getValue('h1', 'cp-h', 'charging.status'), 'Available');
  });

  it('a repeated value moves its time forward: a late report is judged against the newest word, not the last change', async () => {
    // Available changed two hours ago; the charger said so again a minute ago.
    core.ingest([report('charging.status', 'Available', clock.now() - MINUTE)]);
    // Stamped after the change but before that repeat: still the past.
    core.ingest([report('charging.status', 'Faulted', clock.now() - HOUR)]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.status'), 'Available');
    assert.deepEqual(changes(), []);
  });

  it('a meter value stamped before the power the charger reported since leaves the power as it is', async () => {
    core.ingest([report('charging.status', 'Available', clock.now()), report('charging.power', 0, clock.now())]);
    core.ingest([report('charging.power', 7, clock.now() - 30 * MINUTE)]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.power'), 0);
    assert.deepEqual(changes(), []);
    await history.flush();
    assert.deepEqual(await stored('charging.power'), [0]);
  });

  it('in one batch, the late report is left out and the rest of the report applies', async () => {
    core.ingest([
      report('charging.power', 3.7, clock.now() - 10 * MINUTE),
      report('charging.status', 'Faulted', clock.now() - 3 * HOUR),
      report('charging.charging', true, clock.now() - 10 * MINUTE),
    ]);
    assert.deepEqual(changes(), ['charging.power 0 → 3.7', 'charging.charging null → true']);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.status'), 'Available');
  });

  it('a late report is taken when the property has no value yet, or when its time equals the current one', async () => {
    core.ingest([report('charging.connected', true, clock.now() - HOUR)]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.connected'), true, 'nothing newer to keep');
    core.ingest([report('charging.connected', false, clock.now() - HOUR)]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.connected'), false, 'the same instant: the later arrival wins');
    assert.deepEqual(changes(), ['charging.connected null → true', 'charging.connected true → false']);
  });

  it('a late report confirms no command; the charger’s next word does', async () => {
    core.ingest([report('charging.current_limit', 16, clock.now()), report('charging.power', 0, clock.now())]);
    const command = await commands.dispatch({
      householdId: 'h1',
      thing: 'cp-h',
      action: 'set_current_limit',
      input: { current: 16 },
      issuedBy: 'test',
    });
    await clock.advance(10);
    assert.equal(commands.get(command.id)?.status, 'sent');
    core.ingest([report('charging.power', 7, clock.now() - HOUR)]);
    assert.equal(commands.get(command.id)?.status, 'sent', 'an hour-old meter value answers nothing');
    core.ingest([report('charging.power', 0, clock.now())]);
    await commands.flush();
    assert.equal((await store.getCommand('h1', command.id))?.status, 'confirmed');
  });

  it('reports stamped on arrival are never judged late, even against a state stamped ahead of the hub', async () => {
    // A charger whose clock runs four minutes fast (within the skew the hub accepts).
    core.ingest([report('charging.status', 'Preparing', clock.now() + 4 * MINUTE)]);
    // Without a time of its own (OCPP's timestamp is optional): the hub stamps it on arrival.
    core.ingest([report('charging.status', 'Charging')]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.status'), 'Charging');
    // Stamped by its adapter with the hub's clock, as the MQTT adapters do, a moment before ingest.
    await clock.advance(1);
    core.ingest([report('charging.status', 'SuspendedEV', clock.now())]);
    core.ingest([report('charging.status', 'Finishing', clock.now() - 1)]);
    assert.equal(core.getValue('h1', 'cp-h', 'charging.status'), 'Finishing');
    assert.deepEqual(changes(), [
      'charging.status Available → Preparing',
      'charging.status Preparing → Charging',
      'charging.status Charging → SuspendedEV',
      'charging.status SuspendedEV → Finishing',
    ]);
  });
});
