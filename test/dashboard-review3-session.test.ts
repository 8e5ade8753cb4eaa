import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Hub } from '../src/core/hub.ts';
import { ownerFetch } from './helpers/owner-api.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * `GET /api/session` says the household's time zone (the tariff's, else the hub's own), so a dashboard
 * in a browser elsewhere can show a plan's times as the household reads them and say which zone a
 * time is in. A guest, who may not read the tariff, is told it too: it is no price.
 */
describe('dashboard review 3: the household’s time zone in GET /api/session', () => {
  let hub: Hub;

  before(async () => {
    hub = await startTriad();
  });

  after(async () => {
    await hub?.stop();
  });

  const session = async (token = hub.ownerToken) => {
    const res = await fetch(`${hub.httpUrl}/api/session`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { timeZone?: unknown; householdId: string };
  };

  test('is UTC until the household sets one, then the tariff’s zone, to owners and guests alike', async () => {
    assert.equal((await session()).timeZone, 'UTC');
    const set = await ownerFetch(hub, '/api/energy/tariff', 'PUT', { currency: 'EUR', timeZone: 'Asia/Tokyo' });
    assert.equal(set.status, 200, await set.text());
    assert.equal((await session()).timeZone, 'Asia/Tokyo');

    const pass = await ownerFetch(hub, '/api/guest-passes', 'POST', {
      name: 'Visitor',
      things: ['household'],
      actions: ['*'],
      from: new Date(Date.now() - 60_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    });
    assert.equal(pass.status, 201, await pass.clone().text());
    const { token } = (await pass.json()) as { token: string };
    assert.equal((await session(token)).timeZone, 'Asia/Tokyo');
  });

  test('a zone the hub does not know is refused by the tariff and the session keeps the one it had', async () => {
    const set = await ownerFetch(hub, '/api/energy/tariff', 'PUT', { currency: 'EUR', timeZone: 'Mars/Olympus' });
    assert.equal(set.status, 400, await set.text());
    assert.equal((await session()).timeZone, 'Asia/Tokyo');
  });

  test('the OpenAPI document describes it', async () => {
    const doc = (await (await ownerFetch(hub, '/api/openapi.json')).json()) as {
      paths: Record<
        string,
        { get?: { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> } }
      >;
    };
    const schema = doc.paths['/api/session']?.get?.responses?.['200']?.content?.['application/json']?.schema as {
      properties?: Record<string, unknown>;
    };
    assert.ok(schema?.properties?.timeZone, 'timeZone is in the documented answer');
  });
});
