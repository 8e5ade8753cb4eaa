import type { Clock } from '../../src/core/clock.ts';
import { Hub } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { PeopleService } from '../../src/people/index.ts';

/**
 * A hub with the people subsystem, in this process, on loopback ports of its own and `clock`
 * (a virtual one, for presence delays and staleness); not started yet. Give the same `dataDir`
 * again for a restart.
 */
export function peopleHub(options: { dataDir: string; clock: Clock }): Hub {
  return new Hub({
    dataDir: options.dataDir,
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    clock: options.clock,
    log: createLogger({ level: 'silent' }),
  }).use(new PeopleService());
}
