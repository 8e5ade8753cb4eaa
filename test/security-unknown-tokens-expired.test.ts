import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * A token that expires while the hub runs: it is refused from then on (401, never let through),
 * and it no longer counts as a token the hub knows, so a script that keeps presenting it is held
 * up (429) like one presenting made-up tokens, whether the hub had it in memory or read it from
 * the store. A working token from the same address still gets in. A real in-process hub on SQLite,
 * real HTTP requests; time is virtual and moves only when the test moves it.
 */
describe('security: a token that expired while the hub runs', () => {
  const clock = new VirtualClock(Date.UTC(2026, 3, 6, 18, 0));
  const HOUR = 3_600_000;
  const BURST = 5;
  let hub: Hub;

  before(async () => {
    hub = await startTriad({
      clock,
      rateLimits: { api: { burst: 100_000, perSecond: 100_000 }, unknownTokens: { burst: BURST, perSecond: 0.5 } },
    });
  });

  after(async () => {
    await hub?.stop();
  });

  const get = (token: string) => fetch(`${hub.httpUrl}/api/things`, { headers: { authorization: `Bearer ${token}` } });

  const newToken = async (name: string, expiresAt: number): Promise<string> => {
    const res = await fetch(`${hub.httpUrl}/api/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'owner', name, expiresAt: new Date(expiresAt).toISOString() }),
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    return (JSON.parse(text) as { token: string }).token;
  };

  /** Presents `token` until the address is held up; the statuses seen. */
  const present = async (token: string): Promise<number[]> => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await get(token);
      await res.arrayBuffer();
      statuses.push(res.status);
      if (res.status === 429) break;
    }
    return statuses;
  };

  it('is refused, and a script that keeps presenting it is held up', async () => {
    // Used while it works (so the hub has it in memory), then it expires.
    const used = await newToken('nightly script', clock.now() + HOUR);
    assert.equal((await get(used)).status, 200);
    await clock.advance(2 * HOUR);
    const statuses = await present(used);
    assert.ok(!statuses.includes(200), 'an expired token is never let through');
    assert.deepEqual(statuses, [...Array(BURST).fill(401), 429], 'held up after the burst');

    // A token that works, from the held-up address, is not held up.
    assert.equal((await get(hub.ownerToken)).status, 200);
  });

  it('holds up one the hub never had in memory, once it has been found expired', async () => {
    // The address waits out its hold-up; time stands still again after.
    await clock.advance(60_000);
    // Stored while it works, never presented until after it expired.
    const unused = await newToken('old script', clock.now() + HOUR);
    await clock.advance(2 * HOUR);
    const statuses = await present(unused);
    assert.deepEqual(statuses, [...Array(BURST).fill(401), 429], 'held up after the burst');
    const made = await get(`triad_${randomBytes(32).toString('base64url')}`);
    assert.equal(made.status, 429, await made.text());
  });
});
