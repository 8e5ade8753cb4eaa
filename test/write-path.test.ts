import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Adapter, AdapterContext } from '../src/adapters/adapter.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { CommandService } from '../src/core/commands.ts';
import { HubCore } from '../src/core/core.ts';
import type { Command, HubEvent } from '../src/core/events.ts';
import { HistoryWriter } from '../src/core/history.ts';
import { createLogger } from '../src/core/log.ts';
import { TwinRegistry } from '../src/core/twin.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { GroupCommit } from '../src/store/group-commit.ts';
import { openStore } from '../src/store/index.ts';
import type { Store } from '../src/store/store.ts';

const log = createLogger({ level: 'silent' });

describe('write path: store work kept short and out of a command’s way', () => {
  it('writes a long group commit in several transactions, in order, and resolves every waiter', async () => {
    const clock = new VirtualClock();
    const batches: number[][] = [];
    const queue = new GroupCommit<number>({
      clock,
      maxTransaction: 3,
      writeBatch: async (items) => {
        batches.push(items);
      },
      writeOne: async (item) => {
        batches.push([item]);
      },
      onError: () => assert.fail('nothing fails here'),
    });
    const committed = Array.from({ length: 7 }, (_, i) => queue.commit(`k${i}`, i));
    await Promise.all(committed);
    assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('commits history in chunks and, when the store fails midway, keeps only what was not written', async () => {
    const clock = new VirtualClock();
    const written: string[][] = [];
    let failOnCall = 2;
    let calls = 0;
    const store = {
      async appendHistory() {},
      async appendEvents(events: HubEvent[]) {
        calls++;
        if (calls === failOnCall) throw new Error('store went away');
        written.push(events.map((e) => e.id));
      },
    } as unknown as Store;
    const bus = new LocalBus();
    const writer = new HistoryWriter({ bus, store, clock, log, flushEveryMs: 60_000, chunk: 4 });
    writer.start();
    for (let i = 0; i < 10; i++)
      bus.publish({ type: 'automation.run', id: `e${i}`, householdId: 'h1', ts: i, cause: null, data: {} });
    await writer.flush();
    assert.deepEqual(written, [['e0', 'e1', 'e2', 'e3']]);
    assert.equal(writer.backlog, 6, 'the written chunk is not queued again');
    failOnCall = -1;
    await writer.flush();
    assert.deepEqual(
      written.flat(),
      Array.from({ length: 10 }, (_, i) => `e${i}`),
    );
    assert.equal(writer.backlog, 0);
    await writer.stop();
  });

  it('sends a rule’s command before storing it, then stores its lifecycle as one row', async () => {
    const clock = new VirtualClock(Date.UTC(2026, 5, 1, 8));
    const store = await openStore({ kind: 'sqlite', file: ':memory:' });
    const saved: Command[][] = [];
    const saveCommands = store.saveCommands.bind(store);
    const saveCommand = store.saveCommand.bind(store);
    store.saveCommands = async (commands) => {
      saved.push(commands.map((c) => ({ ...c })));
      await saveCommands(commands);
    };
    store.saveCommand = async (command) => {
      saved.push([{ ...command }]);
      await saveCommand(command);
    };
    const bus = new LocalBus();
    const twins = new TwinRegistry();
    const storedWhenSent: Array<Command | null> = [];
    const device: Adapter & { ctx?: AdapterContext } = {
      name: 'loopback',
      async start(ctx) {
        device.ctx = ctx;
      },
      async stop() {},
      async execute(command) {
        storedWhenSent.push(await store.getCommand(command.householdId, command.id));
        // The device answers a moment later, as over a network.
        setImmediate(() =>
          device.ctx?.ingest([
            { householdId: 'h1', thing: 'lamp', property: 'light.on', value: true, source: 'loopback' },
          ]),
        );
      },
    };
    const commands = new CommandService({
      clock,
      bus,
      store,
      twins,
      adapters: new Map([['loopback', device]]),
      log,
      defaultTimeoutMs: 5000,
    });
    const core = new HubCore({ clock, bus, store, twins, commands, log });
    await device.start(core.contextFor(log));
    await core.upsertThing({
      id: 'lamp',
      householdId: 'h1',
      kind: 'device',
      name: 'Lamp',
      adapter: 'loopback',
      properties: vocabularyProperties(['light.on']),
      actions: vocabularyActions('light'),
    });
    const statuses: string[] = [];
    bus.subscribe((e) => {
      if (e.type === 'command') statuses.push(e.command.status);
    });
    const command = await commands.dispatch({
      householdId: 'h1',
      thing: 'lamp',
      action: 'turn_on',
      issuedBy: 'rule:lights',
    });
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(storedWhenSent, [null], 'sent before its row was written');
    assert.deepEqual(statuses, ['pending', 'sent', 'confirmed'], 'every status is still announced');
    assert.equal(commands.get(command.id)?.status, 'confirmed', 'readable before it is written');
    await commands.flush();
    assert.deepEqual(
      saved.map((batch) => batch.map((c) => c.status)),
      [['confirmed']],
      'pending, sent and confirmed became one row',
    );
    assert.equal((await store.getCommand('h1', command.id))?.status, 'confirmed');
    commands.stop();
    await store.close();
  });
});
