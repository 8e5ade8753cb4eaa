import { readFile } from 'node:fs/promises';
import { OcppCentralSystem, ocppMeta } from '../adapters/ocpp/central-system.ts';
import { ocppRoute } from '../adapters/ocpp/route.ts';
import { storedTransactionIdMark } from '../adapters/ocpp/transaction-ids.ts';
import type { RouteModule } from '../api/server.ts';
import type { CommandRequest } from '../core/commands.ts';
import { badRequest, conflict, HubError, notFound } from '../core/errors.ts';
import type { Command, HubEvent, StateChanged } from '../core/events.ts';
import type { HubServices, Subsystem } from '../core/hub.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { householdTimeZone, SITE_THING } from '../core/wall-time.ts';
import { slugify, type Thing } from '../model/thing.ts';
import { newPassword } from '../people/credentials.ts';
import type { StoredChargingSession } from '../store/store.ts';
import { MqttChargerHouseholds } from './chargers/mqtt-chargers.ts';
import {
  CHARGE_MODES,
  type ChargeMode,
  type ChargerLimits,
  maxPowerKw,
  shareHeadroom,
  wantedCurrent,
  wattsPerAmp,
} from './modes/charge-mode.ts';
import { type SolarSettings, SolarSurplus } from './modes/solar-surplus.ts';
import { type ChargePlan, planCharging } from './planner/charge-planner.ts';
import {
  nextOccurrence,
  type PlanRequest,
  type PlanView,
  parseBy,
  planView,
  remainingNeed,
  shortfallReason,
  timeOfDayOf,
} from './planner/plan-book.ts';
import { energyRoutes } from './routes.ts';
import {
  type ChargingSession,
  SessionBook,
  sessionFromStored,
  sessionView,
  storedSession,
} from './sessions/charging-sessions.ts';
import {
  DEFAULT_STALE_AFTER_S,
  plannedHouseReserveKw,
  type SiteConfig,
  SiteMeters,
  type SiteReading,
  STALE_AFTER_S_RANGE,
} from './site/site-meters.ts';
import { checkNewSeries, type PriceSlot, parseCsvSeries, parseJsonSeries } from './tariff/price-series.ts';
import { Tariff, type TariffConfig, usableTariff } from './tariff/tariff.ts';

/** A charge plan as asked for: through the API, or by a charger's `plan` action. */
interface PlanInput {
  vehicle: string;
  charger: string;
  targetSoc?: number;
  energyKwh?: number;
  by: string | number;
  repeat?: number[];
}

// The thing that carries a household's site settings, plans and live figures: the automation
// engine and the session answer read the tariff's time zone from it too.
export { SITE_THING };

const ENERGY_ADAPTER = 'energy';
/** The thing every household has from its creation to its removal (see ensureHouseholdThing). */
const HOUSEHOLD_THING = 'household';

export interface EnergyServiceOptions {
  /** How often charge currents are decided and energy is counted, ms. */
  tickMs?: number;
  /** Charging efficiency, grid to battery (0–1); evcc and field data put AC charging near 0.9. */
  efficiency?: number;
  /** Look for simple MQTT chargers in Home Assistant discovery; default true. */
  mqttChargers?: boolean;
  /** A JSON or CSV price file to load at start (dynamic tariff from a file). */
  pricesFile?: string;
  /** Currency of `pricesFile`; default EUR. */
  currency?: string;
}

/** What a charge point is set to; kept on the site thing. */
export interface ChargerSettings extends ChargerLimits {
  mode: ChargeMode;
  /** The car usually charged here, for sessions when no plan names one. */
  vehicle?: string;
  solar: SolarSettings;
}

interface EnergyConfig {
  site: SiteConfig;
  tariff: TariffConfig;
  chargers: Record<string, ChargerSettings>;
  plans: PlanRequest[];
}

const DEFAULT_CONFIG: EnergyConfig = {
  site: { limitKw: 11 },
  tariff: { currency: 'EUR' },
  chargers: {},
  plans: [],
};

/**
 * How close in time a car's plug-in and a charger's session start must be for the session to be
 * taken as that car's, when no plan or setting names the car.
 */
export const PLUG_MATCH_MS = 10 * 60_000;

/**
 * How long the session of a charger that was switched off waits for its meter's final reading
 * before it is recorded without it. Such a charger (see meterTrails) reports its switch at once and
 * its meter on a beat of its own: the energy of the last seconds comes a moment to a minute later.
 */
export const FINAL_READING_WAIT_MS = 60_000;

/** How often the energy delivered towards energy plans is stored while they charge: a crash loses at most this much of it. */
const PROGRESS_SAVE_MS = 60_000;

/** How far ahead a plan's deadline may be: a weekly plan's next occurrence is at most this far. */
const MAX_PLAN_AHEAD_MS = 7 * 86_400_000;

/**
 * A site figure: a number, or null while the meter behind it cannot say (offline, silent), so the
 * figure is shown as unknown rather than as the meter's last number. `type` stays `number` for
 * what reads it (charts, automations on the surplus); the `oneOf` is what lets the twin take null.
 */
const SITE_PROPERTY = (unit: string) => ({
  schema: { type: 'number' as const, unit, oneOf: [{ type: 'number' as const }, { type: 'null' as const }] },
});

/**
 * Energy in Triad: charge points (OCPP 1.6J and simple MQTT chargers), the site's meters and
 * fuse, tariffs, per-charge-point modes, the charge planner and charging sessions. Every tick it
 * decides each charge point's current from its mode, its plan and the site's surplus and
 * headroom; every change of price, state of charge or plug re-plans. Each household has all of
 * this for itself: its own site, tariff, plans, modes and sessions, none of another's.
 */
export class EnergyService implements Subsystem {
  readonly name = 'energy';
  readonly routes: RouteModule;
  private running: Running | null = null;

  constructor(private readonly options: EnergyServiceOptions = {}) {
    const api = energyRoutes(this);
    this.routes = async (app, ctx) => {
      await api(app, ctx);
      if (this.running) await ocppRoute(this.running.ocpp)(app, ctx);
    };
  }

  async start(hub: HubServices): Promise<void> {
    const log = hub.log.child('energy');
    const ocpp = new OcppCentralSystem({
      // The `plan` action on a charger (from an automation, say) is a plan like the API's; without a
      // vehicle named, it is for the car that charger is tied to or plugged into.
      planCharge: async (householdId, charger, input) => {
        // The household first: the car of a charger's session is looked up among its own.
        const energy = this.managed(householdId);
        await this.createPlan(householdId, this.planInput(energy, charger, input));
      },
      transactionIds: storedTransactionIdMark(hub.store, hub.householdId),
    });
    await hub.addAdapter(ocpp);
    // The household's own view of the broker: a charger announced with another household's
    // topics (under households/) would otherwise be read and commanded from this one.
    const mqttChargers = this.options.mqttChargers !== false ? new MqttChargerHouseholds(hub.mqttFor) : null;
    const running: Running = { hub, log, ocpp, mqttChargers, households: new Map(), stops: [] };
    this.running = running;
    const households = await hub.store.listHouseholds();
    for (const household of households) {
      const energy = this.open(household.id);
      await this.loadSite(energy);
      // What the meters say now, rather than the figures the site had when the hub last stopped.
      energy.reading = this.read(energy);
      this.publishSite(energy, energy.reading);
    }
    // Every household's charge points, each in the household it was registered in.
    for (const household of households)
      for (const twin of hub.twins.list(household.id)) if (ocppMeta(twin.thing)) ocpp.adopt(twin.thing);
    if (this.options.pricesFile) {
      const text = await readFile(this.options.pricesFile, 'utf8');
      const slots = this.options.pricesFile.endsWith('.csv') ? parseCsvSeries(text) : parseJsonSeries(JSON.parse(text));
      try {
        // The hub's price file is its first household's tariff: the others set their own.
        await this.setPrices(hub.householdId, { currency: this.options.currency ?? 'EUR', slots });
      } catch (error) {
        // An old file (yesterday's prices) is no reason for the hub not to start.
        if (!(error instanceof HubError)) throw error;
        log.warn('the price file is not used', { file: this.options.pricesFile, reason: error.message });
      }
    }
    const stored = new Map<HouseholdEnergy, StoredChargingSession[]>();
    for (const energy of running.households.values()) stored.set(energy, await this.unfinishedSessions(energy));
    // From here to the subscription nothing awaits: no plug or meter report can fall between
    // taking the sessions back and listening for what happens to them.
    for (const [energy, sessions] of stored) this.resumeSessions(energy, sessions);
    running.stops.push(hub.bus.subscribe((event) => this.onEvent(event)));
    // A charger's `plan` action is judged when it is asked for (400, nothing sent), as the API's
    // plans are: the command would otherwise be accepted and fail a moment later.
    running.stops.push(hub.commands.addGuard((request, command) => this.checkPlanAction(request, command)));
    if (mqttChargers) await hub.addAdapter(mqttChargers);
    running.stops.push(
      hub.clock.setInterval(() => {
        // A throw in a timer callback would take the whole hub down; one bad tick is logged instead.
        try {
          this.tick();
        } catch (error) {
          log.error('energy tick failed', { error });
        }
      }, this.options.tickMs ?? 10_000),
    );
    this.replan();
    log.info('energy ready', { chargers: this.chargers(hub.householdId).length, households: households.length });
  }

  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    for (const stop of running.stops.splice(0)) stop();
    for (const energy of running.households.values()) {
      // A final reading still awaited will not reach this hub: the session is recorded as it is.
      for (const charger of [...energy.finalReadings.keys()]) this.recordSession(energy, charger);
      // Open sessions stay open across the restart, with the figures they have now.
      for (const session of energy.sessions.list()) this.persist(energy, session);
    }
    for (const energy of running.households.values()) {
      await energy.writes;
      if (this.keepsSite(energy)) await this.saveSite(energy);
    }
    this.running = null;
  }

  /**
   * A household's energy management, made when it is first needed: at the start for the
   * households there are, and for one created later at its first event or request. Nothing in it
   * ticks on its own: the service's one control step visits the households with something to run.
   */
  private open(householdId: string): HouseholdEnergy {
    const running = this.require();
    const known = running.households.get(householdId);
    if (known) return known;
    const { hub, log, ocpp } = running;
    const energy: HouseholdEnergy = {
      householdId,
      hub,
      log,
      ocpp,
      config: structuredClone(DEFAULT_CONFIG),
      tariff: new Tariff(DEFAULT_CONFIG.tariff),
      meters: new SiteMeters(hub.twins, householdId, hub.clock),
      solar: new Map(),
      sessions: new SessionBook(() => newId(hub.clock.now(), 'ses_')),
      finalReadings: new Map(),
      drawn: new Map(),
      pluggedSince: new Map(),
      plans: new Map(),
      lastTick: hub.clock.now(),
      progressSavedAt: hub.clock.now(),
      progressUnsaved: false,
      openCommands: new Map(),
      askedCurrent: new Map(),
      unsaved: new Set(),
      writes: Promise.resolve(),
      replanDue: false,
      reading: null,
      siteDue: false,
    };
    running.households.set(householdId, energy);
    this.readSite(energy);
    // Cars plugged in before this start: their plug's last report is the best time there is.
    for (const twin of hub.twins.list(householdId)) {
      const plug = twin.state.get('charging.connected');
      if (twin.thing.kind === 'vehicle' && plug?.value === true) energy.pluggedSince.set(twin.thing.id, plug.ts);
    }
    running.mqttChargers
      ?.addHousehold(householdId)
      .catch((error: unknown) =>
        log.error('could not look for the MQTT chargers of a household', { householdId, error }),
      );
    return energy;
  }

  /** A household that is gone: its energy management goes with it (its things and rows go with the household). */
  private close(householdId: string): void {
    const running = this.running;
    const energy = running?.households.get(householdId);
    if (!running || !energy) return;
    running.households.delete(householdId);
    for (const cancel of energy.finalReadings.values()) cancel();
    running.mqttChargers
      ?.removeHousehold(householdId)
      .catch((error: unknown) =>
        energy.log.error('could not stop the MQTT chargers of a household', { householdId, error }),
      );
  }

  // ── Charge points ────────────────────────────────────────────────────────────────────────

  /** Registers an OCPP charge point; answers its thing and, once, the password it must present. */
  async registerCharger(householdId: string, input: { chargePointId: string; name: string; password?: string }) {
    const { ocpp } = this.require();
    // Secure by default: a charge point without a password of its own gets a generated one.
    const password = input.password ?? newPassword();
    const thing = await ocpp.register({
      householdId,
      chargePointId: input.chargePointId,
      name: input.name,
      thingId: `charger-${slugify(input.chargePointId)}`.slice(0, 128),
      password,
    });
    return {
      ...this.chargerView(thing),
      password,
      ocpp: { path: `/ocpp/${encodeURIComponent(input.chargePointId)}`, subprotocol: 'ocpp1.6', securityProfile: 1 },
    };
  }

  async removeCharger(householdId: string, id: string): Promise<void> {
    const energy = this.managed(householdId);
    const thing = this.charger(householdId, id);
    if (!ocppMeta(thing)) throw badRequest(`${id} is not an OCPP charge point; it goes when its device does`);
    await energy.ocpp.unregister(householdId, id);
    // Its session ends here, with the energy counted up to now: no charger is left to end it.
    // After the unregistering, which may fail: a charger still registered keeps its session.
    this.tickHousehold(energy);
    this.closeSession(energy, id, energy.hub.clock.now());
    // The answer waits for the session's record to be settled: recorded finished, open copy gone.
    await energy.writes;
    delete energy.config.chargers[id];
    energy.config.plans = energy.config.plans.filter((p) => p.charger !== id);
    await this.saveSite(energy);
    this.replanHousehold(energy);
  }

  listChargers(householdId: string) {
    return this.chargers(householdId).map((thing) => this.chargerView(thing));
  }

  async setMode(
    householdId: string,
    id: string,
    change: Partial<Omit<ChargerSettings, 'solar'>> & { solar?: Partial<SolarSettings> },
  ) {
    const energy = this.managed(householdId);
    const thing = this.charger(householdId, id);
    if (change.mode !== undefined && !CHARGE_MODES.includes(change.mode))
      throw badRequest(`mode must be one of ${CHARGE_MODES.join(', ')}`);
    const current = this.settingsOf(energy, id);
    const next: ChargerSettings = { ...current, ...change, solar: { ...current.solar, ...(change.solar ?? {}) } };
    if (next.minCurrentA > next.maxCurrentA) throw badRequest('minCurrentA must not be above maxCurrentA');
    if (change.vehicle !== undefined) this.vehicle(householdId, change.vehicle);
    energy.config.chargers[id] = next;
    energy.solar.get(id)?.update(next.solar);
    await this.saveSite(energy);
    this.replanHousehold(energy);
    this.tickHousehold(energy);
    return this.chargerView(thing);
  }

  async changeAvailability(householdId: string, id: string, operative: boolean) {
    return { status: await this.require().ocpp.changeAvailability(this.ocppCharger(householdId, id), operative) };
  }

  async triggerMessage(householdId: string, id: string, message: string) {
    return { status: await this.require().ocpp.triggerMessage(this.ocppCharger(householdId, id), message) };
  }

  // ── Site and tariff ──────────────────────────────────────────────────────────────────────

  async setSite(householdId: string, site: SiteConfig) {
    const energy = this.managed(householdId);
    for (const role of ['grid', 'solar', 'battery', 'house'] as const) {
      const id = site[role];
      if (id === undefined) continue;
      const thing = energy.hub.core.getThing(householdId, id);
      if (!thing) throw notFound(`${role} meter ${JSON.stringify(id)}`);
      if (!Object.hasOwn(thing.properties, 'sensor.power'))
        throw badRequest(`${id} has no sensor.power to read the ${role} from`);
    }
    // The API's schema checks this too; here for callers that come another way.
    const { staleAfterS } = site;
    if (
      staleAfterS !== undefined &&
      (typeof staleAfterS !== 'number' ||
        !Number.isFinite(staleAfterS) ||
        staleAfterS < STALE_AFTER_S_RANGE.min ||
        staleAfterS > STALE_AFTER_S_RANGE.max)
    ) {
      throw badRequest(
        `staleAfterS must be seconds from ${STALE_AFTER_S_RANGE.min} to ${STALE_AFTER_S_RANGE.max}, got ${JSON.stringify(staleAfterS)}`,
      );
    }
    energy.config.site = site;
    await this.saveSite(energy);
    this.replanHousehold(energy);
    // The figures of the meters just chosen, at once rather than at the next control step.
    energy.reading = this.read(energy);
    this.publishSite(energy, energy.reading);
    return this.site(householdId);
  }

  site(householdId: string) {
    const energy = this.managed(householdId);
    // The staleness limit in force is shown even when it is the default, so a user can see it.
    return {
      staleAfterS: DEFAULT_STALE_AFTER_S,
      ...energy.config.site,
      reading: energy.reading ?? this.read(energy),
    };
  }

  /** Replaces the dynamic price series; a series with a gap or overlap is refused, naming the slot. */
  async setPrices(householdId: string, input: { currency: string; slots: PriceSlot[] }) {
    const energy = this.managed(householdId);
    // Prices that have all ended, or slots off the quarter hours, are a mistake the planner cannot use.
    const series = checkNewSeries(input.slots, energy.hub.clock.now());
    const tariff = new Tariff({ ...energy.config.tariff, currency: input.currency, series });
    energy.tariff = tariff;
    energy.config.tariff = tariff.config;
    await this.saveSite(energy);
    this.replanHousehold(energy);
    return this.prices(householdId);
  }

  prices(householdId: string) {
    const { tariff } = this.managed(householdId);
    const series = tariff.config.series ?? [];
    return {
      currency: tariff.currency,
      slots: series.map((s) => ({
        start: new Date(s.start).toISOString(),
        end: new Date(s.end).toISOString(),
        price: s.price,
        ...(s.co2 !== undefined ? { co2: s.co2 } : {}),
      })),
    };
  }

  async setTariff(householdId: string, change: Omit<TariffConfig, 'series'>) {
    const energy = this.managed(householdId);
    energy.tariff = new Tariff({ ...change, series: energy.config.tariff.series });
    energy.config.tariff = energy.tariff.config;
    await this.saveSite(energy);
    this.replanHousehold(energy);
    return this.tariffView(householdId);
  }

  tariffView(householdId: string) {
    const { tariff } = this.managed(householdId);
    const { series: _s, ...rest } = tariff.config;
    return { ...rest, knownUntil: tariff.knownUntil === null ? null : new Date(tariff.knownUntil).toISOString() };
  }

  // ── Plans ────────────────────────────────────────────────────────────────────────────────

  /**
   * Sets the plan for a charge point ("this car to 80 % by 07:30"), replacing any it had, and
   * answers it as planned now. Automations call this too. An infeasible plan is kept and says so,
   * with the shortfall, at once: the user learns it now, not at the deadline.
   */
  async createPlan(householdId: string, input: PlanInput): Promise<PlanView> {
    const energy = this.managed(householdId);
    const request = this.planRequest(householdId, input);
    energy.config.plans = energy.config.plans.filter((p) => p.charger !== input.charger).concat(request);
    const settings = this.settingsOf(energy, input.charger);
    // Asking for a plan is asking the charger to follow it.
    if (settings.mode === 'now' || settings.mode === 'off')
      energy.config.chargers[input.charger] = { ...settings, mode: 'smart' };
    await this.saveSite(energy);
    this.replanHousehold(energy);
    const view = energy.plans.get(input.charger);
    if (!view) throw conflict('the plan could not be made');
    return view;
  }

  /** A plan as asked for, checked: what createPlan stores, and what the `plan` action's guard judges. */
  private planRequest(householdId: string, input: PlanInput): PlanRequest {
    const energy = this.managed(householdId);
    const { clock } = energy.hub;
    const vehicle = this.vehicle(householdId, input.vehicle);
    this.charger(householdId, input.charger);
    if ((input.targetSoc === undefined) === (input.energyKwh === undefined))
      throw badRequest('give either targetSoc or energyKwh');
    const timeZone = this.timeZone(energy);
    let by = parseBy(input.by, clock.now(), timeZone);
    if (by <= clock.now()) throw badRequest(`by (${new Date(by).toISOString()}) has passed`);
    if (
      input.repeat &&
      (input.repeat.length === 0 || input.repeat.some((d) => !Number.isInteger(d) || d < 1 || d > 7))
    ) {
      throw badRequest('repeat lists ISO weekdays, 1 (Monday) to 7 (Sunday)');
    }
    const repeat = input.repeat ? [...new Set(input.repeat)].sort() : undefined;
    const timeOfDay = repeat ? timeOfDayOf(input.by, by, timeZone) : undefined;
    // A weekly plan's first deadline is on one of its days too: "07:30 on weekdays" asked for on a
    // Saturday is due on Monday, not on the Sunday the time alone would name.
    if (repeat) by = nextOccurrence(by, repeat, clock.now(), timeZone, timeOfDay);
    // Every replan prices each quarter hour up to the latest deadline: a far deadline would exhaust memory.
    if (by > clock.now() + MAX_PLAN_AHEAD_MS) throw badRequest('by must be at most 7 days ahead');
    const request: PlanRequest = {
      vehicle: vehicle.id,
      charger: input.charger,
      by,
      ...(input.targetSoc !== undefined
        ? { targetSoc: input.targetSoc }
        : { energyKwh: input.energyKwh, deliveredKwh: 0 }),
      ...(repeat ? { repeat, timeOfDay } : {}),
    };
    // Checks now that the car can be planned for (a target SoC needs its battery figures).
    remainingNeed(request, this.car(householdId, vehicle.id), this.efficiency);
    return request;
  }

  /** A plan asked for over the API: its vehicle as for the charger's `plan` action (see planInput). */
  async planOnCharger(householdId: string, charger: string, input: Record<string, unknown>): Promise<PlanView> {
    // The household first: the car of a charger's session is looked up among its own.
    const energy = this.managed(householdId);
    return this.createPlan(householdId, this.planInput(energy, charger, input));
  }

  /**
   * A plan asked for on a charger (the API's, or its `plan` action's input) with its vehicle: the
   * one named, else the car of the session under way (it may have been plugged in long ago), else
   * the one tied to the charger.
   */
  private planInput(energy: HouseholdEnergy, charger: string, input: Record<string, unknown>) {
    const vehicle =
      typeof input.vehicle === 'string'
        ? input.vehicle
        : (energy.sessions.current(charger)?.vehicle ?? this.vehicleAt(energy, charger));
    if (!vehicle) throw badRequest(`no vehicle is tied to ${charger}; name one in the plan`);
    return {
      vehicle,
      charger,
      targetSoc: input.targetSoc as number | undefined,
      energyKwh: input.energyKwh as number | undefined,
      by: input.by as string,
      repeat: input.repeat as number[] | undefined,
    };
  }

  /** Refuses a `plan` action to one of this hub's OCPP chargers that createPlan would refuse. */
  private checkPlanAction(_request: CommandRequest, command: Command): HubError | null {
    if (command.action !== 'plan') return null;
    const thing = this.running?.hub.core.getThing(command.householdId, command.thing);
    if (!thing || !ocppMeta(thing)) return null;
    try {
      // The household first, as for planCharge: planInput reads that household's sessions.
      const energy = this.managed(command.householdId);
      this.planRequest(command.householdId, this.planInput(energy, thing.id, command.input));
      return null;
    } catch (error) {
      if (error instanceof HubError) return error;
      throw error;
    }
  }

  listPlans(householdId: string): PlanView[] {
    return [...this.managed(householdId).plans.values()];
  }

  plan(householdId: string, charger: string): PlanView {
    const view = this.managed(householdId).plans.get(charger);
    if (!view) throw notFound(`plan for ${JSON.stringify(charger)}`);
    return view;
  }

  async removePlan(householdId: string, charger: string): Promise<void> {
    const energy = this.managed(householdId);
    const before = energy.config.plans.length;
    energy.config.plans = energy.config.plans.filter((p) => p.charger !== charger);
    if (before === energy.config.plans.length) throw notFound(`plan for ${JSON.stringify(charger)}`);
    await this.saveSite(energy);
    this.replanHousehold(energy);
  }

  // ── Sessions ─────────────────────────────────────────────────────────────────────────────

  async listSessions(householdId: string, since?: number) {
    const energy = this.managed(householdId);
    // A session that ended a moment ago is in the event log's buffer still.
    await energy.hub.history.flush();
    // The newest 500 when there are more (a household that charges daily has after a year and a
    // half), listed oldest first as always.
    const past = (
      await energy.hub.store.listEvents({ householdId, types: ['energy.session'], since, limit: 500, newest: true })
    ).reverse();
    const open = energy.sessions.list().map((s) => ({ ...sessionView(s), open: true }));
    // Ended, and waiting a moment for the charger's final meter reading before they are recorded:
    // after the recorded ones, which come oldest first.
    const ended = energy.sessions.listEnded().map((s) => ({ ...sessionView(s), open: false }));
    return [...open, ...past.map((e) => ({ ...(('data' in e ? e.data : {}) ?? {}), open: false })), ...ended];
  }

  // ── The loop ─────────────────────────────────────────────────────────────────────────────

  /** Re-plans every household's plans. */
  replan(): void {
    for (const energy of this.running?.households.values() ?? []) this.replanHousehold(energy);
  }

  /** Re-plans a household's plans together (they share its site's limit) and announces plans that changed. */
  private replanHousehold(energy: HouseholdEnergy): void {
    energy.replanDue = false;
    const { hub, tariff, householdId } = energy;
    const now = hub.clock.now();
    const timeZone = this.timeZone(energy);
    // Plans whose deadline passed are finished, or roll on to their next weekday.
    let rolled = false;
    energy.config.plans = energy.config.plans.flatMap((p) => {
      if (p.by > now) return [p];
      rolled = true;
      return p.repeat
        ? [
            {
              ...p,
              by: nextOccurrence(p.by, p.repeat, now, timeZone, p.timeOfDay),
              ...(p.energyKwh !== undefined ? { deliveredKwh: 0 } : {}),
            },
          ]
        : [];
    });
    if (rolled)
      this.saveSite(energy).catch((error: unknown) => energy.log.error('could not store the plans', { error }));
    const needs = energy.config.plans.map((p) => {
      const car = this.car(householdId, p.vehicle);
      let needed = 0;
      // A car whose battery figures went missing cannot be planned for: the plan says so.
      let unknown: string | null = null;
      try {
        needed = remainingNeed(p, car, this.efficiency);
      } catch (error) {
        unknown = error instanceof Error ? error.message : String(error);
      }
      return {
        request: p,
        car,
        unknown,
        need: {
          id: p.charger,
          energyKwh: needed,
          maxPowerKw: maxPowerKw(this.settingsOf(energy, p.charger)),
          by: p.by,
        },
      };
    });
    const until = Math.max(now, ...needs.map((n) => n.need.by));
    const houseKw = plannedHouseReserveKw(energy.config.site, this.read(energy));
    const siteLimitKw = Math.max(0, energy.config.site.limitKw - houseKw);
    // Times past the known prices are charged at rather than left out (see chargeUnpriced).
    const plans: ChargePlan[] = needs.length
      ? planCharging({
          now,
          slots: tariff.slotsBetween(now, until),
          siteLimitKw,
          needs: needs.map((n) => n.need),
          chargeUnpriced: true,
        })
      : [];
    const next = new Map<string, PlanView>();
    plans.forEach((plan, i) => {
      const { request, car, need, unknown } = needs[i];
      const reason =
        unknown ??
        (plan.feasible
          ? null
          : shortfallReason({
              neededKwh: need.energyKwh,
              plannedKwh: plan.energyKwh,
              now,
              by: need.by,
              chargerKw: need.maxPowerKw,
              siteKw: siteLimitKw,
              others: needs.length - 1,
              timeZone,
            }));
      next.set(
        request.charger,
        planView(request, plan, {
          neededKwh: need.energyKwh,
          capacityKwh: car.capacityKwh,
          efficiency: this.efficiency,
          currency: tariff.currency,
          now,
          reason,
        }),
      );
    });
    for (const [charger, view] of next) {
      const before = energy.plans.get(charger);
      if (
        !before ||
        before.feasible !== view.feasible ||
        Math.abs(before.cost - view.cost) > 1e-6 ||
        Math.abs(before.energyKwh - view.energyKwh) > 1e-6 ||
        before.slots.length !== view.slots.length
      ) {
        this.announce(energy, 'energy.plan', charger, { ...view } as unknown as Record<string, unknown>);
        if (!view.feasible && (!before || before.feasible)) {
          energy.log.warn('charge plan cannot be met', {
            charger,
            shortfallKwh: view.shortfallKwh,
            by: view.by,
            reason: view.reason,
          });
        }
      }
    }
    for (const charger of energy.plans.keys())
      if (!next.has(charger)) this.announce(energy, 'energy.plan.removed', charger, {});
    energy.plans = next;
  }

  /**
   * One control step for every household with something to run: chargers, or a site it set up.
   * Another household costs a look at its things, nothing more.
   */
  tick(): void {
    for (const energy of this.running?.households.values() ?? []) {
      const chargers = this.chargers(energy.householdId);
      if (chargers.length > 0 || this.keepsSite(energy)) this.tickHousehold(energy, chargers);
      // Nothing to count: the next stretch starts now, not at the last step it had.
      else energy.lastTick = energy.hub.clock.now();
    }
  }

  /** One control step of a household: count energy, decide currents, send the changes. */
  private tickHousehold(energy: HouseholdEnergy, chargers = this.chargers(energy.householdId)): void {
    const { hub, config, tariff } = energy;
    const now = hub.clock.now();
    const dtHours = Math.max(0, now - energy.lastTick) / 3_600_000;
    energy.lastTick = now;
    const reading = this.read(energy, chargers);
    energy.reading = reading;
    this.publishSite(energy, reading);

    // Null while no one can measure the surplus: no charger may use it (see SolarSurplus.decide).
    let surplusLeft = reading.surplusW;
    const wants: Array<{ id: string; currentA: number; limits: ChargerLimits; thing: Thing }> = [];
    for (const thing of chargers) {
      const settings = this.settingsOf(energy, thing.id);
      // What it drew over the stretch since the last tick: at an unplug, the tick runs while the
      // report is heard, and that report's 0 kW is what it draws from now on, not what it drew.
      const drawW = this.powerKw(thing, 'before') * 1000;
      // The surplus this charger may use: what is left after chargers served before it.
      const surplusW = Math.max(0, surplusLeft ?? 0);
      const plannedKw = this.plannedPower(energy, thing.id, now);
      let solar = energy.solar.get(thing.id);
      if (!solar) {
        solar = new SolarSurplus(settings.solar);
        energy.solar.set(thing.id, solar);
      }
      // A charger with no car plugged in wants nothing: in `now` mode it held half the site's
      // headroom, and in `solar` mode the surplus, from the charger that had a car.
      const currentA = this.plugged(thing)
        ? wantedCurrent({ mode: settings.mode, limits: settings, now, surplusW: surplusLeft, solar, plannedKw })
        : 0;
      if (surplusLeft !== null) surplusLeft -= currentA * wattsPerAmp(settings);
      wants.push({ id: thing.id, currentA, limits: settings, thing });

      // Energy since the last tick (the meter's, or power × time without one), priced now, and
      // how much of it the sun gave. Its power and this moment are kept for the stretch after it,
      // should the charger be removed before the next tick (see countLastStretch).
      energy.drawn.set(thing.id, { powerKw: this.powerKw(thing), at: now });
      const session = energy.sessions.current(thing.id);
      if (session) {
        energy.sessions.estimate(thing.id, (drawW / 1000) * dtHours);
        const priced = energy.sessions.price(thing.id, {
          solarShare: drawW > 0 ? Math.min(1, surplusW / drawW) : 0,
          importPrice: tariff.priceAt(now),
          feedInPrice: tariff.feedIn,
        });
        if (priced > 0) {
          this.persist(energy, session);
          const plan = config.plans.find((p) => p.charger === thing.id && p.energyKwh !== undefined);
          if (plan) {
            plan.deliveredKwh = (plan.deliveredKwh ?? 0) + priced;
            energy.replanDue = true;
            energy.progressUnsaved = true;
          }
        }
      }
    }
    // What energy plans have had is kept as it goes, a minute's worth at a time: after a crash the
    // hub would otherwise plan what was delivered a second time (a clean stop saves it anyway).
    if (energy.progressUnsaved && now - energy.progressSavedAt >= PROGRESS_SAVE_MS) {
      energy.progressUnsaved = false;
      energy.progressSavedAt = now;
      this.saveSite(energy).catch((error: unknown) => energy.log.error('could not store the plans', { error }));
    }
    const shares = shareHeadroom(wants, reading.headroomW);
    for (const want of wants) this.command(energy, want.thing, shares.get(want.id) ?? 0);
    if (energy.replanDue || this.slotBoundaryPassed(now, dtHours)) this.replanHousehold(energy);
  }

  private slotBoundaryPassed(now: number, dtHours: number): boolean {
    const quarter = 15 * 60_000;
    return Math.floor(now / quarter) !== Math.floor((now - dtHours * 3_600_000) / quarter);
  }

  /** Whether a car is plugged into the charger; one that cannot tell is taken as plugged in. */
  private plugged(thing: Thing): boolean {
    if (!Object.hasOwn(thing.properties, 'charging.connected')) return true;
    return this.require().hub.core.getValue(thing.householdId, thing.id, 'charging.connected') === true;
  }

  /** Sends a new current limit when it differs from the charger's own, one command at a time. */
  private command(energy: HouseholdEnergy, thing: Thing, currentA: number): void {
    const { hub } = energy;
    if (!this.plugged(thing)) return;
    if (hub.twins.get(thing.householdId, thing.id)?.online === false) return;
    const open = energy.openCommands.get(thing.id);
    if (open && hub.commands.get(open)) return;
    const limit = hub.core.getValue(thing.householdId, thing.id, 'charging.current_limit');
    if (typeof limit === 'number' && limit - currentA < 0.5) {
      // Half an ampere over what is wanted is let be (the charger's own rounding); any tenth under
      // it is sent: a plan counts on every tenth (10.6 A left at 10 A missed the car's departure).
      if (currentA - limit < 0.05) return;
      // Unless this is what it was last asked and it holds less than an ampere under: a charger
      // that takes whole amperes holds 10 A for 10.6, and asking again every step changes nothing.
      // One set lower from elsewhere (its own app) is asked again.
      const asked = energy.askedCurrent.get(thing.id);
      if (asked !== undefined && Math.abs(asked - currentA) < 0.05 && currentA - limit < 1) return;
    }
    energy.askedCurrent.set(thing.id, currentA);
    hub.commands
      .dispatch({
        householdId: thing.householdId,
        thing: thing.id,
        action: 'set_current_limit',
        input: { current: currentA },
        issuedBy: 'energy',
      })
      .then((command) => energy.openCommands.set(thing.id, command.id))
      .catch((error: unknown) => energy.log.warn('could not set the charge current', { charger: thing.id, error }));
  }

  private onEvent(event: HubEvent): void {
    const running = this.running;
    if (!running) return;
    // A household comes with its household thing and goes with it (see ensureHouseholdThing): one
    // created after the start is managed from its first event, one removed is forgotten.
    if (event.type === 'thing.removed' && event.thing === HOUSEHOLD_THING) {
      this.close(event.householdId);
      return;
    }
    const known = running.households.get(event.householdId);
    if (!known && !running.hub.core.getThing(event.householdId, HOUSEHOLD_THING)) return;
    const energy = known ?? this.open(event.householdId);
    if (event.type === 'thing.removed' && typeof event.thing === 'string') {
      // A car taken out of the hub is no longer plugged in anywhere it could be matched.
      energy.pluggedSince.delete(event.thing);
      energy.askedCurrent.delete(event.thing);
      this.forgetVehicle(energy, event.thing);
      // A charger taken out (its device gone) ends its session with the energy counted so far,
      // and the stretch since its last control step: no later step will see it.
      const now = energy.hub.clock.now();
      this.countLastStretch(energy, event.thing, now);
      this.closeSession(energy, event.thing, now);
      return;
    }
    // A charger or a site meter that goes offline (or comes back) changes what the site's figures
    // count of it: a grid meter's last will must clear its figure now, not at the next control step.
    if (event.type === 'availability') {
      const thing = energy.hub.core.getThing(event.householdId, event.thing);
      if (thing && (thing.kind === 'charger' || this.isSiteMeter(energy, thing))) this.siteChanged(energy);
      return;
    }
    if (event.type !== 'state') return;
    const thing = energy.hub.core.getThing(event.householdId, event.thing);
    if (!thing) return;
    const now = energy.hub.clock.now();
    if (this.feedsSite(energy, thing, event.property)) this.siteChanged(energy);
    if (thing.kind === 'charger') {
      this.onChargerChange(energy, thing, event, now);
      return;
    }
    if (event.property === 'battery.level' || event.property === 'battery.capacity') {
      if (energy.config.plans.some((p) => p.vehicle === thing.id)) energy.replanDue = true;
    }
    if (thing.kind !== 'vehicle' || event.property !== 'charging.connected') return;
    if (event.to !== true) {
      energy.pluggedSince.delete(thing.id);
      return;
    }
    if (event.from === true) return;
    energy.pluggedSince.set(thing.id, now);
    // The car's plug and a charger's session belong together only if they began about together:
    // a car plugging in at a charger the hub does not run is not the car of a session that began
    // an hour ago here. Two sessions that began about then: it could be either, so neither.
    const near = energy.sessions
      .list()
      .filter((session) => !session.vehicle && Math.abs(session.start - now) <= PLUG_MATCH_MS);
    if (near.length === 1 && energy.sessions.assign(near[0].charger, thing.id)) this.persist(energy, near[0]);
    this.replanHousehold(energy);
  }

  /** A charger's plug opens and closes its session; its meter counts the session's energy. */
  private onChargerChange(energy: HouseholdEnergy, thing: Thing, event: StateChanged, now: number): void {
    const { sessions } = energy;
    if (event.property === 'sensor.energy' && typeof event.to === 'number') {
      const session = sessions.current(thing.id);
      if (sessions.read(thing.id, event.to) && session) this.persist(energy, session);
      // The final reading an ended session waited for: it is complete now.
      if (energy.finalReadings.has(thing.id)) this.recordSession(energy, thing.id);
      return;
    }
    if (event.property === 'charging.power' && typeof event.to === 'number') {
      const drawn = energy.drawn.get(thing.id);
      if (drawn) drawn.powerKw = event.to;
    }
    if (event.property !== sessionProperty(thing)) return;
    if (event.to === true) {
      // A session still waiting for its final reading is recorded as it is: what the meter adds
      // from here is the new session's.
      this.recordSession(energy, thing.id);
      const session = sessions.begin({
        charger: thing.id,
        vehicle: this.vehicleAt(energy, thing.id),
        now,
        currency: energy.tariff.currency,
        meterKwh: this.meterOf(thing),
      });
      this.persist(energy, session);
      this.replanHousehold(energy);
    } else if (event.to === false) {
      // Count the last stretch before closing. The charger's own time of the unplug, when it
      // gave one (a charger back after an outage reports it late), is when the session ended.
      this.tickHousehold(energy);
      // A charger whose clock is wrong (1970, hours behind) gives a time before the session: then
      // it ends now.
      const start = energy.sessions.current(thing.id)?.start ?? now;
      const end = event.ts >= start && event.ts <= now ? event.ts : now;
      if (meterTrails(thing) && sessions.finish(thing.id, end)) this.awaitFinalReading(energy, thing.id);
      else this.closeSession(energy, thing.id, end);
      this.replanHousehold(energy);
    }
  }

  /**
   * Unties a removed car from every charger set to it and drops its plans: a later session there
   * would otherwise be that car's, and its plan one for a car that is gone.
   */
  private forgetVehicle(energy: HouseholdEnergy, vehicle: string): void {
    const tied = Object.values(energy.config.chargers).filter((settings) => settings.vehicle === vehicle);
    const plans = energy.config.plans.filter((p) => p.vehicle !== vehicle);
    if (tied.length === 0 && plans.length === energy.config.plans.length) return;
    for (const settings of tied) delete settings.vehicle;
    energy.config.plans = plans;
    this.saveSite(energy).catch((error: unknown) => energy.log.error('could not store the site', { error }));
    this.replanHousehold(energy);
  }

  /** Ends a charger's open session, if it has one, and records it with the finished ones. */
  private closeSession(energy: HouseholdEnergy, charger: string, end: number): void {
    energy.sessions.finish(charger, end);
    // A session that was waiting for its final reading is recorded too: nothing is left to wait for.
    this.recordSession(energy, charger);
  }

  /** Records an ended session once its final reading comes, or without it after the wait. */
  private awaitFinalReading(energy: HouseholdEnergy, charger: string): void {
    energy.finalReadings.get(charger)?.();
    const cancel = energy.hub.clock.setTimeout(() => {
      // As with the tick: a throw in a timer callback would take the whole hub down.
      try {
        this.recordSession(energy, charger);
      } catch (error) {
        energy.log.error('could not record the charging session', { charger, error });
      }
    }, FINAL_READING_WAIT_MS);
    energy.finalReadings.set(charger, cancel);
  }

  /** Records a charger's ended session, if it has one, with the finished ones. */
  private recordSession(energy: HouseholdEnergy, charger: string): void {
    const { sessions, tariff, finalReadings } = energy;
    finalReadings.get(charger)?.();
    finalReadings.delete(charger);
    const ended = sessions.ending(charger);
    if (!ended) return;
    // What the meter added since the last step (its final reading came with the unplug, or after
    // the switch-off), at the price of when it ended.
    sessions.price(charger, {
      solarShare: 0,
      importPrice: tariff.priceAt(ended.end ?? energy.hub.clock.now()),
      feedInPrice: tariff.feedIn,
    });
    const session = sessions.settle(charger);
    if (!session) return;
    this.announce(energy, 'energy.session', charger, sessionView(session));
    this.forget(energy, session);
  }

  /**
   * Counts, for a charger without a meter that is gone, its power over the stretch since its last
   * control step, as that step would have.
   */
  private countLastStretch(energy: HouseholdEnergy, charger: string, now: number): void {
    const drawn = energy.drawn.get(charger);
    energy.drawn.delete(charger);
    if (drawn) energy.sessions.estimate(charger, (drawn.powerKw * Math.max(0, now - drawn.at)) / 3_600_000);
  }

  /**
   * Stores an open session's latest figures, so a restart or a crash takes it up where it was.
   * Writes go one after another (a later one must never land before an earlier one), and a
   * session with a write still waiting gets no second one: that write takes its latest figures.
   */
  private persist(energy: HouseholdEnergy, session: ChargingSession): void {
    if (energy.unsaved.has(session.id)) return;
    energy.unsaved.add(session.id);
    const { hub } = energy;
    energy.writes = energy.writes
      .then(async () => {
        energy.unsaved.delete(session.id);
        if (session.end !== null) return;
        const row: StoredChargingSession = {
          householdId: energy.householdId,
          id: session.id,
          charger: session.charger,
          body: storedSession(session),
          updatedAt: hub.clock.now(),
        };
        await hub.store.saveOpenChargingSession(row);
      })
      .catch((error: unknown) =>
        energy.log.error('could not store the open charging session', { session: session.id, error }),
      );
  }

  /**
   * Drops a finished session's open copy once the session is in the event log: a crash in
   * between leaves it to be found finished at the next start, never lost.
   */
  private forget(energy: HouseholdEnergy, session: ChargingSession): void {
    const { hub } = energy;
    energy.writes = energy.writes
      .then(async () => {
        await hub.history.flush();
        await hub.store.deleteOpenChargingSession(energy.householdId, session.id);
      })
      .catch((error: unknown) =>
        energy.log.error('could not drop the finished charging session', { session: session.id, error }),
      );
  }

  /** Sessions open when the hub last stopped (or crashed), less any that were finished already. */
  private async unfinishedSessions(energy: HouseholdEnergy): Promise<StoredChargingSession[]> {
    const { householdId } = energy;
    const { store } = energy.hub;
    const stored = await store.listOpenChargingSessions(householdId);
    if (stored.length === 0) return [];
    // A crash between recording a finished session and dropping its open copy leaves both.
    // From the earliest start among them (an unreadable row is refused later, in resumeSessions).
    const starts = stored.map((row) => Date.parse(String(row.body.start))).filter(Number.isFinite);
    if (starts.length === 0) return stored;
    const since = Math.min(...starts);
    const finished = await store.listEvents({ householdId, types: ['energy.session'], since, limit: 10_000 });
    const done = new Set(finished.map((event) => ('data' in event ? event.data?.id : undefined)));
    const left: StoredChargingSession[] = [];
    for (const row of stored) {
      if (!done.has(row.id)) left.push(row);
      else await store.deleteOpenChargingSession(householdId, row.id);
    }
    return left;
  }

  /**
   * Takes back the sessions open at the last stop, closing those whose charger is gone or whose
   * car was unplugged while the hub was down; opens one for a charger found in use without one.
   */
  private resumeSessions(energy: HouseholdEnergy, stored: StoredChargingSession[]): void {
    const { hub, sessions, log } = energy;
    for (const row of stored) {
      let session: ChargingSession;
      try {
        session = sessionFromStored(row.body);
      } catch (error) {
        log.error('a stored charging session is unreadable; it is left out', { session: row.id, error });
        continue;
      }
      if (!sessions.restore(session)) {
        log.warn('a second stored session for one charger is left out', { session: session.id });
        continue;
      }
      const thing = hub.core.getThing(energy.householdId, session.charger);
      if (thing?.kind !== 'charger') {
        // The charger was removed while the hub was down: the session ended when last seen.
        this.closeSession(energy, session.charger, row.updatedAt);
        continue;
      }
      const meter = this.meterOf(thing);
      if (meter !== null) sessions.read(thing.id, meter);
      if (!this.inSession(thing)) this.closeSession(energy, thing.id, this.unpluggedAt(thing, session, row.updatedAt));
      else this.persist(energy, session);
    }
    for (const thing of this.chargers(energy.householdId)) {
      if (!this.inSession(thing) || sessions.current(thing.id)) continue;
      // In use since before this start with no session kept (as a hub that kept none left it):
      // counting from now is better than not counting at all.
      const session = sessions.begin({
        charger: thing.id,
        vehicle: this.vehicleAt(energy, thing.id),
        now: hub.clock.now(),
        currency: energy.tariff.currency,
        meterKwh: this.meterOf(thing),
      });
      this.persist(energy, session);
    }
    if (sessions.list().length) log.info('charging sessions under way', { sessions: sessions.list().length });
  }

  /**
   * When a car was unplugged while the hub was down: the time of the report that said so, if it
   * came after the session began; otherwise the last time the hub knew the session to be open.
   */
  private unpluggedAt(thing: Thing, session: ChargingSession, lastKnown: number): number {
    const { hub } = this.require();
    const reported = hub.twins.get(thing.householdId, thing.id)?.state.get(sessionProperty(thing))?.ts;
    const now = hub.clock.now();
    return reported !== undefined && reported > session.start && reported <= now ? reported : lastKnown;
  }

  /** Whether a charger's state says a session is under way (see sessionProperty). */
  private inSession(thing: Thing): boolean {
    return this.require().hub.core.getValue(thing.householdId, thing.id, sessionProperty(thing)) === true;
  }

  /** The charger's meter register, kWh, when it has reported one. */
  private meterOf(thing: Thing): number | null {
    const value = this.require().hub.core.getValue(thing.householdId, thing.id, 'sensor.energy');
    return typeof value === 'number' && Number.isFinite(value) ? value : null;
  }

  // ── Helpers ──────────────────────────────────────────────────────────────────────────────

  private get efficiency(): number {
    return this.options.efficiency ?? 0.9;
  }

  /**
   * The household's time zone: the tariff's, else the hub process's own, as its automations and
   * the session answer have it (see householdTimeZone).
   */
  private timeZone(energy: HouseholdEnergy): string {
    return householdTimeZone(energy.config.tariff.timeZone);
  }

  /** A thing that is a vehicle: an unknown id is not found, anything else (a light) is refused naming it. */
  private vehicle(householdId: string, id: string): Thing {
    const thing = this.require().hub.core.getThing(householdId, id);
    if (!thing) throw notFound(`vehicle ${JSON.stringify(id)}`);
    if (thing.kind !== 'vehicle') throw badRequest(`${JSON.stringify(id)} is a ${thing.kind}, not a vehicle`);
    return thing;
  }

  /**
   * The site's figures from its meters, with what its chargers draw. A charger that is offline
   * (its charge point disconnected) is not counted: its last reported power is not known to flow.
   */
  private read(energy: HouseholdEnergy, chargers = this.chargers(energy.householdId)): SiteReading {
    const online = (t: Thing) => energy.hub.twins.get(t.householdId, t.id)?.online !== false;
    const chargersW = chargers.filter(online).reduce((sum, t) => sum + this.powerKw(t) * 1000, 0);
    return energy.meters.read(energy.config.site, chargersW);
  }

  /**
   * Whether a change of this property changes the site's figures: a site meter's power, or what a
   * charger draws.
   */
  private feedsSite(energy: HouseholdEnergy, thing: Thing, property: string): boolean {
    if (thing.kind === 'charger') return property === 'charging.power';
    return property === 'sensor.power' && this.isSiteMeter(energy, thing);
  }

  /** Whether the thing is one of the site's meters (grid, solar, home battery, house). */
  private isSiteMeter(energy: HouseholdEnergy, thing: Thing): boolean {
    const { site } = energy.config;
    return [site.grid, site.solar, site.battery, site.house].some((meter) => meter !== undefined && meter === thing.id);
  }

  /**
   * Publishes the site's figures again after a meter or charger reported, once for the values that
   * came together (the meters of one message): the site's grid figure is then always the grid
   * meter's, not the one of up to a control step ago (11 kW from the grid beside a meter that
   * already read 300 W). The control step keeps its own pace.
   */
  private siteChanged(energy: HouseholdEnergy): void {
    if (energy.siteDue) return;
    energy.siteDue = true;
    queueMicrotask(() => {
      energy.siteDue = false;
      // Stopped, or the household gone, meanwhile.
      if (this.running?.households.get(energy.householdId) !== energy) return;
      energy.reading = this.read(energy);
      this.publishSite(energy, energy.reading);
    });
  }

  /** Shows the site's figures on its site thing; a household that set nothing up has none to show them on. */
  private publishSite(energy: HouseholdEnergy, reading: SiteReading): void {
    if (!this.keepsSite(energy)) return;
    const { hub, householdId } = energy;
    const values: Record<string, number | null> = {
      'site.grid_power': reading.gridW,
      'site.solar_power': reading.solarW,
      'site.battery_power': reading.batteryW,
      'site.house_power': reading.houseW,
      'site.charge_power': reading.chargersW,
      'site.surplus_power': reading.surplusW,
    };
    // An unknown figure is published as null, so it is shown as unknown rather than as the number
    // its meter gave before it went offline or silent; only once, while the site shows a number
    // (a meter never chosen or never heard from leaves its figure unset, as it always did).
    const shown = (property: string) => {
      const value = hub.core.getValue(householdId, SITE_THING, property);
      return value !== null && value !== undefined;
    };
    hub.core.ingest(
      Object.entries(values)
        .filter(([property, v]) => v !== null || shown(property))
        .map(([property, value]) => ({
          householdId,
          thing: SITE_THING,
          property,
          value: value === null ? null : Math.round(value * 10) / 10,
          source: ENERGY_ADAPTER,
        })),
    );
  }

  private plannedPower(energy: HouseholdEnergy, charger: string, now: number): number | null {
    const view = energy.plans.get(charger);
    if (!view) return null;
    const slot = view.slots.find((s) => Date.parse(s.start) <= now && now < Date.parse(s.end));
    return slot ? slot.powerKw : 0;
  }

  private vehicleAt(energy: HouseholdEnergy, charger: string): string | null {
    const plan = energy.config.plans.find((p) => p.charger === charger);
    if (plan) return plan.vehicle;
    const configured = energy.config.chargers[charger]?.vehicle;
    if (configured) return configured;
    // A car plugged in about when this session began (see PLUG_MATCH_MS), and only one. The time
    // is that of its plug-in, not of its latest report (a car re-reports its plug on reconnecting);
    // pluggedSince holds only cars plugged in now.
    const now = energy.hub.clock.now();
    const plugged = [...energy.pluggedSince].filter(([, since]) => Math.abs(now - since) <= PLUG_MATCH_MS);
    return plugged.length === 1 ? plugged[0][0] : null;
  }

  private car(householdId: string, vehicle: string): { soc: number | null; capacityKwh: number | null } {
    const { core } = this.require().hub;
    const soc = core.getValue(householdId, vehicle, 'battery.level');
    const capacity = core.getValue(householdId, vehicle, 'battery.capacity');
    return {
      soc: typeof soc === 'number' ? soc : null,
      capacityKwh: typeof capacity === 'number' && capacity > 0 ? capacity : null,
    };
  }

  /** The charger's power, kW: now, or `before` the report being heard (see TwinRegistry.valueBefore). */
  private powerKw(thing: Thing, when: 'now' | 'before' = 'now'): number {
    const { twins } = this.require().hub;
    const value =
      when === 'now'
        ? twins.value(thing.householdId, thing.id, 'charging.power')
        : twins.valueBefore(thing.householdId, thing.id, 'charging.power');
    return typeof value === 'number' && Number.isFinite(value) ? value : 0;
  }

  private settingsOf(energy: HouseholdEnergy, charger: string): ChargerSettings {
    const stored = energy.config.chargers[charger];
    if (stored) return stored;
    return defaultSettings(energy.hub.core.getThing(energy.householdId, charger));
  }

  /**
   * A household's energy management: its site, tariff, prices, plans and charge modes, kept on its
   * own site thing. One household never reads or changes another's: each request names its own.
   */
  private managed(householdId: string): HouseholdEnergy {
    return this.open(householdId);
  }

  /**
   * Whether the household keeps a site thing: the first always has one; another once it has set
   * something (a site, a tariff, a mode, a plan). A household that never used energy management
   * gets no thing it did not ask for.
   */
  private keepsSite(energy: HouseholdEnergy): boolean {
    return (
      energy.householdId === energy.hub.householdId ||
      energy.hub.core.getThing(energy.householdId, SITE_THING) !== undefined
    );
  }

  private chargers(householdId: string): Thing[] {
    return this.require()
      .hub.twins.list(householdId)
      .map((t) => t.thing)
      .filter((t) => t.kind === 'charger' && Object.hasOwn(t.actions, 'set_current_limit'));
  }

  private charger(householdId: string, id: string): Thing {
    const thing = this.require().hub.core.getThing(householdId, id);
    if (thing?.kind !== 'charger') throw notFound(`charger ${JSON.stringify(id)}`);
    return thing;
  }

  private ocppCharger(householdId: string, id: string): Thing {
    const thing = this.charger(householdId, id);
    if (!ocppMeta(thing)) throw badRequest(`${id} is not an OCPP charge point`);
    return thing;
  }

  private chargerView(thing: Thing) {
    const { hub, ocpp } = this.require();
    const twin = hub.twins.get(thing.householdId, thing.id);
    const state: Record<string, unknown> = {};
    for (const [name, value] of twin?.state ?? []) state[name] = value.value;
    const meta = ocppMeta(thing);
    // Settings, plans and sessions are those of the charger's own household.
    const energy = this.managed(thing.householdId);
    const { solar, ...settings } = this.settingsOf(energy, thing.id);
    const session = energy.sessions.current(thing.id);
    return {
      id: thing.id,
      name: thing.name,
      protocol: meta ? 'ocpp1.6' : 'mqtt',
      chargePointId: meta?.chargePointId ?? null,
      connected: meta ? ocpp.isConnected(thing) : twin?.online !== false,
      vendor: meta?.vendor ?? null,
      model: meta?.model ?? null,
      ...settings,
      solar,
      state,
      plan: energy.plans.get(thing.id) ?? null,
      session: session ? sessionView(session) : null,
    };
  }

  private announce(
    energy: HouseholdEnergy,
    type: `energy.${string}`,
    thing: string,
    data: Record<string, unknown>,
  ): void {
    const { hub, householdId } = energy;
    hub.bus.publish({
      type,
      id: newId(hub.clock.now(), 'evt_'),
      householdId,
      ts: hub.clock.now(),
      thing,
      data,
    });
  }

  /** The household's stored settings, plans and modes, from its site thing; the defaults without one. */
  private readSite(energy: HouseholdEnergy): void {
    const existing = energy.hub.core.getThing(energy.householdId, SITE_THING);
    const stored = existing?.meta?.energy as Partial<EnergyConfig> | undefined;
    energy.config = { ...structuredClone(DEFAULT_CONFIG), ...(stored ?? {}) };
    try {
      energy.tariff = new Tariff(energy.config.tariff);
    } catch (error) {
      const { config, dropped } = usableTariff(energy.config.tariff);
      energy.log.error('stored tariff is partly unusable; starting without what this version refuses', {
        error,
        dropped,
      });
      energy.config.tariff = config;
      try {
        energy.tariff = new Tariff(config);
      } catch {
        energy.config.tariff = { currency: config.currency };
        energy.tariff = new Tariff(energy.config.tariff);
      }
    }
  }

  /** At the start: the site thing written again as this version keeps it (see readSite for the reading). */
  private async loadSite(energy: HouseholdEnergy): Promise<void> {
    if (this.keepsSite(energy)) await this.saveSite(energy);
  }

  private async saveSite(energy: HouseholdEnergy): Promise<void> {
    const { householdId } = energy;
    const { core } = energy.hub;
    await core.upsertThing({
      id: SITE_THING,
      householdId,
      kind: 'site',
      name: 'Site',
      adapter: ENERGY_ADAPTER,
      properties: {
        'site.grid_power': SITE_PROPERTY('W'),
        'site.solar_power': SITE_PROPERTY('W'),
        'site.battery_power': SITE_PROPERTY('W'),
        'site.house_power': SITE_PROPERTY('W'),
        'site.charge_power': SITE_PROPERTY('W'),
        'site.surplus_power': SITE_PROPERTY('W'),
      },
      actions: {},
      meta: { energy: structuredClone(energy.config) },
    });
  }

  private require(): Running {
    if (!this.running) throw new Error('the energy service has not started');
    return this.running;
  }
}

/** The service while it runs: what its households share, and each household's energy management. */
interface Running {
  hub: HubServices;
  log: Logger;
  ocpp: OcppCentralSystem;
  /** The simple MQTT chargers of every household, each through its own view of the broker; null when off. */
  mqttChargers: MqttChargerHouseholds | null;
  households: Map<string, HouseholdEnergy>;
  stops: Array<() => void>;
}

/** One household's energy management: its site, tariff, plans, modes and sessions. */
interface HouseholdEnergy {
  householdId: string;
  hub: HubServices;
  log: Logger;
  ocpp: OcppCentralSystem;
  config: EnergyConfig;
  tariff: Tariff;
  meters: SiteMeters;
  solar: Map<string, SolarSurplus>;
  sessions: SessionBook;
  /** Ended sessions waiting for their charger's final meter reading: the cancel of each wait. */
  finalReadings: Map<string, () => void>;
  /** Each charger's power (kW) as last seen, and when its energy was last counted (see countLastStretch). */
  drawn: Map<string, { powerKw: number; at: number }>;
  /** When each vehicle's plug last went in (charging.connected turned true), for vehicleAt. */
  pluggedSince: Map<string, number>;
  plans: Map<string, PlanView>;
  lastTick: number;
  /** When what energy plans have had was last stored (see PROGRESS_SAVE_MS). */
  progressSavedAt: number;
  /** Energy delivered towards a plan since then, not stored yet. */
  progressUnsaved: boolean;
  openCommands: Map<string, string>;
  /** The current each charger was last asked for, A (see command). */
  askedCurrent: Map<string, number>;
  /** Open sessions with a store write waiting (see persist). */
  unsaved: Set<string>;
  /** The open sessions' store writes, one after another. */
  writes: Promise<void>;
  replanDue: boolean;
  reading: SiteReading | null;
  /** A republish of the site's figures is queued (see siteChanged). */
  siteDue: boolean;
}

/** A charger's settings until it is given its own: charging at once, within its declared limits. */
function defaultSettings(thing: Thing | undefined): ChargerSettings {
  const declared = (thing?.meta?.charger ?? {}) as Partial<ChargerLimits>;
  const limits: ChargerLimits = {
    minCurrentA: declared.minCurrentA ?? 6,
    maxCurrentA: declared.maxCurrentA ?? 16,
    phases: declared.phases ?? 3,
    voltage: declared.voltage ?? 230,
  };
  const minPowerW = limits.minCurrentA * wattsPerAmp(limits);
  return {
    ...limits,
    mode: 'now',
    solar: { onThresholdW: minPowerW, offThresholdW: minPowerW, onDelayMs: 60_000, offDelayMs: 180_000 },
  };
}

/**
 * What opens and closes a charger's session: its plug or, for a charger that cannot tell whether a
 * car is plugged in, whether it is charging.
 */
function sessionProperty(thing: Thing): 'charging.connected' | 'charging.charging' {
  return Object.hasOwn(thing.properties, 'charging.connected') ? 'charging.connected' : 'charging.charging';
}

/**
 * Whether a charger's final meter reading can come after its session ends: one whose session
 * follows its switch (a simple MQTT charger) reports the switch at once and its meter on a beat of
 * its own. A charger with a plug has the last reading by the unplug (OCPP holds the unplug for it).
 */
function meterTrails(thing: Thing): boolean {
  return sessionProperty(thing) === 'charging.charging' && Object.hasOwn(thing.properties, 'sensor.energy');
}
