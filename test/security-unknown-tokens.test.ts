import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * Every made-up bearer token costs the hub a lookup in its store (an indexed query on SQLite, a
 * round trip to PostgreSQL). An address that keeps presenting tokens nobody has is slowed down
 * (429 with Retry-After) without any more lookups, while the tokens the hub knows, from that very
 * address, work as before. A real in-process hub with its SQLite store, real HTTP requests.
 */
describe('security: made-up bearer tokens from one address', () => {
  let hub: Hub;
  let lookups = 0;
  // Time stands still unless the test moves it: the limit does not refill while the test runs.
  const clock = new VirtualClock(Date.UTC(2026, 3, 6, 18, 0));

  before(async () => {
    hub = await startTriad({ clock });
    // Counts the store's token lookups; each still runs the real query.
    const find = hub.store.findTokenByHash.bind(hub.store);
    hub.store.findTokenByHash = (hash) => {
      lookups++;
      return find(hash);
    };
  });

  after(async () => {
    await hub.stop();
  });

  const get = (token: string) => fetch(`${hub.httpUrl}/api/things`, { headers: { authorization: `Bearer ${token}` } });

  it('answers 429 with Retry-After once the failures pile up, and costs no lookup after that', async () => {
    assert.equal((await get(hub.ownerToken)).status, 200);
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 200 && retryAfter === null; i++) {
      const res = await get(`triad_${randomBytes(32).toString('base64url')}`);
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
      await res.arrayBuffer();
    }
    assert.ok(statuses.length < 200, `no 429 in ${statuses.length} made-up tokens`);
    assert.equal(statuses[0], 401, 'the first made-up tokens are simply unknown');
    assert.match(String(retryAfter), /^[1-9][0-9]*$/);

    const made = () => get(`triad_${randomBytes(32).toString('base64url')}`);
    const before = lookups;
    for (let i = 0; i < 20; i++) {
      const res = await made();
      assert.equal(res.status, 429);
      await res.arrayBuffer();
    }
    assert.equal(lookups, before, 'a refused made-up token is not looked up');
    // A wait, not a ban: once Retry-After has passed, the next one is looked up (and unknown).
    await clock.advance(Number(retryAfter) * 1000);
    const later = await made();
    assert.equal(later.status, 401, await later.text());
    assert.equal(lookups, before + 1);

    // The owner's token, from the same address, is not slowed: many calls in a row still pass.
    for (let i = 0; i < 50; i++) {
      const res = await get(hub.ownerToken);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
  });
});
