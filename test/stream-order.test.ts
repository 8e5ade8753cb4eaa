import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { LocalBus } from '../src/core/bus.ts';
import type { HubEvent } from '../src/core/events.ts';
import { postRule, startTestHub, type TestHub } from './automation/helpers.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * Delivery is synchronous: an event published while another is being delivered (a rule's run
 * ending on the state change that started it) reaches the subscribers after the publisher before
 * the event that caused it. Watchers (the live stream) are observers, and hear every event first.
 */
describe('the order watchers hear events in', () => {
  it('an observer hears an event before one a subscriber publishes while handling it', () => {
    const bus = new LocalBus();
    const heard: string[] = [];
    const cause = { type: 'state', id: 'e1', householdId: 'h', ts: 1 } as unknown as HubEvent;
    const effect = { type: 'automation.run', id: 'e2', householdId: 'h', ts: 2 } as unknown as HubEvent;
    bus.subscribe((event) => {
      if (event.id === 'e1') bus.publish(effect);
    });
    bus.subscribe((event) => heard.push(`late subscriber ${event.id}`));
    bus.subscribe((event) => heard.push(`observer ${event.id}`), { observer: true });
    bus.publish(cause);
    assert.deepEqual(heard, ['observer e1', 'observer e2', 'late subscriber e2', 'late subscriber e1']);
  });

  describe('/api/stream', () => {
    let t: TestHub;
    after(async () => {
      await t?.hub.stop();
    });

    it('shows the state change before the run of the rule it triggered', async () => {
      t = await startTestHub({});
      await postRule(t, {
        id: 'note-when-hot',
        triggers: [{ trigger: 'state', thing: 'living-room-sensor', property: 'sensor.temperature' }],
        actions: [{ action: 'notify', message: 'hot' }],
      });
      const socket = new WebSocket(`${t.hub.httpUrl.replace('http', 'ws')}/api/stream`, {
        headers: { authorization: `Bearer ${t.hub.ownerToken}` },
      });
      const messages: Array<{ type: string; event?: string; property?: string }> = [];
      socket.on('message', (data) => messages.push(JSON.parse(String(data))));
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'subscribe', things: ['*'] }));
      await eventually(() => messages.some((m) => m.type === 'subscribed'));
      try {
        t.set('living-room-sensor', 'sensor.temperature', 27.5);
        await eventually(() => messages.some((m) => m.event === 'automation.run'), { what: 'the run on the stream' });
        const order = messages
          .filter((m) => m.property === 'sensor.temperature' || m.event === 'automation.run')
          .map((m) => m.property ?? m.event);
        assert.deepEqual(order, ['sensor.temperature', 'automation.run']);
      } finally {
        socket.close();
      }
    });
  });
});
