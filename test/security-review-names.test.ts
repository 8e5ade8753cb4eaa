import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Hub } from '../src/core/hub.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { startTriad } from './helpers/triad-hub.ts';

type Json = Record<string, unknown>;

/**
 * A person's name is what they type: the same letters typed on another keyboard (decomposed
 * accents, full-width letters) are the same name, for signing in and for telling users apart.
 */
describe('security review: user names in other Unicode forms', () => {
  let hub: Hub;
  const zoe = 'Zo\u00eb'; // ë as one code point (NFC), as the owner typed it
  const signIn = (name: string, password: string) =>
    fetch(`${hub.httpUrl}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, password }),
    });

  before(async () => {
    hub = await startTriad();
    const made = await ownerFetch(hub, '/api/users', 'POST', { name: zoe, role: 'adult', password: 'Zoe-secret-pw-1' });
    assert.equal(made.status, 201, await made.text());
  });

  after(async () => {
    await hub.stop();
  });

  it('signs in with the name typed decomposed (e + combining diaeresis) or in full-width letters', async () => {
    for (const typed of ['Zoe\u0308', '\uff3a\uff4f\u00eb', 'ZOE\u0308']) {
      const answer = await signIn(typed, 'Zoe-secret-pw-1');
      const body = (await answer.json()) as Json;
      assert.equal(answer.status, 200, `${JSON.stringify(typed)}: ${JSON.stringify(body)}`);
      assert.equal((body.user as Json).name, zoe);
    }
  });

  it('refuses a second user whose name is the same in another form (409), and stores nothing', async () => {
    const before = ((await (await ownerFetch(hub, '/api/users')).json()) as Json[]).length;
    for (const name of ['Zoe\u0308', '\uff3a\uff4f\u00eb']) {
      const answer = await ownerFetch(hub, '/api/users', 'POST', {
        name,
        role: 'child',
        password: 'Other-secret-pw-2',
      });
      const body = (await answer.json()) as { error: { code: string; message: string } };
      assert.equal(answer.status, 409, `${JSON.stringify(name)}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'conflict');
    }
    assert.equal(((await (await ownerFetch(hub, '/api/users')).json()) as Json[]).length, before);
  });

  it('keeps a new name in its composed form, so it reads the same everywhere', async () => {
    const answer = await ownerFetch(hub, '/api/users', 'POST', {
      name: 'Rene\u0301',
      role: 'child',
      password: 'Rene-secret-pw-3',
    });
    const body = (await answer.json()) as Json;
    assert.equal(answer.status, 201, JSON.stringify(body));
    assert.equal(body.name, 'Ren\u00e9');
  });
});
