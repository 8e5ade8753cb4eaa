import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { PASS_SCOPE_PREFIX } from '../src/auth/permissions.ts';
import { Hub } from '../src/core/hub.ts';
import { newId } from '../src/core/ids.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

const HOUR = 3_600_000;
const LOCATION = ['location.latitude', 'location.longitude'];

/**
 * What a `*` in a guest pass (or a guest's grant) hands over: the dog walker's "the door and the
 * light, whatever they do" must not open the door, and no wildcard shows a guest where the
 * household's people and cars are.
 */
describe('security: wildcards in guest passes', () => {
  let dataDir: string;
  let hub: Hub;

  const start = async () => {
    hub = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
  };

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
        name: 'Dog walker',
        things,
        actions,
        from: new Date(Date.now() - 60_000).toISOString(),
        to: new Date(Date.now() + HOUR).toISOString(),
      },
    });

  const act = (thing: string, action: string, token: string, input: Json = {}) =>
    call(`/api/things/${thing}/actions/${action}`, { method: 'POST', json: input, token });

  const errorOf = (answer: { body: Json }) => answer.body.error as { code: string; message: string };

  /** A pass as one made before passes had to name their things: straight into the accounts. */
  const storedWildcardPass = async (): Promise<{ id: string; token: string }> => {
    const now = Date.now();
    const id = newId(now, 'gp_');
    const { secret, record } = await hub.security.tokens.create({
      householdId: hub.householdId,
      name: 'House sitter',
      role: 'guest',
      scopes: [PASS_SCOPE_PREFIX + id],
      expiresAt: now + HOUR,
    });
    await hub.security.accounts.savePass({
      id,
      householdId: hub.householdId,
      name: 'House sitter',
      things: ['*'],
      actions: ['*'],
      from: now - 60_000,
      to: now + HOUR,
      tokenId: record.id,
      createdAt: now,
      revokedAt: null,
    });
    return { id, token: secret };
  };

  /** Where Alex is, as their phone reports it. */
  const alexMoves = (latitude: number) => {
    const ts = Date.now();
    hub.core.ingest(
      ['alex', 'alex-phone'].flatMap((thing) => [
        { householdId: hub.householdId, thing, property: 'location.latitude', value: latitude, ts, source: 'test' },
        { householdId: hub.householdId, thing, property: 'location.longitude', value: 13.4, ts, source: 'test' },
      ]),
    );
  };

  /** What a guest's stream says after subscribing to `*` with a snapshot, then while Alex moves. */
  const streamed = async (token: string): Promise<Json[]> => {
    const socket = new WebSocket(`${hub.httpUrl.replace('http', 'ws')}/api/stream?token=${token}`);
    const messages: Json[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Json));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'subscribe', things: ['*'], snapshot: true }));
    await eventually(() => messages.some((m) => m.type === 'snapshot.end'), { what: 'the snapshot' });
    alexMoves(52.5 + Math.random() / 100);
    // A change the guest does hear, so that hearing nothing of Alex is not just not waiting long enough.
    const lit = hub.core.getValue(hub.householdId, 'hall-light', 'light.on') === true;
    hub.core.ingest([
      {
        householdId: hub.householdId,
        thing: 'hall-light',
        property: 'light.on',
        value: !lit,
        ts: Date.now(),
        source: 'test',
      },
    ]);
    await eventually(() => messages.some((m) => m.type === 'state' && m.thing === 'hall-light'), {
      what: "the hall light's change",
    });
    socket.send(JSON.stringify({ type: 'subscribe', things: ['alex'] }));
    await eventually(() => messages.some((m) => m.type === 'error'), { what: 'the answer to subscribing to alex' });
    socket.close();
    return messages;
  };

  /** What a guest sees of the household, and that people and cars are not there. */
  const assertSeesOnlyDevices = async (token: string) => {
    const things = await call('/api/things', { token });
    assert.equal(things.status, 200, things.text);
    assert.deepEqual(things.body.map((t) => t.id).sort(), ['front-door', 'hall-light']);
    for (const id of ['alex', 'alex-phone', 'family-car']) {
      const one = await call(`/api/things/${id}`, { token });
      assert.equal(one.status, 404, `${id}: ${one.text}`);
      const where = await call(`/api/things/${id}/properties/location.latitude`, { token });
      assert.equal(where.status, 404, `${id}'s position: ${where.text}`);
    }
    const messages = await streamed(token);
    const thingsHeardOf = new Set(messages.map((m) => m.thing).filter((thing) => thing !== undefined));
    assert.deepEqual([...thingsHeardOf].sort(), ['front-door', 'hall-light'], JSON.stringify(messages));
    const refused = messages.find((m) => m.type === 'error') as { error: { code: string } };
    assert.equal(refused.error.code, 'not_found', 'subscribing to a person by name is as for no such thing');
    // A VISS session for the car asks the same question (VehicleService.vissSource).
    const principal = await hub.security.tokens.verify(token);
    assert.ok(principal);
    assert.equal(hub.security.permissions.wasGiven(principal, 'family-car'), false, 'no VISS session for the car');
    assert.equal(hub.security.permissions.wasGiven(principal, 'hall-light'), true);
  };

  before(async () => {
    dataDir = await tempDir('triad-guest-wildcards-');
    await start();
    const householdId = hub.householdId;
    await addFrontDoorAndHallLight(hub);
    await hub.core.upsertThing({
      id: 'alex',
      householdId,
      kind: 'person',
      name: 'Alex',
      adapter: 'test',
      properties: vocabularyProperties(LOCATION),
      actions: {},
    });
    await hub.core.upsertThing({
      id: 'alex-phone',
      householdId,
      kind: 'tracker',
      name: "Alex's phone",
      adapter: 'test',
      properties: vocabularyProperties(LOCATION),
      actions: {},
    });
    await hub.core.upsertThing({
      id: 'family-car',
      householdId,
      kind: 'vehicle',
      name: 'Family car',
      adapter: 'test',
      properties: vocabularyProperties([...LOCATION, 'charging.limit']),
      actions: { ...vocabularyActions('vehicle'), ...vocabularyActions('charging', ['set_limit']) },
    });
    hub.core.ingest([
      { householdId, thing: 'front-door', property: 'lock.locked', value: true, ts: Date.now(), source: 'test' },
    ]);
    alexMoves(52.52);
  });

  after(async () => {
    await hub.stop();
  });

  it('a pass with actions `*` on a lock locks it and runs its other things, but does not unlock (403, saying why)', async () => {
    const walker = await pass(['front-door', 'hall-light'], ['*']);
    assert.equal(walker.status, 201, walker.text);
    const token = walker.body.token as string;

    const unlock = await act('front-door', 'unlock', token);
    assert.equal(unlock.status, 403, unlock.text);
    assert.deepEqual(errorOf(unlock), {
      code: 'forbidden',
      message: 'unlock on front-door needs a guest pass that names it: "*" never covers unlocking or a car',
    });
    assert.equal((await act('front-door', 'lock', token)).status, 202, 'the plain actions of the lock');
    assert.equal((await act('hall-light', 'turn_on', token)).status, 202, 'and of its other things');
    assert.equal((await act('hall-light', 'turn_off', token)).status, 202);

    const audit = (await call('/api/audit')).body as unknown as Json[];
    assert.ok(
      audit.some(
        (l) =>
          (l.actor as Json).id === walker.body.id &&
          l.action === 'unlock' &&
          l.result === 'denied' &&
          String(l.reason).includes('needs a guest pass that names it'),
      ),
      'the refusal is recorded',
    );
  });

  it('a pass that names unlock unlocks; one naming a car with actions `*` cannot honk it or plan its charge', async () => {
    const plumber = await pass(['front-door'], ['unlock', 'lock']);
    assert.equal(plumber.status, 201, plumber.text);
    assert.equal((await act('front-door', 'unlock', plumber.body.token as string)).status, 202);
    const both = await pass(['front-door', 'hall-light'], ['*', 'unlock']);
    assert.equal(both.status, 201, both.text);
    assert.equal((await act('front-door', 'unlock', both.body.token as string)).status, 202, '`*` and unlock');

    const valet = await pass(['family-car'], ['*']);
    assert.equal(valet.status, 201, valet.text);
    const token = valet.body.token as string;
    assert.equal((await call('/api/things/family-car', { token })).status, 200, 'the car it names, it sees');
    for (const [action, input] of [
      ['honk', {}],
      ['set_limit', { limit: 100 }],
    ] as const) {
      const refused = await act('family-car', action, token, input);
      assert.equal(refused.status, 403, `${action}: ${refused.text}`);
      assert.match(errorOf(refused).message, new RegExp(`^${action} on family-car needs a guest pass that names it`));
    }
    const honker = await pass(['family-car'], ['honk']);
    assert.equal((await act('family-car', 'honk', honker.body.token as string)).status, 202, 'named, it may');
  });

  it('refuses a pass for `*` things (400, naming why) and makes nothing', async () => {
    const before = (await call('/api/guest-passes')).body.length;
    for (const things of [['*'], ['hall-light', '*']]) {
      const everything = await pass(things, ['*']);
      assert.equal(everything.status, 400, everything.text);
      assert.deepEqual(errorOf(everything), {
        code: 'bad_request',
        message:
          'a guest pass names its things: "*" is not allowed for things (list the ids, e.g. ["front-door","hall-light"])',
      });
    }
    assert.equal((await call('/api/guest-passes')).body.length, before, 'no pass was made');
  });

  it('a pass stored with `*` things still loads, and shows and runs the devices only: no people, trackers or cars', async () => {
    const sitter = await storedWildcardPass();
    const check = async () => {
      await assertSeesOnlyDevices(sitter.token);
      assert.equal((await act('hall-light', 'turn_on', sitter.token)).status, 202);
      assert.equal((await act('front-door', 'lock', sitter.token)).status, 202);
      const unlock = await act('front-door', 'unlock', sitter.token);
      assert.equal(unlock.status, 403, unlock.text);
      assert.match(errorOf(unlock).message, /needs a guest pass that names it/);
      const honk = await act('family-car', 'honk', sitter.token);
      assert.equal(honk.status, 404, `a car it does not see does not exist for it: ${honk.text}`);
    };
    await check();

    // And after a restart: the hub starts with it, and it means the same.
    await hub.stop();
    await start();
    const listed = (await call('/api/guest-passes')).body.find((p) => p.id === sitter.id);
    assert.deepEqual(listed?.things, ['*'], 'the stored pass is kept as it was');
    await check();
  });

  it('a guest account with a `*` grant does not see people, trackers or cars either', async () => {
    const robin = await call('/api/users', {
      method: 'POST',
      json: { name: 'Robin', role: 'guest', password: 'Robin-secret-pw-1' },
    });
    assert.equal(robin.status, 201, robin.text);
    const grant = await call('/api/grants', { method: 'POST', json: { user: 'Robin', things: ['*'], actions: ['*'] } });
    assert.equal(grant.status, 201, grant.text);
    const token = await call('/api/tokens', { method: 'POST', json: { user: 'Robin', name: "Robin's phone" } });
    assert.equal(token.status, 201, token.text);
    await assertSeesOnlyDevices(token.body.token as string);

    // Named in a grant, a person is seen: the wildcard is what does not reach them.
    await call('/api/grants', { method: 'POST', json: { user: 'Robin', things: ['alex'], actions: ['*'] } });
    assert.equal((await call('/api/things/alex', { token: token.body.token as string })).status, 200);
  });
});
