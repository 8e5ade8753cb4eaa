import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Hub } from '../src/core/hub.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { ownerFetch, tokenFetch } from './helpers/owner-api.ts';
import { startTriad } from './helpers/triad-hub.ts';

type Json = Record<string, unknown>;

describe('security review: account changes that race each other', () => {
  let hub: Hub;

  const call = async (path: string, token: string, method = 'GET', json?: unknown) => {
    const res = await tokenFetch(hub, token, path, method, json);
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json & Json[], text };
  };

  /** A fresh household with two owners: its first one and Bea, each with an API token. */
  const householdWithTwoOwners = async (name: string) => {
    const made = await call('/api/households', hub.ownerToken, 'POST', { name });
    assert.equal(made.status, 201, made.text);
    const first = made.body.token as string;
    const bea = await call('/api/users', first, 'POST', { name: 'Bea', role: 'owner', password: 'Bea-secret-pw-1' });
    assert.equal(bea.status, 201, bea.text);
    const beaToken = await call('/api/tokens', first, 'POST', { user: 'Bea', name: 'Bea laptop' });
    assert.equal(beaToken.status, 201, beaToken.text);
    const users = await call('/api/users', first);
    const owner = users.body.find((u) => u.name === 'owner') as Json;
    return { first, firstId: owner.id as string, bea: beaToken.body.token as string, beaId: bea.body.id as string };
  };

  before(async () => {
    hub = await startTriad();
  });

  after(async () => {
    await hub.stop();
  });

  it('two owners demoting each other at once leave the household one owner', async () => {
    for (let round = 0; round < 5; round++) {
      const h = await householdWithTwoOwners(`Race ${round}`);
      const [a, b] = await Promise.all([
        call(`/api/users/${h.beaId}/role`, h.first, 'PUT', { role: 'adult' }),
        call(`/api/users/${h.firstId}/role`, h.bea, 'PUT', { role: 'adult' }),
      ]);
      const statuses = [a.status, b.status].sort();
      assert.ok(
        statuses.includes(409) || statuses.includes(401),
        `one of the two must be refused: ${a.status} ${a.text} / ${b.status} ${b.text}`,
      );
      const winner = a.status === 200 ? h.first : h.bea;
      const users = await call('/api/users', winner);
      assert.equal(users.status, 200, users.text);
      assert.equal(users.body.filter((u) => u.role === 'owner').length, 1, users.text);
    }
  });

  it('a token made for an owner while they are being demoted does not keep the owner role', async () => {
    for (let round = 0; round < 5; round++) {
      const h = await householdWithTwoOwners(`Token race ${round}`);
      const [demoted, made] = await Promise.all([
        call(`/api/users/${h.beaId}/role`, h.first, 'PUT', { role: 'child' }),
        call('/api/tokens', h.bea, 'POST', { user: 'Bea', name: `kept ${round}` }),
      ]);
      assert.equal(demoted.status, 200, demoted.text);
      if (made.status !== 201) continue;
      const reach = await call('/api/users', made.body.token as string);
      assert.notEqual(reach.status, 200, `round ${round}: a token made in the race still reads accounts as an owner`);
    }
  });
});

describe('security review: guessing a password through the password route', () => {
  let hub: Hub;

  before(async () => {
    hub = await startTriad();
  });

  after(async () => {
    await hub.stop();
  });

  it('a wrong currentPassword counts as a failed sign-in: the sixth guess in a row waits (429)', async () => {
    const send = async (path: string, token: string, method: string, json: unknown) => {
      const res = await tokenFetch(hub, token, path, method, json);
      return { status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() };
    };
    const kim = await send('/api/users', hub.ownerToken, 'POST', {
      name: 'Kim',
      role: 'child',
      password: 'Kim-secret-pw-1',
    });
    assert.equal(kim.status, 201, kim.text);
    const kimId = JSON.parse(kim.text).id as string;
    const tablet = await send('/api/tokens', hub.ownerToken, 'POST', { user: 'Kim', name: 'shared tablet' });
    assert.equal(tablet.status, 201, tablet.text);
    const token = JSON.parse(tablet.text).token as string;
    const guess = (currentPassword: string) =>
      send(`/api/users/${kimId}/password`, token, 'PUT', { password: 'Taken-over-pw-9', currentPassword });

    for (let i = 0; i < 5; i++) assert.equal((await guess(`wrong guess ${i}`)).status, 403);
    const sixth = await guess('wrong guess 5');
    assert.equal(sixth.status, 429, sixth.text);
    assert.ok(Number(sixth.retryAfter) > 0, `Retry-After: ${sixth.retryAfter}`);
    assert.match(sixth.text, /too_many_requests/);
    // Even the right one waits now: whoever holds the tablet learns nothing from it.
    assert.equal((await guess('Kim-secret-pw-1')).status, 429);
  });
});

describe('security review: a guest pass revoked through its token', () => {
  let hub: Hub;

  before(async () => {
    hub = await startTriad();
    await addFrontDoorAndHallLight(hub);
  });

  after(async () => {
    await hub.stop();
  });

  it('is listed as revoked under /api/guest-passes, as when revoked there', async () => {
    const now = Date.now();
    const made = await ownerFetch(hub, '/api/guest-passes', 'POST', {
      name: 'Dog walker',
      things: ['hall-light'],
      actions: ['turn_on'],
      from: new Date(now - 60_000).toISOString(),
      to: new Date(now + 3_600_000).toISOString(),
    });
    assert.equal(made.status, 201);
    const pass = (await made.json()) as Json;
    const listed = (await (await ownerFetch(hub, '/api/tokens')).json()) as Json[];
    const token = listed.find((t) => (t.scopes as string[]).includes(`pass:${pass.id}`));
    assert.ok(token, 'the pass has a token in GET /api/tokens');
    assert.equal((await ownerFetch(hub, `/api/tokens/${token.id}`, 'DELETE')).status, 204);

    const passes = (await (await ownerFetch(hub, '/api/guest-passes')).json()) as Json[];
    const after = passes.find((p) => p.id === pass.id);
    assert.equal(typeof after?.revokedAt, 'string', `the pass still reads as valid: ${JSON.stringify(after)}`);
    const refused = await fetch(`${hub.httpUrl}/api/things`, { headers: { authorization: `Bearer ${pass.token}` } });
    assert.equal(refused.status, 401);
  });
});
