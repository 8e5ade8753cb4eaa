import type { Clock } from '../../src/core/clock.ts';
import { Hub } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { EnergyService, type EnergyServiceOptions } from '../../src/energy/index.ts';
import { vocabularyProperties } from '../../src/model/thing.ts';
import { tempDir } from './hub-process.ts';
import type { ApiAnswer } from './vehicle-hub.ts';

/**
 * A started hub with the energy service, in this process, on loopback ports of its own and
 * `clock` (a virtual one, so deadlines come when the test says), with a vehicle `car` whose battery
 * the planner can read, and `send` to call the API with the owner's token.
 */
export async function startEnergyHub(options: {
  clock: Clock;
  service?: EnergyServiceOptions;
  battery?: { level: number; capacityKwh: number };
}): Promise<{ hub: Hub; send(method: string, path: string, body?: unknown): Promise<ApiAnswer> }> {
  const service = new EnergyService({ mqttChargers: false, ...options.service });
  const hub = new Hub({
    dataDir: await tempDir(),
    log: createLogger({ level: 'silent' }),
    clock: options.clock,
    http: { host: '127.0.0.1', port: 0 },
    mqtt: { host: '127.0.0.1', port: 0 },
  }).use(service);
  await hub.start();
  const { householdId } = hub;
  await hub.core.upsertThing({
    id: 'car',
    name: 'Car',
    householdId,
    kind: 'vehicle',
    adapter: 'core',
    properties: vocabularyProperties(['battery.level', 'battery.capacity', 'charging.connected']),
    actions: {},
  });
  const battery = options.battery ?? { level: 40, capacityKwh: 60 };
  hub.core.ingest(
    Object.entries({ 'battery.level': battery.level, 'battery.capacity': battery.capacityKwh }).map(
      ([property, value]) => ({ householdId, thing: 'car', property, value, source: 'test' }),
    ),
  );
  const send = async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const headers: Record<string, string> = { authorization: `Bearer ${hub.ownerToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(hub.httpUrl + path, { method, headers, body: JSON.stringify(body) });
    return { status: res.status, body: res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>) };
  };
  return { hub, send };
}
