import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfigFile } from '../src/cli/config.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { tempDir } from './helpers/hub-process.ts';
import { startTriad } from './helpers/triad-hub.ts';

async function configFile(body: unknown): Promise<string> {
  const path = join(await tempDir(), 'triad.json');
  await writeFile(path, JSON.stringify(body));
  return path;
}

/**
 * `rateLimits.unknownTokens` in the config file sets how many unknown tokens an address may
 * present before it is held up (429): read from a real file, handed to a real hub, tried with
 * real HTTP requests. A wrong value is refused at start, naming the key.
 */
describe('config: rateLimits.unknownTokens', () => {
  let hub: Hub | null = null;

  after(async () => {
    await hub?.stop();
  });

  it('holds an address up after the configured burst', async () => {
    const file = await loadConfigFile(
      await configFile({ rateLimits: { unknownTokens: { burst: 3, perSecond: 0.5 } } }),
    );
    assert.deepEqual(file.rateLimits, { unknownTokens: { burst: 3, perSecond: 0.5 } });
    const clock = new VirtualClock(Date.UTC(2026, 3, 6, 18, 0));
    hub = await startTriad({
      clock,
      rateLimits: { api: { burst: 100_000, perSecond: 100_000 }, ...file.rateLimits },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${hub.httpUrl}/api/things`, {
        headers: { authorization: `Bearer triad_${randomBytes(32).toString('base64url')}` },
      });
      statuses.push(res.status);
      if (res.status === 429) assert.equal(res.headers.get('retry-after'), '2', 'one comes back every 2 s');
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [401, 401, 401, 429]);
  });

  it('refuses a wrong or missing value with the key named', async () => {
    const refuses = (body: unknown, message: RegExp) =>
      assert.rejects(
        async () => loadConfigFile(await configFile(body)),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    await refuses(
      { rateLimits: { unknownTokens: { burst: 'many', perSecond: 1 } } },
      /rateLimits\.unknownTokens\.burst must be/,
    );
    await refuses(
      { rateLimits: { unknownTokens: { burst: 3, perSecond: 0 } } },
      /rateLimits\.unknownTokens\.perSecond must be/,
    );
    await refuses(
      { rateLimits: { unknownTokens: { burst: 3 } } },
      /rateLimits\.unknownTokens needs both burst and perSecond/,
    );
    await refuses(
      { rateLimits: { unknownTokens: 50 } },
      /rateLimits\.unknownTokens must be a mapping of burst, perSecond/,
    );
  });
});
