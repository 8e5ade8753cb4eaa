import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort, startHubProcess, tempDir } from './helpers/hub-process.ts';

/**
 * The README: "The first owner is user `owner`, with the password in `<data>/owner.password`". A
 * second owner could remove them (204); after a restart owner.token then held a new token of the
 * second owner's, while the banner still named "owner" and owner.password a user who was gone.
 */
describe("the hub's first owner stays", () => {
  it('another owner cannot remove them (409, saying why); the files and banner stay true after a restart', async () => {
    const dataDir = await tempDir();
    const args = ['--mqtt-port', String(await freePort())];
    let hub = await startHubProcess({ dataDir, args });
    const firstToken = hub.token;
    try {
      const users = (await (await hub.api('/api/users')).json()) as { id: string; name: string }[];
      const first = users.find((u) => u.name === 'owner');
      assert.ok(first, 'the first owner is user "owner"');

      const created = await hub.api('/api/users', {
        method: 'POST',
        body: JSON.stringify({ name: 'owner2', role: 'owner', password: 'a long enough password' }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const owner2 = (await created.json()) as { id: string };
      const tokenAnswer = await hub.api('/api/tokens', {
        method: 'POST',
        body: JSON.stringify({ user: owner2.id, name: 'owner2 script' }),
      });
      assert.equal(tokenAnswer.status, 201);
      const { token: owner2Token } = (await tokenAnswer.json()) as { token: string };
      const asOwner2 = (path: string, init: RequestInit = {}) =>
        hub.api(path, { ...init, headers: { authorization: `Bearer ${owner2Token}` } });

      const removal = await asOwner2(`/api/users/${first.id}`, { method: 'DELETE' });
      const text = await removal.text();
      assert.equal(removal.status, 409, `another owner removed the first owner: ${removal.status} ${text}`);
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'conflict');
      assert.match(body.error.message, /"owner" is the hub's first owner: owner\.token and owner\.password/);
      assert.ok(
        ((await (await hub.api('/api/users')).json()) as { id: string }[]).some((u) => u.id === first.id),
        'the first owner is still there',
      );
      assert.equal((await hub.api('/api/session')).status, 200, "the first owner's token still works");

      // Other owners can still be removed by an owner: one owner remains, and it is not the first.
      const third = (await (
        await asOwner2('/api/users', {
          method: 'POST',
          body: JSON.stringify({ name: 'owner3', role: 'owner', password: 'a long enough password' }),
        })
      ).json()) as { id: string };
      assert.equal((await asOwner2(`/api/users/${third.id}`, { method: 'DELETE' })).status, 204);

      assert.equal(await hub.stop(), 0);
      hub = await startHubProcess({ dataDir, args });
      assert.equal(hub.token, firstToken, 'a restart keeps the token in owner.token');
      const password = (await readFile(join(dataDir, 'owner.password'), 'utf8')).trim();
      assert.match(hub.output(), /Owner sign-in: name "owner", password in .*owner\.password/);
      assert.doesNotMatch(hub.output(), /no longer worked/);
      const signIn = await fetch(`${hub.url}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'owner', password }),
      });
      assert.equal(signIn.status, 200, 'the banner\'s sign-in works: name "owner", the password in owner.password');
    } finally {
      await hub.stop();
    }
  });

  it('a restart that has to make owner.token again says so in the banner', async () => {
    const dataDir = await tempDir();
    const args = ['--mqtt-port', String(await freePort())];
    let hub = await startHubProcess({ dataDir, args });
    try {
      const tokens = (await (await hub.api('/api/tokens')).json()) as { id: string; name: string }[];
      const server = tokens.find((t) => t.name === 'owner (first start)');
      assert.ok(server);
      assert.equal((await hub.api(`/api/tokens/${server.id}`, { method: 'DELETE' })).status, 204);
      assert.equal(await hub.stop(), 0);
      hub = await startHubProcess({ dataDir, args });
      assert.match(hub.output(), /owner\.token held no longer worked .* a new one, for user "owner"/);
      assert.match(hub.output(), /Owner sign-in: name "owner"/);
      assert.equal((await hub.api('/api/session')).status, 200, 'the new token works');
    } finally {
      await hub.stop();
    }
  });
});
