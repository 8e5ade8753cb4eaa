import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Hub } from '../src/core/hub.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * `PUT /api/users/{id}/role`: an owner promotes or demotes a person. A token carries the role it
 * was made with, so every token and session of theirs ends at once; a household keeps its hub's
 * first owner and at least one owner; nobody changes their own role.
 */

type Json = Record<string, unknown>;
const PASSWORD = 'a long enough password';

describe('changing a user’s role', () => {
  let hub: Hub;

  const call = async (token: string, path: string, method = 'GET', body?: unknown) => {
    const res = await fetch(hub.httpUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json };
  };
  const owner = (path: string, method = 'GET', body?: unknown) => call(hub.ownerToken, path, method, body);
  const addUser = async (name: string, role: string) => {
    const made = await owner('/api/users', 'POST', { name, role, password: PASSWORD });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body as { id: string; role: string };
  };
  const tokenFor = async (user: string) => {
    const made = await owner('/api/tokens', 'POST', { user, name: 'script' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body.token as string;
  };
  const firstOwnerId = async () =>
    ((await owner('/api/users')).body as unknown as Array<{ id: string; name: string }>).find((u) => u.name === 'owner')
      ?.id as string;

  before(async () => {
    hub = await startTriad();
  });
  after(async () => {
    await hub.stop();
  });

  it('promotes an adult to owner: their old tokens end, a new one has the owner’s rights', async () => {
    const robin = await addUser('Robin', 'adult');
    const old = await tokenFor(robin.id);
    assert.equal((await call(old, '/api/users')).status, 403, 'an adult may not manage accounts');

    const changed = await owner(`/api/users/${robin.id}/role`, 'PUT', { role: 'owner' });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal(changed.body.role, 'owner');
    assert.equal((await call(old, '/api/things')).status, 401, 'the token made as an adult ended');
    assert.equal((await call(await tokenFor(robin.id), '/api/users')).status, 200);
    const listed = (await owner('/api/users')).body as unknown as Array<{ id: string; role: string }>;
    assert.equal(listed.find((u) => u.id === robin.id)?.role, 'owner');
  });

  it('demotes another owner: their owner tokens stop working at once', async () => {
    const sam = await addUser('Sam', 'owner');
    const asOwner = await tokenFor(sam.id);
    assert.equal((await call(asOwner, '/api/users')).status, 200);

    const changed = await owner(`/api/users/${sam.id}/role`, 'PUT', { role: 'child' });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal((await call(asOwner, '/api/users')).status, 401);
    const asChild = await tokenFor(sam.id);
    assert.equal((await call(asChild, '/api/users')).status, 403);
    assert.equal((await call(asChild, '/api/things')).status, 200, 'a child still reads');
  });

  it('the same role again changes nothing and ends nothing', async () => {
    const kim = await addUser('Kim', 'adult');
    const token = await tokenFor(kim.id);
    const same = await owner(`/api/users/${kim.id}/role`, 'PUT', { role: 'adult' });
    assert.equal(same.status, 200);
    assert.equal((await call(token, '/api/things')).status, 200);
  });

  it("keeps the hub's first owner an owner, and nobody changes their own role", async () => {
    const lee = await addUser('Lee', 'owner');
    const asLee = await tokenFor(lee.id);
    const first = await call(asLee, `/api/users/${await firstOwnerId()}/role`, 'PUT', { role: 'adult' });
    assert.equal(first.status, 409);
    assert.match(
      String((first.body.error as Json).message),
      /"owner" is the hub's first owner: .* so they cannot be demoted/,
    );
    const self = await call(asLee, `/api/users/${lee.id}/role`, 'PUT', { role: 'adult' });
    assert.equal(self.status, 400);
    assert.match(String((self.body.error as Json).message), /you cannot change your own role/);
    assert.equal((await call(asLee, '/api/users')).status, 200, 'and a refusal ends nothing');
  });

  it('refuses what is not a role change: unknown users, roles and fields, and callers who are not owners', async () => {
    const ash = await addUser('Ash', 'adult');
    assert.equal((await owner('/api/users/nobody/role', 'PUT', { role: 'adult' })).status, 404);
    assert.equal((await owner(`/api/users/${ash.id}/role`, 'PUT', { role: 'admin' })).status, 400);
    assert.equal((await owner(`/api/users/${ash.id}/role`, 'PUT', { role: 'owner', extra: 1 })).status, 400);
    assert.equal((await owner(`/api/users/${ash.id}/role`, 'PUT', {})).status, 400);
    const asAsh = await tokenFor(ash.id);
    assert.equal((await call(asAsh, `/api/users/${ash.id}/role`, 'PUT', { role: 'owner' })).status, 403);
    const listed = (await owner('/api/users')).body as unknown as Array<{ id: string; role: string }>;
    assert.equal(listed.find((u) => u.id === ash.id)?.role, 'adult', 'nothing changed');
  });
});
