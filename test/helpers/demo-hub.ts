import type { Clock } from '../../src/core/clock.ts';
import type { Hub } from '../../src/core/hub.ts';
import { createLogger, type Logger } from '../../src/core/log.ts';
import { createTriad } from '../../src/triad.ts';
import { tempDir } from './hub-process.ts';

/**
 * A started demo hub in this process (`triad start --demo` as createTriad composes it), on
 * loopback ports of its own and a fresh data folder (or `dataDir`, to start a demo again on the
 * same); `clock` for a test on simulated time; `log` for a test that reads the hub's log.
 * TEST_LOG=debug shows its log otherwise.
 */
export async function startDemoTriad(options: { clock?: Clock; dataDir?: string; log?: Logger } = {}): Promise<Hub> {
  const hub = createTriad({
    dataDir: options.dataDir ?? (await tempDir()),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    demo: true,
    ...(options.clock ? { clock: options.clock } : {}),
    log: options.log ?? createLogger({ level: (process.env.TEST_LOG ?? 'silent') as 'silent' }),
  });
  await hub.start();
  return hub;
}
