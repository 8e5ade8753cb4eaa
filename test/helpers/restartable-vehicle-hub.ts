import assert from 'node:assert/strict';
import type { Clock } from '../../src/core/clock.ts';
import { Hub } from '../../src/core/hub.ts';
import { createLogger, type LogLine } from '../../src/core/log.ts';
import { VehicleService, type VehicleServiceOptions } from '../../src/vehicles/index.ts';
import { tempDir } from './hub-process.ts';
import type { ApiAnswer } from './vehicle-hub.ts';

/**
 * A hub with the vehicle service that a test can stop and start again on the same data directory,
 * as a restart does: what it stored (the car attached, its history) is there when it comes back.
 * Every warning and error it logs is kept in `warnings`.
 */
export interface RestartableVehicleHub {
  readonly warnings: LogLine[];
  /** The hub running now; throws while it is down. */
  readonly hub: Hub;
  /** Starts the hub (again). */
  start(): Promise<void>;
  /** Stops the hub, if it runs. */
  stop(): Promise<void>;
  /** Calls the running hub with the owner's token. */
  api(path: string, init?: RequestInit): Promise<ApiAnswer>;
  /** Attaches the car at `viss` as a user does, named "Car" (thing id `car`). */
  attach(viss: string): Promise<void>;
}

export function restartableVehicleHub(options: {
  clock: Clock;
  service?: VehicleServiceOptions;
}): RestartableVehicleHub {
  const dataDir = tempDir();
  const warnings: LogLine[] = [];
  let running: Hub | null = null;
  const self: RestartableVehicleHub = {
    warnings,
    get hub() {
      if (!running) throw new Error('the hub is down');
      return running;
    },
    async start() {
      running = new Hub({
        dataDir: await dataDir,
        http: { port: 0, host: '127.0.0.1' },
        mqtt: { port: 0, host: '127.0.0.1' },
        clock: options.clock,
        log: createLogger({ level: 'warn', sink: (line) => warnings.push(line) }),
      }).use(new VehicleService(options.service));
      await running.start();
    },
    async stop() {
      await running?.stop();
      running = null;
    },
    async api(path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${self.hub.ownerToken}`);
      if (init.body !== undefined) headers.set('content-type', 'application/json');
      const res = await fetch(self.hub.httpUrl + path, { ...init, headers });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async attach(viss) {
      const created = await self.api('/api/vehicles', { method: 'POST', body: JSON.stringify({ name: 'Car', viss }) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    },
  };
  return self;
}
