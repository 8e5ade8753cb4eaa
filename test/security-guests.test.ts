import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

/**
 * Guest passes and grants over the real API of an in-process hub: what they may name (things and
 * actions that exist), and what a guest may see (a thing as it is now, not its past).
 */
describe('security: what guest passes and grants may hold, and what guests see', () => {
  let hub: Hub;
  const hour = 3_600_000;

  const call = async (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
    const headers = new Headers({ authorization: `Bearer ${init.token ?? hub.ownerToken}` });
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json & Json[], text };
  };

  const pass = (things: string[], actions: string[]) =>
    call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Visitor',
        things,
        actions,
        from: new Date(Date.now() - 60_000).toISOString(),
        to: new Date(Date.now() + hour).toISOString(),
      },
    });

  const errorOf = (answer: { body: Json }) => answer.body.error as { code: string; message: string };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-guests-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    const householdId = hub.householdId;
    await addFrontDoorAndHallLight(hub);
    hub.core.ingest([
      { householdId, thing: 'front-door', property: 'lock.locked', value: false, ts: Date.now(), source: 'test' },
    ]);
    const kim = await call('/api/users', {
      method: 'POST',
      json: { name: 'Kim', role: 'child', password: 'Kim-secret-pw-1' },
    });
    assert.equal(kim.status, 201, kim.text);
  });

  after(async () => {
    await hub.stop();
  });

  it('refuses a pass or a grant with an action none of its things has (400, naming both), and makes nothing', async () => {
    const passes = (await call('/api/guest-passes')).body.length;
    const grants = (await call('/api/grants')).body.length;

    const fly = await pass(['front-door'], ['fly']);
    assert.equal(fly.status, 400, fly.text);
    assert.equal(errorOf(fly).code, 'bad_request');
    assert.match(errorOf(fly).message, /"fly"/);
    assert.match(errorOf(fly).message, /front-door \(actions: lock, unlock\)/);

    const unlockTheLight = await pass(['hall-light'], ['turn_on', 'unlock']);
    assert.equal(unlockTheLight.status, 400, unlockTheLight.text);
    assert.equal(
      errorOf(unlockTheLight).message,
      'no action "unlock" on hall-light (actions: turn_on, turn_off, toggle)',
    );

    const both = await pass(['front-door', 'hall-light'], ['fly']);
    assert.equal(both.status, 400, both.text);
    assert.match(errorOf(both).message, /front-door .* or hall-light/, 'every thing that lacks it is named');

    const grant = await call('/api/grants', {
      method: 'POST',
      json: { user: 'Kim', things: ['front-door'], actions: ['fly'] },
    });
    assert.equal(grant.status, 400, grant.text);
    assert.match(errorOf(grant).message, /"fly".*front-door/);
    const anywhere = await call('/api/grants', {
      method: 'POST',
      json: { user: 'Kim', things: ['*'], actions: ['fly'] },
    });
    assert.equal(anywhere.status, 400, anywhere.text);
    assert.match(errorOf(anywhere).message, /"fly" on any thing/);

    // An unknown thing is still a 404, whatever the actions.
    const ghost = await pass(['front-door', 'no-such-door'], ['fly']);
    assert.equal(ghost.status, 404, ghost.text);
    assert.match(errorOf(ghost).message, /no-such-door/);

    assert.equal((await call('/api/guest-passes')).body.length, passes, 'no pass was made');
    assert.equal((await call('/api/grants')).body.length, grants, 'no grant was made');
  });

  it('takes actions that some named thing has, `*`, and vocabulary actions for every thing', async () => {
    // Each action for the thing that has it: the door's unlock, the light's turn_on.
    const visitor = await pass(['front-door', 'hall-light'], ['unlock', 'turn_on']);
    assert.equal(visitor.status, 201, visitor.text);
    assert.deepEqual(visitor.body.actions, ['unlock', 'turn_on']);
    assert.equal((await pass(['hall-light'], ['*'])).status, 201);
    for (const json of [
      { user: 'Kim', things: ['hall-light'], actions: ['turn_on', 'turn_off'] },
      { user: 'Kim', things: ['*'], actions: ['set_position'] },
      { user: 'Kim', things: ['*'], actions: ['*'] },
    ]) {
      const made = await call('/api/grants', { method: 'POST', json });
      assert.equal(made.status, 201, `${JSON.stringify(json)}: ${made.text}`);
    }
  });

  it('a guest sees and uses a given thing as it is now, but not its history or events', async () => {
    const visitor = await pass(['front-door'], ['unlock', 'lock']);
    assert.equal(visitor.status, 201, visitor.text);
    const token = visitor.body.token as string;

    const door = await call('/api/things/front-door', { token });
    assert.equal(door.status, 200, door.text);
    assert.equal((door.body.state as Json)['lock.locked'], false);
    const unlock = await call('/api/things/front-door/actions/unlock', { method: 'POST', json: {}, token });
    assert.equal(unlock.status, 202, unlock.text);

    for (const path of ['/api/things/front-door/history', '/api/events?thing=front-door']) {
      const past = await call(path, { token });
      assert.equal(past.status, 403, `${path}: ${past.text}`);
      assert.deepEqual(errorOf(past), {
        code: 'forbidden',
        message: "a guest pass shows a thing's current state, not its history",
      });
      assert.equal((await call(path)).status, 200, `${path} stays open to the owner`);
    }

    // A guest account with a grant: the same rule.
    const robin = await call('/api/users', {
      method: 'POST',
      json: { name: 'Robin', role: 'guest', password: 'Robin-secret-pw-1' },
    });
    assert.equal(robin.status, 201, robin.text);
    const granted = await call('/api/grants', {
      method: 'POST',
      json: { user: 'Robin', things: ['front-door'], actions: ['lock'] },
    });
    assert.equal(granted.status, 201, granted.text);
    const robinToken = await call('/api/tokens', { method: 'POST', json: { user: 'Robin', name: "Robin's phone" } });
    assert.equal(robinToken.status, 201, robinToken.text);
    const guest = robinToken.body.token as string;
    assert.equal((await call('/api/things/front-door', { token: guest })).status, 200);
    const history = await call('/api/things/front-door/history', { token: guest });
    assert.equal(history.status, 403, history.text);
    assert.equal(errorOf(history).message, "a guest account shows a thing's current state, not its history");

    const audit = (await call('/api/audit')).body as unknown as Json[];
    assert.ok(
      audit.some(
        (l) => l.result === 'denied' && l.reason === "a guest pass shows a thing's current state, not its history",
      ),
      'the refusal is recorded',
    );
  });
});
