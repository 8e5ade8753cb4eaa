import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Trace } from '../../src/automation/index.ts';
import { VirtualClock } from '../../src/core/clock.ts';
import type { Store, StoredTimer } from '../../src/store/store.ts';
import {
  eventually,
  freePort,
  type HubProcess,
  restartableHub,
  startHubProcess,
  tempDir,
} from '../helpers/hub-process.ts';
import { advance, MIN, postRule, startTestHub, type TestHub, tracesOf } from './helpers.ts';

const T0 = new Date(2026, 5, 1, 8, 0).getTime();

/** Lets the store's thread and the HTTP round trips have their turns, in real time. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A notification receiver on 127.0.0.1 that, while `holding`, keeps every request open without an
 * answer (a slow or hanging service behind a notify webhook); `release` answers those and every
 * later one at once.
 */
class Receiver {
  readonly received: Array<{ path: string; body: Record<string, unknown> }> = [];
  private readonly open: ServerResponse[] = [];
  holding = true;
  private server: Server | null = null;
  base = '';

  async start(port = 0): Promise<void> {
    this.server = createServer((request: IncomingMessage, response: ServerResponse) => {
      let text = '';
      request.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      request.on('end', () => {
        this.received.push({ path: request.url ?? '', body: JSON.parse(text || '{}') as Record<string, unknown> });
        if (this.holding) this.open.push(response);
        else response.writeHead(204).end();
      });
    });
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  messages(): unknown[] {
    return this.received.map((r) => r.body.message);
  }

  release(): void {
    this.holding = false;
    for (const response of this.open.splice(0)) if (!response.writableEnded) response.writeHead(204).end();
  }

  async stop(): Promise<void> {
    this.release();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Holds every `saveTimer` of a store until released, as a slow disk would; the call then goes on. */
function holdTimers(store: Store) {
  const original = store.saveTimer.bind(store);
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const state = { calls: 0, release };
  store.saveTimer = async (timer: StoredTimer) => {
    state.calls++;
    await released;
    return original(timer);
  };
  return state;
}

/** What a stored timer row says it waits for: a run's `waiting.kind`, or the row's own kind. */
const rowKinds = (rows: StoredTimer[]) =>
  rows.map((row) => {
    const payload = row.payload as { kind: string; waiting?: { kind: string } };
    return payload.waiting ? `${payload.kind}:${payload.waiting.kind}` : payload.kind;
  });

/** POSTs to a webhook trigger; resolves to the answer, or to 'no answer' if none comes in `withinMs`. */
async function fire(t: TestHub, id: string, withinMs = 4000): Promise<Response | 'no answer'> {
  const answer = t.api(`/api/automations/webhooks/${id}`, { method: 'POST', body: '{}' });
  return Promise.race([answer, pause(withinMs).then(() => 'no answer' as const)]);
}

/**
 * "Nothing acknowledged is lost", for runs whose first step does not finish at once: a webhook's
 * 200 means every run it started is on disk (its timer row) or over, however the run begins.
 */
describe('automations: a webhook’s runs are stored before the answer, whatever their first step', () => {
  const hubs: TestHub[] = [];
  const receiver = new Receiver();
  const releases: Array<() => void> = [];
  before(() => receiver.start());
  after(async () => {
    for (const release of releases) release();
    await receiver.stop();
    for (const h of hubs) await h.hub.stop();
  });

  it('a run that notifies a slow receiver first is stored before the answer, which does not wait for the receiver', async () => {
    receiver.holding = true;
    const clock = new VirtualClock(T0);
    // A receiver timeout far longer than the test waits for the answer.
    const t = await startTestHub({ clock, engine: { webhookTimeoutMs: 60_000 } });
    hubs.push(t);
    await postRule(t, {
      id: 'tell-then-fan',
      triggers: [{ trigger: 'webhook', webhook_id: 'tell-then-fan-3f9a' }],
      actions: [
        { action: 'notify', message: 'first', webhook: `${receiver.base}/slow` },
        { delay: '10m' },
        { action: 'turn_on', thing: 'living-room-fan' },
      ],
    });
    const answer = await fire(t, 'tell-then-fan-3f9a');
    assert.notEqual(answer, 'no answer', 'the answer waited for the slow notification receiver');
    assert.equal((answer as Response).status, 200);
    assert.deepEqual(await (answer as Response).json(), { fired: ['tell-then-fan'], skipped: [] });
    // A crash now must leave the run on disk, though it has not reached its delay yet.
    const rows = await t.hub.store.listTimers('automations');
    assert.deepEqual(rowKinds(rows), ['run:step'], 'the run was not stored when the webhook was answered');
    await eventually(() => receiver.messages().includes('first'), { what: 'the notification in flight' });

    // The receiver answers: the run reaches its delay, and its row now says so (same row, same run).
    receiver.release();
    const [waiting] = await eventually(
      async () => {
        const now = await t.hub.store.listTimers('automations');
        return rowKinds(now)[0] === 'run:delay' && now;
      },
      { what: 'the run’s row moved on to its delay' },
    );
    assert.equal(waiting.id, rows[0].id);
    await advance(clock, 10 * MIN + 1000, 10_000);
    await eventually(() => t.ruleCommands('tell-then-fan').length === 1, { what: 'the fan command after the delay' });
    await eventually(async () => (await t.hub.store.listTimers('automations')).length === 0, {
      what: 'the ended run’s row deleted',
    });
    assert.equal((await tracesOf(t, 'tell-then-fan')).at(-1)?.status, 'finished');
  });

  it('a run whose first notification fails at once ends, and leaves no row behind', async () => {
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock });
    hubs.push(t);
    const nobody = `http://127.0.0.1:${await freePort()}/nobody`;
    await postRule(t, {
      id: 'tell-nobody',
      triggers: [{ trigger: 'webhook', webhook_id: 'tell-nobody-81c0' }],
      actions: [{ action: 'notify', message: 'hello', webhook: nobody }, { delay: '10m' }],
    });
    const answer = await fire(t, 'tell-nobody-81c0');
    assert.notEqual(answer, 'no answer');
    assert.equal((answer as Response).status, 200);
    const [trace] = await eventually(async () => {
      const traces = await tracesOf(t, 'tell-nobody');
      return traces[0]?.status === 'error' && traces;
    });
    assert.match(trace.error ?? '', /nobody/);
    // A row left behind would run the failed run again at the next start.
    await eventually(async () => (await t.hub.store.listTimers('automations')).length === 0, {
      what: 'the failed run’s row deleted',
    });
    await pause(300);
    assert.deepEqual(await t.hub.store.listTimers('automations'), []);
  });

  for (const [first, name] of [
    [{ action: 'notify', message: 'on the stream only' }, 'a notification without a webhook'],
    [
      {
        wait_for_trigger: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.humidity' }],
        timeout: '10m',
      },
      'a wait_for_trigger',
    ],
  ] as const) {
    it(`a run whose first step is ${name} is answered only once its row is stored`, async () => {
      const clock = new VirtualClock(T0);
      const t = await startTestHub({ clock });
      hubs.push(t);
      const id = name.startsWith('a wait') ? 'wait-first' : 'notify-first';
      await postRule(t, {
        id,
        triggers: [{ trigger: 'webhook', webhook_id: `${id}-5d2e` }],
        actions: [first, { delay: '10m' }, { action: 'turn_on', thing: 'living-room-fan' }],
      });
      const held = holdTimers(t.hub.store);
      releases.push(held.release);
      let status = 0;
      const response = t.api(`/api/automations/webhooks/${id}-5d2e`, { method: 'POST', body: '{}' }).then((r) => {
        status = r.status;
        return r;
      });
      await eventually(() => held.calls > 0, { what: 'the run’s row being written' });
      await pause(300);
      assert.equal(status, 0, 'answered before the run’s row was stored');
      held.release();
      assert.equal((await response).status, 200);
      assert.equal((await t.hub.store.listTimers('automations')).length, 1);
    });
  }

  it('a queued webhook trigger whose turn comes later is stored while its first notification is in flight', async () => {
    receiver.release();
    const clock = new VirtualClock(T0);
    const t = await startTestHub({ clock, engine: { webhookTimeoutMs: 60_000 } });
    hubs.push(t);
    await postRule(t, {
      id: 'tell-in-turn',
      mode: 'queued',
      triggers: [{ trigger: 'webhook', webhook_id: 'tell-in-turn-0b7d' }],
      actions: [
        { action: 'notify', message: 'in turn', webhook: `${receiver.base}/turn` },
        { delay: '10m' },
        { action: 'turn_on', thing: 'living-room-fan' },
      ],
    });
    const firstAnswer = await fire(t, 'tell-in-turn-0b7d');
    assert.equal((firstAnswer as Response).status, 200);
    await eventually(async () => rowKinds(await t.hub.store.listTimers('automations'))[0] === 'run:delay', {
      what: 'the first run waiting in its delay',
    });
    const secondAnswer = await fire(t, 'tell-in-turn-0b7d');
    assert.equal((secondAnswer as Response).status, 200);
    assert.deepEqual(rowKinds(await t.hub.store.listTimers('automations')).sort(), ['queued', 'run:delay']);

    // The first run ends; the second's turn comes and its notification hangs.
    receiver.holding = true;
    const before = receiver.received.length;
    await advance(clock, 10 * MIN + 1000, 10_000);
    await eventually(() => receiver.received.length > before, { what: 'the second run’s notification in flight' });
    // Its queued row went as its turn came: a crash now must still find it, as a run.
    const rows = await eventually(
      async () => {
        const now = await t.hub.store.listTimers('automations');
        return rowKinds(now).join() === 'run:step' && now;
      },
      { what: 'the second run stored while its notification is in flight' },
    );
    assert.equal(rows.length, 1);
    receiver.release();
    await eventually(async () => rowKinds(await t.hub.store.listTimers('automations'))[0] === 'run:delay', {
      what: 'the second run waiting in its delay',
    });
  });
});

/**
 * The same across a real crash: a `triad start` killed with SIGKILL right after it answered the
 * webhook, while the run's first notification still hangs, and started again on the same folder.
 */
describe('a hub killed right after answering a webhook whose run notifies first', () => {
  const hubs: HubProcess[] = [];
  const receiver = new Receiver();
  let dataDir = '';
  before(() => receiver.start());
  after(async () => {
    for (const hub of hubs) if (hub.child.exitCode === null && hub.child.signalCode === null) await hub.stop('SIGKILL');
    await receiver.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('resumes the run after the restart: notifies again, waits out its delay and goes on', async () => {
    dataDir = await tempDir('triad-webhook-crash-');
    const { args } = await restartableHub(dataDir, {});
    let hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    const rule = await hub.api('/api/automations', {
      method: 'POST',
      body: JSON.stringify({
        id: 'tell-wait-tell',
        triggers: [{ trigger: 'webhook', webhook_id: 'tell-wait-tell-6a41' }],
        actions: [
          { action: 'notify', message: 'first', webhook: `${receiver.base}/hook` },
          { delay: '2s' },
          { action: 'notify', message: 'second', webhook: `${receiver.base}/hook` },
        ],
      }),
    });
    assert.equal(rule.status, 201, await rule.clone().text());

    receiver.holding = true;
    const fired = await Promise.race([
      hub.api('/api/automations/webhooks/tell-wait-tell-6a41', { method: 'POST', body: '{}' }),
      pause(4000).then(() => 'no answer' as const),
    ]);
    assert.notEqual(fired, 'no answer', 'the answer waited for the hanging notification receiver');
    assert.equal((fired as Response).status, 200);
    // Killed right after the answer, the first notification still unanswered.
    assert.equal(await hub.stop('SIGKILL'), null);
    assert.ok(!receiver.messages().includes('second'));
    // The post may or may not have gone out before the kill: the row was written first.
    const firstsBefore = receiver.messages().filter((m) => m === 'first').length;

    receiver.release();
    hub = await startHubProcess({ dataDir, args });
    hubs.push(hub);
    // The acknowledged run goes on: its first notification again (it may not have got through),
    // then its delay, then the rest.
    await eventually(() => receiver.messages().includes('second'), {
      what: 'the resumed run’s notification after its delay',
      timeoutMs: 15_000,
    });
    const messages = receiver.messages();
    assert.equal(messages.filter((m) => m === 'second').length, 1);
    assert.ok(messages.lastIndexOf('first') < messages.indexOf('second'));
    assert.equal(messages.filter((m) => m === 'first').length, firstsBefore + 1, 'the interrupted step taken again');
    const traces = await eventually(async () => {
      const response = await hub.api('/api/automations/tell-wait-tell/traces');
      const list = (await response.json()) as Trace[];
      return list.length === 1 && list[0].status === 'finished' && list;
    });
    assert.equal(traces.length, 1, 'one run, resumed, not a second one');
    // The same trace goes on; the step the crash cut short (if its trace was written in time) says so.
    const steps = traces[0].steps.map((s) => `${s.action}:${s.status}`);
    assert.deepEqual(steps.slice(-3), ['notify:ok', 'delay:ok', 'notify:ok']);
    for (const cut of traces[0].steps.slice(0, -3)) {
      assert.equal(`${cut.action}:${cut.status}`, 'notify:stopped');
      assert.match(cut.detail ?? '', /interrupted by a restart/);
    }
  });
});
