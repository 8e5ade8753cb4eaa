import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VirtualClock } from '../../src/core/clock.ts';
import type { Store } from '../../src/store/store.ts';
import { eventually } from '../helpers/hub-process.ts';
import { advance, MIN, postRule, startTestHub, type TestHub } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

/** Every hold made, released before the hubs stop: a failed assertion must not leave a stop waiting on one. */
const holds: Array<{ release(): void }> = [];

/** Holds every call of a store method until released, as a slow disk would; the call then goes on. */
function hold<K extends 'saveTimer' | 'saveCommand' | 'saveCommands'>(store: Store, method: K) {
  const original = (store[method] as (arg: unknown) => Promise<void>).bind(store);
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const state = { calls: 0, release };
  holds.push(state);
  (store as unknown as Record<K, (arg: unknown) => Promise<void>>)[method] = async (arg) => {
    state.calls++;
    await released;
    return original(arg);
  };
  return state;
}

/** Lets the store's thread and the HTTP round trip have their turns, in real time. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * "Nothing acknowledged is lost": what a crash right after an acknowledgement would leave on disk
 * must still carry what was acknowledged. A store whose write is held stands for the moment before
 * it is committed: a crash then finds only what was committed before.
 */
describe('automations: acknowledged only once stored', () => {
  const hubs: TestHub[] = [];
  after(async () => {
    for (const held of holds) held.release();
    for (const h of hubs) await h.hub.stop();
  });

  it('a webhook call is answered only once the rows of the runs it started (waiting, queued) are stored', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'porch-later',
      mode: 'queued',
      triggers: [{ trigger: 'webhook', webhook_id: 'porch-later-4b1d' }],
      actions: [{ delay: '10m' }, { action: 'turn_on', thing: 'living-room-fan' }],
    });
    const path = '/api/automations/webhooks/porch-later-4b1d';
    const call = () => {
      const answer = { status: 0 };
      const response = t.api(path, { method: 'POST', body: '{}' }).then((r) => {
        answer.status = r.status;
        return r;
      });
      return { answer, response };
    };

    // The first call's run waits in its delay: its timer row is what a restart resumes.
    const runRow = hold(t.hub.store, 'saveTimer');
    const first = call();
    await eventually(() => runRow.calls > 0, { what: 'the run’s timer row being written' });
    await pause(300);
    assert.equal(first.answer.status, 0, 'answered before the waiting run’s timer row was stored');
    runRow.release();
    assert.equal((await first.response).status, 200);
    const afterFirst = await t.hub.store.listTimers('automations');
    assert.deepEqual(
      afterFirst.map((row) => (row.payload as { kind: string }).kind),
      ['run'],
    );

    // The second call queues behind it: its queued row is what a restart takes up.
    const queuedRow = hold(t.hub.store, 'saveTimer');
    const second = call();
    await eventually(() => queuedRow.calls > 0, { what: 'the queued trigger’s row being written' });
    await pause(300);
    assert.equal(second.answer.status, 0, 'answered before the queued trigger’s row was stored');
    queuedRow.release();
    assert.equal((await second.response).status, 200);
    const afterSecond = await t.hub.store.listTimers('automations');
    assert.deepEqual(afterSecond.map((row) => (row.payload as { kind: string }).kind).sort(), ['queued', 'run']);
  });

  it('a webhook call whose run ends at once is answered only once its commands are stored', async () => {
    const t = await startTestHub({ clock: new VirtualClock(T0) });
    hubs.push(t);
    await postRule(t, {
      id: 'fan-now',
      triggers: [{ trigger: 'webhook', webhook_id: 'fan-now-51aa' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }],
    });
    // A rule's command is stored a moment after it is dispatched; one a device has not had yet (a
    // car out of reach) lives only in that row once the run has ended.
    const commandRow = hold(t.hub.store, 'saveCommands');
    const commandRowAlone = hold(t.hub.store, 'saveCommand');
    let status = 0;
    const response = t.api('/api/automations/webhooks/fan-now-51aa', { method: 'POST', body: '{}' }).then((r) => {
      status = r.status;
      return r;
    });
    await eventually(() => commandRow.calls + commandRowAlone.calls > 0, { what: 'the command’s row being written' });
    await pause(300);
    assert.equal(status, 0, 'answered before the run’s command was stored');
    commandRow.release();
    commandRowAlone.release();
    assert.equal((await response).status, 200);
    const stored = await t.hub.store.listCommandsByStatus(['pending', 'sent', 'confirmed']);
    assert.equal(stored.filter((c) => c.issuedBy === 'rule:fan-now').length, 1);
  });

  it('a run that sends a command and then waits stores its row only after the command’s', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'fan-then-wait',
      triggers: [{ trigger: 'webhook', webhook_id: 'fan-then-wait-7e01' }],
      actions: [{ action: 'turn_on', thing: 'living-room-fan' }, { delay: '10m' }],
    });
    const commandRow = hold(t.hub.store, 'saveCommands');
    const commandRowAlone = hold(t.hub.store, 'saveCommand');
    const response = t.api('/api/automations/webhooks/fan-then-wait-7e01', { method: 'POST', body: '{}' });
    await eventually(() => commandRow.calls + commandRowAlone.calls > 0, { what: 'the command’s row being written' });
    await pause(300);
    // A crash now: a run row saying "after the delay" with no command row would never send it.
    assert.deepEqual(await t.hub.store.listTimers('automations'), [], 'the run’s row went before its command’s');
    commandRow.release();
    commandRowAlone.release();
    assert.equal((await response).status, 200);
    const stored = await t.hub.store.listCommandsByStatus(['pending', 'sent', 'confirmed']);
    assert.equal(stored.filter((c) => c.issuedBy === 'rule:fan-then-wait').length, 1);
    assert.equal((await t.hub.store.listTimers('automations')).length, 1, 'the waiting run stored');
  });

  it('a run that waited keeps its timer row until the command it sent at its end is stored', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    await postRule(t, {
      id: 'fan-after-a-while',
      triggers: [{ trigger: 'webhook', webhook_id: 'fan-after-a-while-9c2e' }],
      actions: [{ delay: '1m' }, { action: 'turn_on', thing: 'living-room-fan' }],
    });
    const fired = await t.api('/api/automations/webhooks/fan-after-a-while-9c2e', { method: 'POST', body: '{}' });
    assert.equal(fired.status, 200);
    const [row] = await eventually(
      async () => {
        const rows = await t.hub.store.listTimers('automations');
        return rows.length === 1 && (rows[0].payload as { kind?: string }).kind === 'run' && rows;
      },
      { what: 'the waiting run stored' },
    );

    // The delay ends and the run sends its command; the command's row is not committed yet.
    const commandRow = hold(t.hub.store, 'saveCommands');
    const commandRowAlone = hold(t.hub.store, 'saveCommand');
    await advance(clock, MIN + 1000, 100);
    await eventually(() => t.events.some((e) => e.type === 'automation.run' && e.data?.rule === 'fan-after-a-while'), {
      what: 'the run recorded as done',
    });
    await eventually(() => commandRow.calls + commandRowAlone.calls > 0, { what: 'the command’s row being written' });
    await pause(300);
    // A crash now finds no command row: the run's row must still be there to send it again.
    const commands = await t.hub.store.listCommandsByStatus(['pending', 'sent', 'confirmed']);
    assert.equal(commands.filter((c) => c.issuedBy === 'rule:fan-after-a-while').length, 0);
    assert.deepEqual(
      (await t.hub.store.listTimers('automations')).map((r) => r.id),
      [row.id],
      'the run’s row went before its command’s',
    );

    commandRow.release();
    commandRowAlone.release();
    await eventually(async () => (await t.hub.store.listTimers('automations')).length === 0, {
      what: 'the ended run’s row deleted once its command is stored',
    });
    const stored = await t.hub.store.listCommandsByStatus(['pending', 'sent', 'confirmed']);
    assert.equal(stored.filter((c) => c.issuedBy === 'rule:fan-after-a-while').length, 1);
  });
});
