import { type Clock, VirtualClock } from '../../src/core/clock.ts';
import { Hub } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { PeopleService } from '../../src/people/index.ts';
import { tempDir } from './hub-process.ts';
import { ownerCall } from './owntracks-app.ts';

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

/**
 * A started people hub on a virtual clock at 2 March 2026, 07:00 UTC, whose household's home is
 * `home` with the presence settings `household` (`PUT /api/household`).
 */
export async function startedPeopleHub(
  dataDirPrefix: string,
  home: { latitude: number; longitude: number },
  household: Record<string, unknown>,
): Promise<{ hub: Hub; clock: VirtualClock }> {
  const clock = new VirtualClock(Date.UTC(2026, 2, 2, 7, 0));
  const hub = peopleHub({ dataDir: await tempDir(dataDirPrefix), clock });
  await hub.start();
  await ownerCall(hub, 'PUT', '/api/household', { ...home, ...household });
  return { hub, clock };
}

/** An event as the people tests read it off the hub's bus. */
export interface SeenEvent {
  type: string;
  thing?: string;
  online?: boolean;
}

/**
 * Starts a people hub on `dataDir` (the same one again for a restart) and collects every event its
 * bus publishes from then on.
 */
export async function startRecordingPeopleHub(options: {
  dataDir: string;
  clock: Clock;
}): Promise<{ hub: Hub; events: SeenEvent[] }> {
  const hub = peopleHub(options);
  await hub.start();
  const events: SeenEvent[] = [];
  hub.bus.subscribe((event) => events.push(event as SeenEvent));
  return { hub, events };
}
