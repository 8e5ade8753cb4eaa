import { VissAdapter } from '../adapters/viss/adapter.ts';
import { SignalTree } from '../adapters/viss/tree.ts';
import { VSS_NODES } from '../adapters/viss/vss-nodes.ts';
import type { RouteModule } from '../api/server.ts';
import { thingView } from '../api/views.ts';
import { issuerOf, type Principal } from '../auth/tokens.ts';
import { thingAddedAt } from '../core/core.ts';
import { badRequest, conflict, notFound } from '../core/errors.ts';
import type { HubServices, Subsystem } from '../core/hub.ts';
import { hidePasswords } from '../core/redact.ts';
import type { Twin } from '../core/twin.ts';
import { slugify } from '../model/thing.ts';
import { CHARGING_SESSION_EVENT, ChargingSessionRecorder } from './charging.ts';
import { vehicleMapping, vehiclePaths } from './mapping.ts';
import { vehicleRoutes } from './routes.ts';
import { movingRefusal, vehicleSafetyGuard } from './safety.ts';
import { COMMAND_ONLY_PATHS } from './signals.ts';
import { vehicleMeta, vehicleThing } from './thing.ts';
import { TRIP_EVENT, TripRecorder } from './trips.ts';
import { TwinSignalSource } from './twin-source.ts';

/** A vehicle to attach: its name and its own VISS endpoint (API body and config file entry alike). */
export interface VehicleEndpoint {
  name: string;
  viss: string;
}

export interface VehicleServiceOptions {
  /** Vehicles from the config file, attached (or re-pointed) at start. */
  vehicles?: VehicleEndpoint[];
  /** How long a car must stand still before its trip ends. */
  tripStopGraceMs?: number;
  /** Reconnect back-off towards cars' VISS endpoints. */
  backoff?: { initialMs: number; maxMs: number };
}

interface Running {
  hub: HubServices;
  adapter: VissAdapter;
  trips: TripRecorder;
  charging: ChargingSessionRecorder;
  removeGuard: () => void;
}

/**
 * The car side of Triad: vehicles followed over VISS, their remote commands with safety rules,
 * trips and charging sessions cut from their signals, and a VISS server at `/viss/{id}` so any VISS
 * client can read and command a Triad vehicle.
 */
export class VehicleService implements Subsystem {
  readonly name = 'vehicles';
  readonly routes: RouteModule;
  private running: Running | null = null;

  constructor(private readonly options: VehicleServiceOptions = {}) {
    this.routes = vehicleRoutes(this);
  }

  async start(hub: HubServices): Promise<void> {
    const adapter = new VissAdapter({
      mapping: vehicleMapping((householdId, thing, property) => hub.twins.value(householdId, thing, property)),
      backoff: this.options.backoff,
      recheck: (command, thing) => movingRefusal(hub.twins, thing.householdId, command),
    });
    await hub.addAdapter(adapter);
    const trips = new TripRecorder({
      bus: hub.bus,
      clock: hub.clock,
      twins: hub.twins,
      stopGraceMs: this.options.tripStopGraceMs,
      log: hub.log.child('vehicles'),
    });
    const charging = new ChargingSessionRecorder({
      bus: hub.bus,
      clock: hub.clock,
      twins: hub.twins,
      core: hub.core,
      log: hub.log.child('vehicles'),
    });
    const households = await hub.store.listHouseholds();
    const householdIds = households.map((household) => household.id);
    for (const householdId of householdIds) {
      for (const twin of hub.twins.list(householdId)) if (vehicleMeta(twin.thing)) forgetEarlierCars(twin);
    }
    await trips.resume(hub.store, householdIds);
    await charging.resume(hub.store, householdIds);
    trips.start();
    charging.start();
    const removeGuard = hub.commands.addGuard(vehicleSafetyGuard(hub.twins));
    this.running = { hub, adapter, trips, charging, removeGuard };

    for (const household of households) {
      for (const twin of hub.twins.list(household.id)) {
        const meta = vehicleMeta(twin.thing);
        if (!meta) continue;
        // Rebuilt, as on a repoint, so a car attached by an older Triad follows today's signals
        // (its charging power was once bound to the battery's).
        const { id, name } = twin.thing;
        await hub.core.upsertThing(vehicleThing({ id, householdId: household.id, name, viss: meta.viss }));
        await adapter.connect({ householdId: household.id, thing: id, url: meta.viss });
      }
    }
    for (const vehicle of this.options.vehicles ?? []) {
      const id = slugify(vehicle.name);
      if (hub.twins.get(hub.householdId, id)) await this.repoint(hub.householdId, id, vehicle.viss);
      else await this.attach(hub.householdId, vehicle);
    }
    hub.log.child('vehicles').info('vehicles ready', { configured: this.options.vehicles?.length ?? 0 });
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = null;
    if (!running) return;
    running.removeGuard();
    running.trips.stop();
    running.charging.stop();
    await running.adapter.stop();
  }

  /** The household's vehicles; `visible` narrows them (a guest sees only the cars they were given). */
  list(householdId: string, visible: (id: string) => boolean = () => true) {
    const { hub } = this.require();
    return hub.twins
      .list(householdId)
      .filter((twin) => twin.thing.kind === 'vehicle' && visible(twin.thing.id))
      .map((twin) => this.view(twin));
  }

  get(householdId: string, id: string) {
    return this.view(this.vehicle(householdId, id));
  }

  /** Adds a vehicle that speaks VISS at `viss`, and starts following it. */
  async attach(householdId: string, endpoint: VehicleEndpoint) {
    const { hub, adapter } = this.require();
    const name = endpoint.name.trim();
    const url = checkedUrl(endpoint.viss);
    const id = slugify(name);
    if (hub.twins.get(householdId, id)) throw conflict(`a thing named ${JSON.stringify(id)} already exists`);
    await hub.core.upsertThing(vehicleThing({ id, householdId, name, viss: url }));
    await adapter.connect({ householdId, thing: id, url });
    return this.get(householdId, id);
  }

  /** Points a vehicle at another VISS endpoint (a gateway's new address). */
  async repoint(householdId: string, id: string, viss: string) {
    const { hub, adapter } = this.require();
    const twin = this.vehicle(householdId, id);
    const url = checkedUrl(viss);
    // The description is rebuilt too, so a vehicle made by an older Triad gains new signals.
    await hub.core.upsertThing(vehicleThing({ id, householdId, name: twin.thing.name, viss: url }));
    await adapter.connect({ householdId, thing: id, url });
    return this.get(householdId, id);
  }

  async remove(householdId: string, id: string): Promise<void> {
    const { hub, adapter } = this.require();
    this.vehicle(householdId, id);
    await adapter.disconnect(householdId, id);
    await hub.core.removeThing(householdId, id);
  }

  /**
   * Newest first; the one the car is on (if any) comes first, with `end: null` and
   * `underWay: true`: a trip is recorded only once the car has stood still for the stop grace.
   * `limit` counts recorded trips only, and the one under way comes in addition: a page of the last
   * five is the same five trips whether the car is out or parked.
   */
  async trips(householdId: string, id: string, limit = 50) {
    const recorded = await this.records(householdId, id, TRIP_EVENT, limit);
    const current = this.require().trips.underWay(householdId, id);
    return current ? [{ id: null, ...current }, ...recorded] : recorded;
  }

  async chargingSessions(householdId: string, id: string, limit = 50) {
    return this.records(householdId, id, CHARGING_SESSION_EVENT, limit);
  }

  /** The source a VISS client of `/viss/{id}` reads and commands, for a caller of that household. */
  vissSource(principal: Principal, id: string): TwinSignalSource | null {
    const running = this.running;
    const twin = running?.hub.twins.get(principal.householdId, id);
    if (!running || !twin || twin.thing.kind !== 'vehicle') return null;
    // A guest pass that does not name this car does not see it, over VISS as over the API. Its
    // window is judged at each request (refusal), so a connection opened early opens with it.
    const permissions = running.hub.security.permissions;
    if (!permissions.wasGiven(principal, id)) return null;
    const paths = vehiclePaths(twin.thing);
    return new TwinSignalSource({
      twins: running.hub.twins,
      bus: running.hub.bus,
      commands: running.hub.commands,
      householdId: principal.householdId,
      vehicle: id,
      tree: new SignalTree([...paths, ...COMMAND_ONLY_PATHS], VSS_NODES),
      issuedBy: issuerOf(principal),
      principal,
      refusal: () => permissions.passWindowRefusal(principal),
    });
  }

  private async records(householdId: string, id: string, type: string, limit: number) {
    const { hub } = this.require();
    const car = this.vehicle(householdId, id);
    // Read-your-writes: a trip that just ended is in the history writer's buffer until its next batch.
    await hub.history.flush();
    // Only since the car was attached: a car removed under this name left its records under it.
    const since = thingAddedAt(car.thing);
    const events = await hub.store.listEvents({ householdId, types: [type], thing: id, since, limit, newest: true });
    return events.map((event) => ({ id: event.id, ...('data' in event ? event.data : {}) }));
  }

  private vehicle(householdId: string, id: string): Twin {
    const twin = this.require().hub.twins.get(householdId, id);
    if (twin?.thing.kind !== 'vehicle') throw notFound(`vehicle ${JSON.stringify(id)}`);
    return twin;
  }

  private view(twin: Twin) {
    const { adapter } = this.require();
    return {
      ...thingView(twin),
      // The gateway's own password stays in the stored address (the adapter logs in with it); an
      // answer shows the user name and `***`, as every other address Triad prints.
      viss: shownAddress(vehicleMeta(twin.thing)?.viss),
      connected: adapter.isConnected(twin.thing.householdId, twin.thing.id),
    };
  }

  private require(): Running {
    if (!this.running) throw new Error('the vehicles subsystem has not started');
    return this.running;
  }
}

/** Vehicles from a config file's `vehicles:` list, checked before the hub starts. */
export function parseVehicleConfig(value: unknown): VehicleEndpoint[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest('vehicles must be a list of {name, viss}');
  return value.map((entry, i) => {
    const { name, viss } = (entry ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || !/\S/.test(name) || name.length > 100) {
      throw badRequest(`vehicles[${i}].name must be a name of 1 to 100 characters`);
    }
    if (typeof viss !== 'string') throw badRequest(`vehicles[${i}].viss must be a ws:// or wss:// address`);
    return { name: name.trim(), viss: checkedUrl(viss, `vehicles[${i}].viss`) };
  });
}

/**
 * Forgets the values a car's twin was loaded with that were stamped before it was attached: a car
 * detached under its name left them (the history writer committed that car's last changes after
 * its delete), and the charging and trip recorders would take them for this car's. Nothing this
 * car reports is stamped before it was attached (VissAdapter.mirror stamps such a value on arrival).
 */
function forgetEarlierCars(twin: Twin): void {
  const attached = thingAddedAt(twin.thing);
  if (attached === undefined) return;
  for (const [property, current] of twin.state) if (current.ts < attached) twin.state.delete(property);
}

/** A vehicle's VISS address as an answer shows it: its password as `***`. */
function shownAddress(viss: string | undefined): string | null {
  return viss === undefined ? null : hidePasswords(viss);
}

function checkedUrl(text: string, what = 'viss'): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // An address that does not parse may still carry a password: the refusal echoes it without.
    const shown = hidePasswords(text).slice(0, 100);
    throw badRequest(`${what} must be a ws:// or wss:// address, not ${JSON.stringify(shown)}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw badRequest(`${what} must be a ws:// or wss:// address (VISS runs over WebSocket)`);
  }
  return url.toString();
}
