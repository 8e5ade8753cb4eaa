import type { Clock } from '../../src/core/clock.ts';
import type { Hub } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { createTriad } from '../../src/triad.ts';
import { tempDir } from './hub-process.ts';

/**
 * A started demo hub in this process (`triad start --demo` as createTriad composes it), on
 * loopback ports of its own and a fresh data folder; `clock` for a test on simulated time.
 * TEST_LOG=debug shows its log.
 */
export async function startDemoTriad(options: { clock?: Clock } = {}): Promise<Hub> {
  const hub = createTriad({
    dataDir: await tempDir(),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    demo: true,
    ...(options.clock ? { clock: options.clock } : {}),
    log: createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
  });
  await hub.start();
  return hub;
}
