import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { apiCaller, hallLightPass, type Json, subscribedStream as streamOf } from './helpers/guest-stream.ts';
import { eventuallyPasses, tempDir } from './helpers/hub-process.ts';

/**
 * Who switched what is the household's record, like who came and went: a guest sees their own
 * commands (on the stream and under GET /api/commands/{id}) and nobody else's, not even to the
 * things they were given; an adult still sees every command. A real in-process hub, real
 * WebSocket clients.
 */
describe("security: a guest sees their own commands, not the household's", () => {
  let hub: Hub;
  let guestToken: string;
  let adultToken: string;

  const call = (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) =>
    apiCaller(hub)(path, init);

  /** Turns the hall light on as `token`'s holder; the command's id. */
  const turnOn = async (token: string) => {
    const answer = await call('/api/things/hall-light/actions/turn_on', { method: 'POST', json: {}, token });
    assert.equal(answer.status, 202, answer.text);
    return answer.body.commandId as string;
  };

  /** A stream subscribed to everything, and every message it was sent since. */
  const subscribedStream = (token: string) => streamOf(hub, token);

  const commandIdsIn = (messages: Json[]) =>
    new Set(messages.filter((m) => m.type === 'command').map((m) => (m.command as Json).id as string));

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-guest-commands-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    await addFrontDoorAndHallLight(hub);
    guestToken = await hallLightPass(hub);
    const sam = await call('/api/users', {
      method: 'POST',
      json: { name: 'Sam', role: 'adult', password: 'Sam-secret-pw-1' },
    });
    assert.equal(sam.status, 201, sam.text);
    const token = await call('/api/tokens', { method: 'POST', json: { user: sam.body.id, name: "Sam's phone" } });
    assert.equal(token.status, 201, token.text);
    adultToken = token.body.token as string;
  });

  after(async () => {
    await hub.stop();
  });

  it("streams a guest their own command's messages and none of the owner's, while an adult sees both", async () => {
    const guest = await subscribedStream(guestToken);
    const adult = await subscribedStream(adultToken);
    try {
      const owners = await turnOn(hub.ownerToken);
      const guests = await turnOn(guestToken);
      // Each command goes pending, then fails (no adapter reaches the light): both reach the adult.
      await eventuallyPasses(() => {
        const seen = commandIdsIn(adult.messages);
        assert.ok(seen.has(owners) && seen.has(guests), 'the adult sees both commands');
        assert.ok(commandIdsIn(guest.messages).has(guests), 'the guest sees their own command');
      });
      assert.ok(!commandIdsIn(guest.messages).has(owners), "the guest is not sent the owner's command");
      const ownerUser = (await call(`/api/commands/${owners}`)).body.issuedBy as string;
      assert.match(ownerUser, /^usr_/);
      const text = JSON.stringify(guest.messages);
      assert.ok(!text.includes(ownerUser), `the guest's stream never names the owner (${ownerUser})`);
    } finally {
      guest.close();
      adult.close();
    }
  });

  it("answers a guest's GET /api/commands/{id} for their own command, and 404 for the owner's as for no command", async () => {
    const owners = await turnOn(hub.ownerToken);
    const guests = await turnOn(guestToken);
    const own = await call(`/api/commands/${guests}`, { token: guestToken });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.body.id, guests);
    const someoneElses = await call(`/api/commands/${owners}`, { token: guestToken });
    const none = await call('/api/commands/cmd_does_not_exist', { token: guestToken });
    assert.equal(someoneElses.status, 404, someoneElses.text);
    assert.equal(none.status, 404);
    assert.equal(
      (someoneElses.body.error as Json).code,
      (none.body.error as Json).code,
      'the same answer as for an id that does not exist',
    );
    assert.equal((await call(`/api/commands/${owners}`, { token: adultToken })).status, 200, 'an adult sees it');
  });
});
