import type { Hub, HubOptions } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { createTriad } from '../../src/triad.ts';
import { tempDir } from './hub-process.ts';

/**
 * A started Triad in this process, everything on (as `triad start` composes it), on loopback
 * ports of its own with the embedded broker and a fresh data folder; the API's rate limit is
 * lifted, so a test may make as many calls as it needs. TEST_LOG=debug shows its log. `options`
 * adds to or replaces those (a virtual `clock`, say).
 */
export async function startTriad(options: Partial<HubOptions> = {}): Promise<Hub> {
  const hub = createTriad({
    dataDir: await tempDir(),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
    rateLimits: { api: { burst: 100_000, perSecond: 100_000 } },
    ...options,
  });
  await hub.start();
  return hub;
}
