import { dashboardRoutes } from './api/dashboard.ts';
import { AutomationEngine } from './automation/index.ts';
import { Hub, type HubOptions } from './core/hub.ts';
import { EnergyService } from './energy/index.ts';
import { PeopleService } from './people/index.ts';
import { type VehicleEndpoint, VehicleService } from './vehicles/index.ts';

/**
 * Triad as users run it: the hub with every subsystem. The one list of what Triad is made of;
 * tests that need only part of it build a `Hub` and `use` the parts they need.
 */
export function createTriad(options: HubOptions & { vehicles?: VehicleEndpoint[] }): Hub {
  const hub = new Hub(options);
  hub.use(new PeopleService());
  hub.use(new AutomationEngine());
  hub.use(new VehicleService({ vehicles: options.vehicles }));
  hub.use(new EnergyService());
  hub.addRoutes(dashboardRoutes());
  // With `demo`, the hub adds the simulated household itself, after every other part.
  return hub;
}
