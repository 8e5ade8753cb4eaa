import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { createTriad } from '../src/triad.ts';
import { selfSignedCertificate } from './helpers/certificate.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

async function startHub(extra: Partial<Parameters<typeof createTriad>[0]> = {}): Promise<Hub> {
  const hub = createTriad({
    dataDir: await tempDir(),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    log: createLogger({ level: 'silent' }),
    rateLimits: { api: { burst: 100_000, perSecond: 100_000 } },
    ...extra,
  });
  await hub.start();
  return hub;
}

/** A lock, a room light and a car in a household, as things the hub holds. */
async function addThings(hub: Hub, householdId: string): Promise<void> {
  const lock = vocabularyActions('lock');
  await hub.core.upsertThing({
    id: 'front_door',
    householdId,
    kind: 'device',
    name: 'Front door',
    adapter: 'test',
    properties: vocabularyProperties(['lock.locked']),
    actions: lock,
  });
  await hub.core.upsertThing({
    id: 'kids_light',
    householdId,
    kind: 'device',
    name: 'Kids room light',
    adapter: 'test',
    properties: vocabularyProperties(['light.on']),
    actions: vocabularyActions('light'),
  });
  await hub.core.upsertThing({
    id: 'car',
    householdId,
    kind: 'vehicle',
    name: 'Car',
    adapter: 'test',
    properties: vocabularyProperties(['lock.locked']),
    actions: lock,
  });
}

function client(hub: Hub) {
  return async (path: string, init: RequestInit & { token?: string | null; json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? hub.ownerToken : init.token;
    if (token) headers.set('authorization', `Bearer ${token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed as Json & Json[], headers: res.headers, text };
  };
}

describe('security: people, roles, grants, guest passes and the audit trail', () => {
  let hub: Hub;
  let call: ReturnType<typeof client>;
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};

  before(async () => {
    hub = await startHub();
    call = client(hub);
    await addThings(hub, hub.householdId);
    for (const [name, role] of [
      ['Alex', 'adult'],
      ['Kim', 'child'],
    ] as const) {
      const made = await call('/api/users', { method: 'POST', json: { name, role, password: `${name}-secret-pw-1` } });
      assert.equal(made.status, 201, made.text);
      users[name] = made.body.id as string;
      const token = await call('/api/tokens', { method: 'POST', json: { user: name, name: `${name}'s phone` } });
      assert.equal(token.status, 201, token.text);
      tokens[name] = token.body.token as string;
    }
    const grant = await call('/api/grants', {
      method: 'POST',
      json: { user: 'Kim', things: ['kids_light'], actions: ['turn_on', 'turn_off', 'toggle'] },
    });
    assert.equal(grant.status, 201, grant.text);
  });

  after(async () => {
    await hub.stop();
  });

  const act = (thing: string, action: string, token: string) =>
    call(`/api/things/${thing}/actions/${action}`, { method: 'POST', json: {}, token });

  it("a child's token cannot unlock the car or the front door, but switches their room's light; an adult's unlocks", async () => {
    for (const thing of ['car', 'front_door']) {
      const denied = await act(thing, 'unlock', tokens.Kim);
      assert.equal(denied.status, 403, `${thing}: ${denied.text}`);
      assert.equal((denied.body.error as Json).code, 'forbidden');
    }
    assert.equal((await act('kids_light', 'turn_on', tokens.Kim)).status, 202);
    assert.equal((await act('car', 'unlock', tokens.Alex)).status, 202);
    assert.equal((await act('front_door', 'unlock', tokens.Alex)).status, 202);

    const audit = await call('/api/audit');
    assert.equal(audit.status, 200);
    const lines = audit.body as unknown as Array<Json & { actor: Json }>;
    const denial = lines.find((l) => l.thing === 'car' && l.result === 'denied');
    assert.ok(denial, 'the denial is in the audit trail');
    assert.equal(denial.actor.name, 'Kim');
    assert.equal(denial.via, 'http');
    assert.equal(denial.action, 'unlock');
    assert.ok(lines.some((l) => l.thing === 'car' && l.result === 'accepted' && (l.actor as Json).name === 'Alex'));
  });

  it('audits who changed or fired a rule, not each command the rule then sends', async () => {
    const rule = {
      id: 'kids-light-button',
      triggers: [{ trigger: 'webhook', webhook_id: 'kids-light-button-4b1d' }],
      actions: [{ action: 'turn_on', thing: 'kids_light' }],
    };
    const made = await call('/api/automations', { method: 'POST', json: rule });
    assert.equal(made.status, 201, made.text);
    const fired = await call('/api/automations/webhooks/kids-light-button-4b1d', { method: 'POST', json: {} });
    assert.equal(fired.status, 200, fired.text);
    const events = await eventually(async () => {
      const answer = await call('/api/events?type=command');
      const list = answer.body as unknown as Array<{ command: Json }>;
      return list.some((e) => e.command.issuedBy === 'rule:kids-light-button') && list;
    });
    assert.ok(events.length > 0);

    // Reading the rule is not a change, whatever the method (Fastify answers HEAD on GET routes).
    assert.equal((await call('/api/automations/kids-light-button', { method: 'HEAD' })).status, 200);

    const lines = (await call('/api/audit')).body as unknown as Array<Json & { actor: Json }>;
    const change = lines.find((l) => l.action === 'POST /api/automations kids-light-button');
    assert.ok(change, 'creating the rule is in the audit trail, with its id');
    assert.equal(change.result, 'accepted');
    assert.equal(change.actor.name, 'owner');
    const firing = lines.find((l) => l.action === 'POST /api/automations/webhooks/:id kids-light-button-4b1d');
    assert.ok(firing, 'firing a webhook rule is in the audit trail: it is what set the rule acting');
    assert.equal(firing.actor.name, 'owner');
    assert.equal(
      lines.some((l) => String(l.action).startsWith('HEAD ') || String(l.action).startsWith('GET ')),
      false,
      'reads are not changes',
    );
    assert.equal(
      lines.some((l) => l.actor.kind === 'rule' && l.result === 'accepted'),
      false,
      "the rule's own command is in its trace, not the audit trail",
    );
  });

  it('even a "*" grant does not let a child unlock: that needs a grant naming the lock', async () => {
    await call('/api/grants', { method: 'POST', json: { user: 'Kim', things: ['*'], actions: ['*'] } });
    assert.equal((await act('front_door', 'unlock', tokens.Kim)).status, 403);
    assert.equal((await act('front_door', 'lock', tokens.Kim)).status, 202);
    await call('/api/grants', { method: 'POST', json: { user: 'Kim', things: ['front_door'], actions: ['unlock'] } });
    assert.equal((await act('front_door', 'unlock', tokens.Kim)).status, 202);
    for (const g of (await call('/api/grants')).body as unknown as Json[]) {
      if ((g.things as string[]).includes('*') || (g.actions as string[]).includes('unlock')) {
        assert.equal((await call(`/api/grants/${g.id}`, { method: 'DELETE' })).status, 204);
      }
    }
    assert.equal(
      (await act('front_door', 'unlock', tokens.Kim)).status,
      403,
      'removing the grant takes effect at once',
    );
  });

  it('a refusal names the person, not the name of the token they used ("Kim\'s phone")', async () => {
    const denied = await act('front_door', 'lock', tokens.Kim);
    assert.equal(denied.status, 403, denied.text);
    assert.equal((denied.body.error as Json).message, 'no grant lets Kim run lock on front_door');
  });

  it('only owners manage accounts and read the audit trail; adults and children get 403', async () => {
    for (const who of ['Alex', 'Kim']) {
      assert.equal((await call('/api/audit', { token: tokens[who] })).status, 403);
      const made = await call('/api/users', {
        method: 'POST',
        json: { name: `x${who}`, role: 'owner', password: 'long-enough-pw' },
        token: tokens[who],
      });
      assert.equal(made.status, 403);
    }
    assert.equal(
      (await call('/api/households', { method: 'POST', json: { name: 'X' }, token: tokens.Alex })).status,
      403,
    );
    const names = ((await call('/api/users')).body as unknown as Json[]).map((u) => u.name);
    assert.deepEqual(names.sort(), ['Alex', 'Kim', 'owner']);
  });

  it('a guest pass for the front door works inside its window and is refused (403, audited) outside it', async () => {
    const now = Date.now();
    const inside = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Cleaner',
        things: ['front_door'],
        actions: ['unlock', 'lock'],
        from: new Date(now - 60_000).toISOString(),
        to: new Date(now + 3_600_000).toISOString(),
      },
    });
    assert.equal(inside.status, 201, inside.text);
    const later = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Saturday visitor',
        things: ['front_door'],
        actions: ['unlock'],
        from: new Date(now + 86_400_000).toISOString(),
        to: new Date(now + 86_400_000 + 7_200_000).toISOString(),
      },
    });
    assert.equal(later.status, 201);

    assert.equal((await act('front_door', 'unlock', inside.body.token as string)).status, 202);
    assert.equal(
      (await act('kids_light', 'turn_on', inside.body.token as string)).status,
      404,
      'other things do not exist for a guest',
    );
    const seen = ((await call('/api/things', { token: inside.body.token as string })).body as unknown as Json[]).map(
      (t) => t.id,
    );
    assert.deepEqual(seen, ['front_door']);
    assert.equal((await call('/api/events', { token: inside.body.token as string })).status, 403);

    const outside = await act('front_door', 'unlock', later.body.token as string);
    assert.equal(outside.status, 403);
    assert.match((outside.body.error as Json).message as string, /valid from/);
    const audit = (await call('/api/audit')).body as unknown as Json[];
    assert.ok(
      audit.some(
        (l) => (l.actor as Json).kind === 'pass' && (l.actor as Json).id === later.body.id && l.result === 'denied',
      ),
    );

    // A pass or a grant names things of the household, or none at all.
    const nowhere = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Ghost',
        things: ['front_door', 'no_such_door'],
        actions: ['unlock'],
        from: inside.body.from,
        to: inside.body.to,
      },
    });
    assert.equal(nowhere.status, 404, nowhere.text);
    assert.match((nowhere.body.error as Json).message as string, /no_such_door/);
    const grant = await call('/api/grants', {
      method: 'POST',
      json: { user: 'Kim', things: ['nope'], actions: ['*'] },
    });
    assert.equal(grant.status, 404, grant.text);
    assert.match((grant.body.error as Json).message as string, /thing "nope"/);

    // Before its window a pass opens nothing, reads included.
    for (const path of ['/api/things', '/api/things/front_door', '/api/things/front_door/properties/lock.locked']) {
      const early = await call(path, { token: later.body.token as string });
      assert.equal(early.status, 403, `${path} before the window: ${early.text}`);
      assert.match((early.body.error as Json).message as string, /valid from/);
    }

    // After its window: refused as a pass outside its window (403, audited), not as an unknown token.
    const brief = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Courier',
        things: ['front_door'],
        actions: ['unlock'],
        from: new Date(Date.now() - 60_000).toISOString(),
        to: new Date(Date.now() + 3_000).toISOString(),
      },
    });
    assert.equal(brief.status, 201, brief.text);
    assert.equal((await call('/api/things', { token: brief.body.token as string })).status, 200, 'inside its window');
    await new Promise((r) => setTimeout(r, Date.parse(brief.body.to as string) - Date.now() + 100));
    const expired = await act('front_door', 'unlock', brief.body.token as string);
    assert.equal(expired.status, 403, expired.text);
    assert.match((expired.body.error as Json).message as string, /valid from/);
    assert.equal((await call('/api/things', { token: brief.body.token as string })).status, 403);
    const lines = (await call('/api/audit')).body as unknown as Json[];
    assert.ok(
      lines.some(
        (l) => (l.actor as Json).kind === 'pass' && (l.actor as Json).id === brief.body.id && l.result === 'denied',
      ),
      'the refusal after the window is audited',
    );

    assert.equal((await call(`/api/guest-passes/${inside.body.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await act('front_door', 'unlock', inside.body.token as string)).status, 401, 'revoked at once');
  });

  it('signs in with a session cookie that needs the CSRF token on unsafe calls, and signs out', async () => {
    const signIn = await call('/api/session', {
      method: 'POST',
      json: { name: 'Alex', password: 'Alex-secret-pw-1' },
      token: null,
    });
    assert.equal(signIn.status, 200, signIn.text);
    const cookies = signIn.headers.getSetCookie();
    assert.ok(cookies.some((c) => /^triad_session=.+HttpOnly; .*SameSite=Strict/.test(c)));
    const cookie = cookies.map((c) => c.split(';')[0]).join('; ');
    const csrf = signIn.body.csrfToken as string;

    assert.equal((await call('/api/things', { headers: { cookie }, token: null })).status, 200);
    const noCsrf = await call('/api/things/front_door/actions/lock', {
      method: 'POST',
      json: {},
      headers: { cookie },
      token: null,
    });
    assert.equal(noCsrf.status, 403);
    assert.equal((noCsrf.body.error as Json).code, 'csrf_failed');
    const wrongCsrf = await call('/api/things/front_door/actions/lock', {
      method: 'POST',
      json: {},
      headers: { cookie, 'x-csrf-token': 'forged' },
      token: null,
    });
    assert.equal(wrongCsrf.status, 403);
    const withCsrf = await call('/api/things/front_door/actions/lock', {
      method: 'POST',
      json: {},
      headers: { cookie, 'x-csrf-token': csrf },
      token: null,
    });
    assert.equal(withCsrf.status, 202);

    const me = await call('/api/session', { headers: { cookie }, token: null });
    assert.equal((me.body.user as Json).name, 'Alex');
    assert.equal(
      (await call('/api/session', { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf }, token: null })).status,
      204,
    );
    assert.equal((await call('/api/things', { headers: { cookie }, token: null })).status, 401);
    assert.equal(
      (await call('/api/session', { method: 'POST', json: { name: 'Alex', password: 'wrong-password' }, token: null }))
        .status,
      401,
    );
  });

  it('the first owner can sign in with the password written next to the owner token', async () => {
    const password = (await readFile(join(hub.ownerTokenPath, '..', 'owner.password'), 'utf8')).trim();
    const signIn = await call('/api/session', { method: 'POST', json: { name: 'owner', password }, token: null });
    assert.equal(signIn.status, 200);
    assert.equal((signIn.body.user as Json).role, 'owner');
  });

  it('limits sign-in attempts per name and address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push(
        (await call('/api/session', { method: 'POST', json: { name: 'Kim', password: `guess-${i}` }, token: null }))
          .status,
      );
    }
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.equal(statuses[5], 429);
    const limited = await call('/api/session', {
      method: 'POST',
      json: { name: 'Kim', password: 'Kim-secret-pw-1' },
      token: null,
    });
    assert.equal(limited.status, 429, 'even the right password waits out the back-off');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
  });

  it('revokes tokens at once and refuses expired ones', async () => {
    const made = await call('/api/tokens', { method: 'POST', json: { user: 'Alex', name: 'script' } });
    const token = made.body.token as string;
    assert.equal((await call('/api/things', { token })).status, 200);
    assert.equal((await call(`/api/tokens/${made.body.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await call('/api/things', { token })).status, 401);

    const short = await call('/api/tokens', {
      method: 'POST',
      json: { user: 'Alex', name: 'short', expiresAt: new Date(Date.now() + 800).toISOString() },
    });
    assert.equal((await call('/api/things', { token: short.body.token as string })).status, 200);
    await new Promise((r) => setTimeout(r, 900));
    assert.equal((await call('/api/things', { token: short.body.token as string })).status, 401);
    const listed = (await call('/api/tokens')).body as unknown as Json[];
    assert.ok(
      listed.every((t) => !('hash' in t) && !('token' in t)),
      'secrets and hashes never leave',
    );
  });

  it('closes a stream when its token is revoked or expires, and a revoked token cannot open one', async () => {
    const open = async (token: string) => {
      const socket = new WebSocket(`${hub.httpUrl.replace('http', 'ws')}/api/stream?token=${token}`);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
      );
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      return { socket, closed };
    };
    const made = await call('/api/tokens', { method: 'POST', json: { user: 'Alex', name: 'dashboard on the wall' } });
    const kept = await call('/api/tokens', { method: 'POST', json: { user: 'Alex', name: 'kitchen tablet' } });
    const revoked = await open(made.body.token as string);
    const other = await open(kept.body.token as string);
    assert.equal((await call(`/api/tokens/${made.body.id}`, { method: 'DELETE' })).status, 204);
    const ended = await Promise.race([revoked.closed, new Promise((r) => setTimeout(() => r('still open'), 2000))]);
    assert.deepEqual(ended, { code: 1008, reason: 'the token was revoked' });
    assert.equal(other.socket.readyState, WebSocket.OPEN, "another token's stream carries on");
    await assert.rejects(open(made.body.token as string), /401/, 'and the revoked token cannot open a new one');

    const short = await call('/api/tokens', {
      method: 'POST',
      json: { user: 'Alex', name: 'visitor screen', expiresAt: new Date(Date.now() + 700).toISOString() },
    });
    const expiring = await open(short.body.token as string);
    const expired = await Promise.race([expiring.closed, new Promise((r) => setTimeout(() => r('still open'), 3000))]);
    assert.deepEqual(expired, { code: 1008, reason: 'the token expired' });
    other.socket.close();
    await other.closed;
  });

  it('answers with security headers', async () => {
    const res = await call('/api/health', { token: null });
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  });

  it('filters the audit trail by time', async () => {
    const future = await call(`/api/audit?since=${new Date(Date.now() + 60_000).toISOString()}`);
    assert.deepEqual(future.body, []);
    const one = await call('/api/audit?limit=1');
    assert.equal((one.body as unknown as Json[]).length, 1);
    assert.equal((await call('/api/audit?since=yesterday')).status, 400);
  });
});

describe('security: MQTT device credentials', () => {
  let hub: Hub;
  let call: ReturnType<typeof client>;
  let brokerUrl: string;

  before(async () => {
    hub = await startHub();
    call = client(hub);
    brokerUrl = hub.mqttUrl;
  });
  after(async () => {
    await hub.stop();
  });

  /** Connects as a device account made by POST /api/devices. */
  const connect = (device: Json) =>
    mqtt.connectAsync(brokerUrl, {
      username: device.username as string,
      password: device.password as string,
      reconnectPeriod: 0,
      connectTimeout: 2000,
    });

  it('refuses clients without credentials or with wrong ones', async () => {
    await assert.rejects(mqtt.connectAsync(brokerUrl, { reconnectPeriod: 0, connectTimeout: 2000 }));
    await assert.rejects(
      mqtt.connectAsync(brokerUrl, {
        username: 'nobody',
        password: 'nothing',
        reconnectPeriod: 0,
        connectTimeout: 2000,
      }),
    );
  });

  it('removing a device account cuts off its connected client, and it cannot connect again', async () => {
    const made = await call('/api/devices', { method: 'POST', json: { name: 'Old plug' } });
    const kept = await call('/api/devices', { method: 'POST', json: { name: 'New plug' } });
    assert.equal(made.status, 201, made.text);
    const [old, other] = await Promise.all([connect(made.body), connect(kept.body)]);
    const closed = new Promise<string>((resolve) => old.once('close', () => resolve('closed')));
    assert.equal((await call(`/api/devices/${made.body.id}`, { method: 'DELETE' })).status, 204);
    assert.equal(
      await Promise.race([closed, new Promise((r) => setTimeout(() => r('still connected'), 2000))]),
      'closed',
    );
    assert.ok(other.connected, "another device's client stays connected");
    await assert.rejects(connect(made.body), 'the removed account cannot log in again');
    await other.endAsync();
    await old.endAsync(true);
  });

  it('a device name or base topic holding + or # is refused: it would be a wildcard in the ACL', async () => {
    const before = ((await call('/api/devices')).body as unknown as unknown[]).length;
    for (const json of [
      { name: '#' },
      { name: 'Hall +' },
      { name: 'Plug', baseTopic: 'zigbee2mqtt/+' },
      { name: 'Plug', baseTopic: '#' },
      { name: 'Plug', baseTopic: 'zigbee2mqtt/plug#1' },
    ]) {
      const made = await call('/api/devices', { method: 'POST', json });
      assert.equal(made.status, 400, `${JSON.stringify(json)}: ${made.text}`);
      assert.equal((made.body.error as Json).code, 'bad_request');
      assert.match((made.body.error as Json).message as string, /\+ or #/);
    }
    assert.equal(((await call('/api/devices')).body as unknown as unknown[]).length, before, 'no account was made');
    // An explicit list of filters is the owner's own choice, and stays allowed.
    const bridge = await call('/api/devices', {
      method: 'POST',
      json: { name: 'Bridge', baseTopic: 'bridge', publish: ['bridge/#'], subscribe: ['bridge/+/set'] },
    });
    assert.equal(bridge.status, 201, bridge.text);
    assert.deepEqual(bridge.body.publish, ['bridge/#']);
  });

  it("a device that publishes on another device's topic is refused by the broker", async () => {
    const porch = await call('/api/devices', { method: 'POST', json: { name: 'Porch' } });
    const garage = await call('/api/devices', { method: 'POST', json: { name: 'Garage' } });
    assert.equal(porch.status, 201, porch.text);
    const porchClient = await connect(porch.body);
    const config = {
      name: null,
      unique_id: 'porch_light',
      command_topic: 'zigbee2mqtt/Porch/set',
      state_topic: 'zigbee2mqtt/Porch',
      schema: 'json',
      device: { identifiers: ['porch'], name: 'Porch' },
    };
    await porchClient.publishAsync('homeassistant/light/porch/light/config', JSON.stringify(config), {
      retain: true,
      qos: 1,
    });
    await porchClient.publishAsync('zigbee2mqtt/Porch', JSON.stringify({ state: 'OFF' }), { retain: true, qos: 1 });
    const thing = await eventually(
      async () => {
        const things = (await call('/api/things')).body as unknown as Array<Json & { state: Json }>;
        return things.find((t) => t.name === 'Porch' && (t.state as Json)['light.on'] === false);
      },
      { what: 'the porch light to be discovered' },
    );

    const garageClient = await connect(garage.body);
    const closed = new Promise<void>((resolve) => garageClient.once('close', () => resolve()));
    garageClient.publish('zigbee2mqtt/Porch', JSON.stringify({ state: 'ON' }), { qos: 1 });
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    const after = (await call(`/api/things/${thing.id}`)).body as unknown as { state: Json };
    assert.equal((after.state as Json)['light.on'], false, "the porch light's state did not change");

    // Nor may a device listen to another device's commands.
    const spy = await connect(garage.body);
    const granted = await spy.subscribeAsync('zigbee2mqtt/Porch/set').then(
      (grants) => grants[0].qos,
      () => 128,
    );
    assert.equal(granted, 128, 'the subscription is refused');
    await spy.endAsync();
    await porchClient.endAsync();
    await garageClient.endAsync(true);
    const audit = (await call('/api/audit')).body as unknown as Json[];
    assert.ok(audit.some((l) => l.via === 'mqtt' && l.result === 'denied' && (l.actor as Json).name === 'Garage'));
  });
});

describe('security: two households on one hub', () => {
  let hub: Hub;
  let call: ReturnType<typeof client>;
  let tokenB = '';
  const idsOfA = new Set<string>();

  before(async () => {
    hub = await startHub();
    call = client(hub);
    await addThings(hub, hub.householdId);
    const made = await call('/api/households', { method: 'POST', json: { name: 'Neighbours' } });
    assert.equal(made.status, 201, made.text);
    tokenB = made.body.token as string;
    // A's records of every kind, so the matrix can try each id from B.
    const user = await call('/api/users', {
      method: 'POST',
      json: { name: 'Alex', role: 'adult', password: 'Alex-secret-pw' },
    });
    const token = await call('/api/tokens', { method: 'POST', json: { user: 'Alex', name: 'A token' } });
    const grant = await call('/api/grants', {
      method: 'POST',
      json: { user: 'Alex', things: ['car'], actions: ['unlock'] },
    });
    const pass = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'A pass',
        things: ['front_door'],
        actions: ['unlock'],
        from: new Date().toISOString(),
        to: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    const device = await call('/api/devices', { method: 'POST', json: { name: 'A device' } });
    const command = await call('/api/things/front_door/actions/lock', { method: 'POST', json: {} });
    const person = await call('/api/people', { method: 'POST', json: { name: 'Ada' } });
    for (const r of [user, token, grant, pass, device, person]) idsOfA.add(r.body.id as string);
    idsOfA.add(command.body.commandId as string);
    for (const id of ['front_door', 'kids_light', 'car']) idsOfA.add(id);
  });
  after(async () => {
    await hub.stop();
  });

  it("no route in the OpenAPI document reads or changes A's data with B's token", async () => {
    const doc = (await call('/api/openapi.json', { token: null })).body as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    const thingsBefore = (await call('/api/things')).text;
    const usersBefore = (await call('/api/users')).text;
    let tried = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (path === '/api/stream' || path === '/api/owntracks' || path === '/api/session') continue;
      for (const method of Object.keys(methods)) {
        const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const fills =
          params.length === 0
            ? [path]
            : [...idsOfA].map((id) =>
                path.replace(/\{(\w+)\}/g, (_, name) =>
                  name === 'action' ? 'unlock' : name === 'property' ? 'lock.locked' : id,
                ),
              );
        for (const url of fills) {
          tried++;
          const res = await call(url, {
            method: method.toUpperCase(),
            json: ['post', 'put', 'patch'].includes(method) ? {} : undefined,
            token: tokenB,
          });
          assert.ok(res.status < 500, `${method} ${url}: ${res.status}`);
          if (res.status < 300) {
            for (const id of idsOfA) {
              assert.ok(!res.text.includes(`"${id}"`), `${method} ${url} answered B with A's ${id}`);
            }
          }
        }
      }
    }
    assert.ok(tried > 30);
    assert.equal((await call('/api/things')).text, thingsBefore, "A's things are unchanged");
    assert.equal((await call('/api/users')).text, usersBefore, "A's users are unchanged");
    assert.equal(
      (await call('/api/things/front_door/actions/unlock', { method: 'POST', json: {}, token: tokenB })).status,
      404,
    );
  });

  it('a name both households use signs in by its password, and tells a stranger nothing', async () => {
    const signIn = (json: Json) => call('/api/session', { method: 'POST', json, token: null });
    assert.equal(
      (await call('/api/users', { method: 'POST', json: { name: 'Sam', role: 'adult', password: 'Sam-of-A-pw-1' } }))
        .status,
      201,
    );
    const inB = await call('/api/users', {
      method: 'POST',
      json: { name: 'Sam', role: 'adult', password: 'Sam-of-B-pw-1' },
      token: tokenB,
    });
    assert.equal(inB.status, 201, inB.text);
    const a = await signIn({ name: 'Sam', password: 'Sam-of-A-pw-1' });
    assert.equal(a.status, 200, a.text);
    assert.equal((a.body.user as Json).householdId, hub.householdId);
    const b = await signIn({ name: 'sam', password: 'Sam-of-B-pw-1' });
    assert.equal(b.status, 200, b.text);
    assert.equal((b.body.user as Json).householdId, inB.body.householdId);
    const wrong = await signIn({ name: 'Sam', password: 'not-either-pw' });
    assert.equal(wrong.status, 401, 'a wrong password learns nothing of the other household');
    assert.equal((wrong.body.error as Json).message, 'wrong name or password');
  });

  it("B's stream carries nothing of A", async () => {
    const url = `${hub.httpUrl.replace('http', 'ws')}/api/stream?token=${tokenB}`;
    const socket = new WebSocket(url);
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(String(data)));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'subscribe', things: ['*'], snapshot: true }));
    await eventually(() => messages.some((m) => m.includes('snapshot.end')), { what: 'the snapshot' });
    hub.core.ingest([
      {
        householdId: hub.householdId,
        thing: 'front_door',
        property: 'lock.locked',
        value: true,
        ts: Date.now(),
        source: 'test',
      },
    ]);
    await call('/api/things/front_door/actions/unlock', { method: 'POST', json: {} });
    await new Promise((r) => setTimeout(r, 300));
    socket.close();
    for (const m of messages) assert.ok(!/front_door|kids_light|"car"/.test(m), `B got ${m}`);
  });

  /** Connects to the hub's broker as a device account made by POST /api/devices. */
  const connectDevice = (d: Json) =>
    mqtt.connectAsync(hub.mqttUrl, {
      username: d.username as string,
      password: d.password as string,
      reconnectPeriod: 0,
    });

  it('over MQTT, each household sees only its own devices', async () => {
    const deviceA = (await call('/api/devices', { method: 'POST', json: { name: 'Lamp' } })).body;
    const deviceB = (await call('/api/devices', { method: 'POST', json: { name: 'Lamp' }, token: tokenB })).body;
    const [a, b] = await Promise.all([connectDevice(deviceA), connectDevice(deviceB)]);
    const heardByB: string[] = [];
    b.on('message', (topic) => heardByB.push(topic));
    await b.subscribeAsync('zigbee2mqtt/Lamp/set');
    const config = (who: string) =>
      JSON.stringify({
        name: null,
        unique_id: `lamp_${who}`,
        command_topic: 'zigbee2mqtt/Lamp/set',
        state_topic: 'zigbee2mqtt/Lamp',
        schema: 'json',
        device: { identifiers: [`lamp_${who}`], name: `Lamp ${who}` },
      });
    await a.publishAsync('homeassistant/light/lamp/light/config', config('A'), { retain: true, qos: 1 });
    await a.publishAsync('zigbee2mqtt/Lamp', JSON.stringify({ state: 'ON' }), { retain: true, qos: 1 });
    await b.publishAsync('homeassistant/light/lamp/light/config', config('B'), { retain: true, qos: 1 });
    await b.publishAsync('zigbee2mqtt/Lamp', JSON.stringify({ state: 'OFF' }), { retain: true, qos: 1 });

    const lampOf = async (token: string) =>
      ((await call('/api/things', { token })).body as unknown as Array<Json & { state: Json }>).find((t) =>
        String(t.name).startsWith('Lamp'),
      );
    const lampA = await eventually(() => lampOf(hub.ownerToken), { what: "A's lamp" });
    const lampB = await eventually(() => lampOf(tokenB), { what: "B's lamp" });
    assert.equal(lampA.name, 'Lamp A');
    assert.equal(lampB.name, 'Lamp B');
    await eventually(async () => ((await lampOf(tokenB))?.state as Json | undefined)?.['light.on'] === false, {
      what: "B's state",
    });
    assert.equal(
      ((await lampOf(hub.ownerToken))?.state as Json | undefined)?.['light.on'],
      true,
      "B's report did not touch A's lamp",
    );

    // A command to A's lamp reaches A's device only.
    await call(`/api/things/${lampA.id}/actions/turn_off`, { method: 'POST', json: {} });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(heardByB, []);
    await a.endAsync();
    await b.endAsync();
  });

  it("a device of A that names B's topic as its state topic reads nothing of B", async () => {
    const householdB = (await call('/api/household', { token: tokenB })).body.id as string;
    const deviceA = (await call('/api/devices', { method: 'POST', json: { name: 'Snoop' } })).body;
    const deviceB = (await call('/api/devices', { method: 'POST', json: { name: 'Thermo' }, token: tokenB })).body;
    const [a, b] = await Promise.all([connectDevice(deviceA), connectDevice(deviceB)]);
    const sensor = (id: string, stateTopic: string) =>
      JSON.stringify({
        name: null,
        unique_id: id,
        state_topic: stateTopic,
        device_class: 'temperature',
        unit_of_measurement: '°C',
        device: { identifiers: [id], name: id },
      });
    // On the wire B's device publishes under households/<B>/; A's device points its sensor there.
    await a.publishAsync(
      'homeassistant/sensor/snoop/temperature/config',
      sensor('snoop', `households/${householdB}/zigbee2mqtt/Thermo`),
      { retain: true, qos: 1 },
    );
    await b.publishAsync('homeassistant/sensor/thermo/temperature/config', sensor('thermo', 'zigbee2mqtt/Thermo'), {
      retain: true,
      qos: 1,
    });
    const thingNamed = async (name: string, token: string) =>
      ((await call('/api/things', { token })).body as unknown as Array<Json & { state: Json }>).find(
        (t) => t.name === name,
      );
    // A's config is refused outright now (a device account's config may read only topics it
    // publishes itself, see discovery-accounts.test.ts); either way it reads nothing of B.
    await eventually(() => thingNamed('thermo', tokenB), { what: "B's sensor" });
    await b.publishAsync('zigbee2mqtt/Thermo', '21.5', { qos: 1 });
    await eventually(async () => (await thingNamed('thermo', tokenB))?.state['sensor.temperature'] === 21.5, {
      what: "B's reading",
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await thingNamed('snoop', hub.ownerToken))?.state['sensor.temperature'] ?? null, null);
    await a.endAsync();
    await b.endAsync();
  });

  it("an MQTT charger of A announced on B's topics neither reads nor commands B's device", async () => {
    const householdB = (await call('/api/household', { token: tokenB })).body.id as string;
    const deviceA = (await call('/api/devices', { method: 'POST', json: { name: 'Box' } })).body;
    const deviceB = (await call('/api/devices', { method: 'POST', json: { name: 'Socket' }, token: tokenB })).body;
    const [a, b] = await Promise.all([connectDevice(deviceA), connectDevice(deviceB)]);
    const heardByB: string[] = [];
    b.on('message', (topic) => heardByB.push(topic));
    await b.subscribeAsync('zigbee2mqtt/Socket/set');
    const theirs = `households/${householdB}/zigbee2mqtt/Socket`;
    const device = { identifiers: ['box'], name: 'Box' };
    await a.publishAsync(
      'homeassistant/switch/box/enabled/config',
      JSON.stringify({ command_topic: `${theirs}/set`, state_topic: theirs, device }),
      { retain: true, qos: 1 },
    );
    await a.publishAsync(
      'homeassistant/number/box/current/config',
      JSON.stringify({ command_topic: `${theirs}/current`, unit_of_measurement: 'A', device }),
      { retain: true, qos: 1 },
    );
    await eventually(async () => (await call('/api/things/charger-box')).status === 200, { what: "A's charger" });
    await b.publishAsync('zigbee2mqtt/Socket', 'ON', { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    const charger = (await call('/api/things/charger-box')).body as unknown as Json & { state: Json };
    assert.equal(charger.state['charging.charging'] ?? null, null, "B's switch is not A's charger's state");
    await call('/api/things/charger-box/actions/start', { method: 'POST', json: {} });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(heardByB, [], "nothing A's hub does reaches B's device");
    await a.endAsync();
    await b.endAsync();
  });

  it("a rule's MQTT trigger hears its own household's messages only, by their plain topics", async () => {
    const deviceA = (await call('/api/devices', { method: 'POST', json: { name: 'Meter' } })).body;
    const deviceB = (await call('/api/devices', { method: 'POST', json: { name: 'Meter' }, token: tokenB })).body;
    const rule = (id: string, topic: string) => ({
      id,
      triggers: [{ trigger: 'mqtt', topic }],
      actions: [{ action: 'notify', message: '{{ trigger.topic }} {{ trigger.payload }}' }],
    });
    // Each household listens to everything it can, and B to its own device's topic by name.
    for (const [body, token] of [
      [rule('hears-all-a', '#'), hub.ownerToken],
      [rule('hears-all-b', '#'), tokenB],
      [rule('meter-b', 'zigbee2mqtt/Meter'), tokenB],
    ] as const)
      assert.equal((await call('/api/automations', { method: 'POST', json: body, token })).status, 201);
    const [a, b] = await Promise.all([connectDevice(deviceA), connectDevice(deviceB)]);
    await a.publishAsync('zigbee2mqtt/Meter', '{"power": 1, "note": "a-only"}', { qos: 1 });
    await b.publishAsync('zigbee2mqtt/Meter', '{"power": 2, "note": "b-only"}', { qos: 1 });
    await a.endAsync();
    await b.endAsync();
    /** What each of a rule's runs heard: its trigger's topic and payload. */
    const heard = async (id: string, token: string) =>
      ((await call(`/api/automations/${id}/traces?limit=100`, { token })).body as unknown as Array<{ trigger: Json }>)
        .map((t) => `${t.trigger.topic} ${t.trigger.payload}`)
        .sort();
    await eventually(async () => (await heard('meter-b', tokenB)).length === 1, { what: "B's rule on its meter" });
    assert.deepEqual(await heard('meter-b', tokenB), ['zigbee2mqtt/Meter {"power": 2, "note": "b-only"}']);
    await eventually(async () => (await heard('hears-all-a', hub.ownerToken)).some((h) => h.includes('a-only')), {
      what: "A's rule on its meter",
    });
    for (const h of await heard('hears-all-a', hub.ownerToken)) assert.doesNotMatch(h, /b-only|households\//, h);
    const all = await heard('hears-all-b', tokenB);
    assert.ok(all.includes('zigbee2mqtt/Meter {"power": 2, "note": "b-only"}'), all.join('\n'));
    for (const h of all) assert.doesNotMatch(h, /a-only/, h);
  });
});

describe('security: fuzzing every route', () => {
  let hub: Hub;
  let call: ReturnType<typeof client>;
  before(async () => {
    hub = await startHub();
    call = client(hub);
    await addThings(hub, hub.householdId);
  });
  after(async () => {
    await hub.stop();
  });

  it('takes an empty body sent as JSON as no body, on every route: never a 5xx', async () => {
    const doc = (await call('/api/openapi.json', { token: null })).body as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path !== '/api/stream')
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => ({ path, method: m.toUpperCase() })))
      .filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    for (const route of routes) {
      const path = route.path.replace(/\{\w+\}/g, 'no-such-id');
      const res = await call(path, { method: route.method, body: '', headers: { 'content-type': 'application/json' } });
      assert.ok(res.status < 500, `${route.method} ${path}: ${res.status} ${res.text}`);
      assert.notEqual(
        ((res.body as Json | null)?.error as Json | undefined)?.code,
        'invalid_json',
        `${route.method} ${path}: ${res.text}`,
      );
    }
    // A route that needs no body takes one that is empty: here, enabling a rule.
    const made = await call('/api/automations', {
      method: 'POST',
      json: {
        id: 'quiet',
        triggers: [{ trigger: 'time', at: '03:00' }],
        actions: [{ action: 'notify', message: 'x' }],
      },
    });
    assert.equal(made.status, 201, made.text);
    const enabled = await call('/api/automations/quiet/enable', {
      method: 'POST',
      body: '',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(enabled.status, 200, enabled.text);
  });

  it('quotes a hostile path shortened in its 404', async () => {
    const res = await call(`/api/${'x'.repeat(10_000)}`);
    assert.equal(res.status, 404);
    assert.ok(res.text.length < 400, `${res.text.length} characters`);
    assert.match((res.body.error as Json).message as string, /… \(10005 characters\)$/);
  });

  it('never answers 5xx and a refused input changes nothing', async () => {
    const doc = (await call('/api/openapi.json', { token: null })).body as unknown as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path !== '/api/stream')
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => ({ path, method: m.toUpperCase() })));
    const snapshot = async () =>
      JSON.stringify([
        (await call('/api/things')).body,
        (await call('/api/users')).body,
        (await call('/api/grants')).body,
        (await call('/api/guest-passes')).body,
        (await call('/api/devices')).body,
      ]);
    const segment = fc.oneof(
      fc.constantFrom('front_door', 'car', '..', '%00', 'x'.repeat(300), '*'),
      fc.string({ maxLength: 20 }),
    );
    const body = fc.oneof(fc.jsonValue(), fc.string({ maxLength: 50 }), fc.constant(undefined));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.array(segment, { minLength: 3, maxLength: 3 }),
        body,
        fc.dictionary(
          fc.constantFrom('since', 'limit', 'from', 'to', 'kind', 'property'),
          fc.string({ maxLength: 20 }),
        ),
        async (route, segments, payload, query) => {
          let i = 0;
          const path = route.path.replace(/\{\w+\}/g, () => encodeURIComponent(segments[i++] ?? 'x'));
          const search = new URLSearchParams(query).toString();
          if (route.method === 'GET' || route.method === 'HEAD') payload = undefined;
          const before = await snapshot();
          const res = await call(`${path}${search ? `?${search}` : ''}`, {
            method: route.method,
            body: payload === undefined ? undefined : typeof payload === 'string' ? payload : JSON.stringify(payload),
            headers: payload === undefined ? {} : { 'content-type': 'application/json' },
          });
          assert.ok(res.status < 500, `${route.method} ${path}: ${res.status} ${res.text}`);
          if (res.status >= 400)
            assert.equal(await snapshot(), before, `${route.method} ${path} was refused but changed data`);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('security: TLS for HTTP, WebSocket and MQTT', () => {
  let hub: Hub;
  let cert: Buffer;
  before(async () => {
    const { certFile, keyFile } = await selfSignedCertificate();
    cert = await readFile(certFile);
    hub = await startHub({ tls: { cert: certFile, key: keyFile }, mqtt: { port: 0, host: '127.0.0.1', tlsPort: 0 } });
  });
  after(async () => {
    await hub.stop();
  });

  it('serves the API over HTTPS with HSTS, the stream over WSS, and MQTT over TLS', async () => {
    assert.match(hub.httpUrl, /^https:/);
    const answer = await new Promise<{ status: number; hsts: unknown }>((resolve, reject) => {
      const req = httpsRequest(
        `${hub.httpUrl}/api/things`,
        { ca: cert, headers: { authorization: `Bearer ${hub.ownerToken}` } },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, hsts: res.headers['strict-transport-security'] });
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(answer.status, 200);
    assert.match(String(answer.hsts), /max-age=/);

    const socket = new WebSocket(`${hub.httpUrl.replace('https', 'wss')}/api/stream?token=${hub.ownerToken}`, {
      ca: cert,
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.close();

    const device = (await new Promise<Json>((resolve, reject) => {
      const req = httpsRequest(
        `${hub.httpUrl}/api/devices`,
        {
          method: 'POST',
          ca: cert,
          headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve(JSON.parse(text) as Json));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ name: 'Secure sensor' }));
    })) as Json;
    const port = (hub as unknown as { broker: { tlsPort: number } }).broker.tlsPort;
    const secure = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
      ca: cert,
      username: device.username as string,
      password: device.password as string,
      reconnectPeriod: 0,
    });
    assert.ok(secure.connected);
    await secure.endAsync();
  });
});

describe('security: API rate limit per token', () => {
  let hub: Hub;
  before(async () => {
    hub = await startHub({ rateLimits: { api: { burst: 5, perSecond: 0.5 } } });
  });
  after(async () => {
    await hub.stop();
  });

  it('answers 429 with Retry-After once a token has used its burst, and other tokens carry on', async () => {
    const call = client(hub);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call('/api/things')).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    const limited = await call('/api/things');
    assert.equal((limited.body.error as Json).code, 'too_many_requests');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal((await call('/api/health', { token: null })).status, 200, 'the health probe is never limited');
  });
});
