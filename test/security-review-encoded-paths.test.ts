import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Hub } from '../src/core/hub.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { startTriad } from './helpers/triad-hub.ts';

type Json = Record<string, unknown>;

/**
 * `/%61pi/households` is `/api/households` to the router, which decodes the path; whoever asks
 * for an API route by a percent-encoded path is asked who they are as on the plain one.
 */
describe('security review: API routes reached by percent-encoded paths', () => {
  let hub: Hub;
  let adult: string;

  before(async () => {
    hub = await startTriad();
    await hub.createHousehold('The neighbours');
    const made = await ownerFetch(hub, '/api/users', 'POST', {
      name: 'Alex',
      role: 'adult',
      password: 'Alex-secret-pw-1',
    });
    assert.equal(made.status, 201);
    const token = await ownerFetch(hub, '/api/tokens', 'POST', { user: 'Alex', name: 'Alex phone' });
    adult = ((await token.json()) as Json).token as string;
  });

  after(async () => {
    await hub.stop();
  });

  const get = async (path: string, token?: string) => {
    const res = await fetch(hub.httpUrl + path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, text: await res.text() };
  };

  it('without a token, lists no household on the hub (401)', async () => {
    for (const path of ['/%61pi/households', '/ap%69/households', '/%61%70%69/households']) {
      const answer = await get(path);
      assert.equal(answer.status, 401, `${path}: ${answer.text}`);
      assert.doesNotMatch(answer.text, /neighbours/i);
    }
  });

  it("refuses an adult the server owner's and the owners' routes (403), as on the plain path", async () => {
    for (const path of ['/%61pi/households', '/%61pi/audit', '/%61pi/users']) {
      const answer = await get(path, adult);
      assert.equal(answer.status, 403, `${path}: ${answer.text}`);
      assert.doesNotMatch(answer.text, /neighbours/i);
    }
  });

  it('answers the owner on the encoded path as on the plain one', async () => {
    const plain = await get('/api/things', hub.ownerToken);
    const encoded = await get('/%61pi/things', hub.ownerToken);
    assert.equal(plain.status, 200, plain.text);
    assert.equal(encoded.status, 200, encoded.text);
  });
});
