import type { Clock } from '../../src/core/clock.ts';
import { Hub } from '../../src/core/hub.ts';
import { createLogger, type Logger } from '../../src/core/log.ts';
import { VehicleService, type VehicleServiceOptions } from '../../src/vehicles/index.ts';
import { tempDir } from './hub-process.ts';

/** An API answer, its JSON read. */
export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * A hub with the vehicle service, on loopback ports of its own, with the car at `viss` attached as
 * a user attaches one (`POST /api/vehicles`, named `name`, so its thing id is that name slugged),
 * and `api` to call it with the owner's token.
 */
export async function startVehicleHub(options: {
  clock: Clock;
  viss: string;
  name?: string;
  service?: VehicleServiceOptions;
  log?: Logger;
  commandTimeoutMs?: number;
}): Promise<{ hub: Hub; api(path: string, init?: RequestInit): Promise<ApiAnswer> }> {
  const hub = new Hub({
    dataDir: await tempDir(),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    clock: options.clock,
    log: options.log ?? createLogger({ level: 'silent' }),
    commandTimeoutMs: options.commandTimeoutMs,
  }).use(new VehicleService(options.service));
  await hub.start();
  const api = async (path: string, init: RequestInit = {}): Promise<ApiAnswer> => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${hub.ownerToken}`);
    if (init.body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(hub.httpUrl + path, { ...init, headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const created = await api('/api/vehicles', {
    method: 'POST',
    body: JSON.stringify({ name: options.name ?? 'Car', viss: options.viss }),
  });
  if (created.status !== 201) {
    await hub.stop();
    throw new Error(`POST /api/vehicles: ${created.status} ${JSON.stringify(created.body)}`);
  }
  return { hub, api };
}
