import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { apiCaller, hallLightPass, type Json, subscribedStream } from './helpers/guest-stream.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';

/**
 * A state message's `cause` names the command behind the change. A guest is shown only their own
 * commands (GET /api/commands/{id} is a 404 for anyone else's), so the id of someone else's
 * command, or of an event of the household's record, is null on a guest's stream; their own
 * command's id stays, and the owner still sees every cause. A real in-process hub, real
 * WebSocket clients; the changes come in as reports through the hub's core, as an adapter's do.
 */
describe("stream: a guest is not told the ids of others' commands as causes", () => {
  let hub: Hub;
  let guestToken: string;

  const turnOn = async (token: string) => {
    const answer = await apiCaller(hub)('/api/things/hall-light/actions/turn_on', { method: 'POST', json: {}, token });
    assert.equal(answer.status, 202, answer.text);
    return answer.body.commandId as string;
  };

  /** The hall light reports `on`, as caused by `cause`. */
  const lightReports = (on: boolean, cause: string) =>
    hub.core.ingest([
      { householdId: hub.householdId, thing: 'hall-light', property: 'light.on', value: on, source: 'test', cause },
    ]);

  /** The cause each stream was sent with the hall light's change to `on` (after message `since[i]`). */
  const causesOf = async (streams: Array<{ messages: Json[] }>, on: boolean, since: number[]) => {
    let found: unknown[] = [];
    await eventuallyPasses(() => {
      found = streams.map(({ messages }, i) => {
        const state = messages.slice(since[i]).find((m) => m.type === 'state' && m.value === on);
        assert.ok(state, `stream ${i} has the change to ${on}`);
        return state.cause;
      });
    });
    return found;
  };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-guest-cause-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    await addFrontDoorAndHallLight(hub);
    guestToken = await hallLightPass(hub);
  });

  after(async () => {
    await hub.stop();
  });

  it("shows a guest null for another's command and for an event, their own command's id, and the owner every cause", async () => {
    const guest = await subscribedStream(hub, guestToken);
    const owner = await subscribedStream(hub, hub.ownerToken);
    try {
      const owners = await turnOn(hub.ownerToken);
      const guests = await turnOn(guestToken);
      await eventuallyPasses(() =>
        assert.ok(guest.messages.some((m) => m.type === 'command' && (m.command as Json).id === guests)),
      );
      const streams = [guest, owner];
      const mark = () => streams.map((s) => s.messages.length);

      let since = mark();
      lightReports(true, owners);
      assert.deepEqual(await causesOf(streams, true, since), [null, owners], "the owner's command");

      since = mark();
      lightReports(false, guests);
      assert.deepEqual(await causesOf(streams, false, since), [guests, guests], "the guest's own command");

      since = mark();
      lightReports(true, 'evt_somebody_elses_event');
      assert.deepEqual(
        await causesOf(streams, true, since),
        [null, 'evt_somebody_elses_event'],
        'an event of the record',
      );
      assert.ok(!JSON.stringify(guest.messages).includes(owners), "the owner's command id never reaches the guest");
    } finally {
      guest.close();
      owner.close();
    }
  });
});
