import { type VissError, vissErrors } from '../../adapters/viss/errors.ts';
import type { DataPoint, SignalSource } from '../../adapters/viss/session.ts';
import { SignalTree, type SignalValue, toWire } from '../../adapters/viss/tree.ts';
import { VSS_NODES } from '../../adapters/viss/vss-nodes.ts';
import type { Clock } from '../../core/clock.ts';
import type { GeoPoint } from '../../people/geo.ts';
import { DOOR_NAMES, type DoorName, VSS } from '../../vehicles/signals.ts';
import type { CarAtCharger } from '../charger/charge-point.ts';
import { DEFAULT_SCHEDULE } from '../people.ts';
import {
  acceptedAcKw,
  CAR,
  cabinAfter,
  chargePowerKw,
  hvacPowerW,
  outsideTemperature,
  secondsToReach,
  tractionPowerW,
} from './physics.ts';
import { commute, pointAlong, type Route } from './route.ts';

export interface SimulatedCarOptions {
  clock: Clock;
  home?: GeoPoint;
  work?: GeoPoint;
  /** Departure hours (UTC); the demo's driver, Alex, leaves at 8 and 17. */
  leaveHomeHour?: number;
  leaveWorkHour?: number;
  /** Simulation step; one second by default. */
  tickMs?: number;
  /** Starting charge in %. */
  level?: number;
  vin?: string;
  /**
   * Charge from the car's own model of a home wallbox whenever the cable is in (the default, for
   * the car on its own). False when a simulated charge point feeds it through `acceptKw` and
   * `charged`, so the energy is counted once, by that charge point's meter.
   */
  selfCharging?: boolean;
  /**
   * Also set off whenever the car has stood this long (and first this long after start), between
   * the commute hours: `--demo` uses it so a person trying the hub sees the car drive within
   * seconds, whatever the time of day. Off by default (tests and `triad sim car` keep the commute).
   */
  errands?: { firstAfterMs: number; parkMs: number };
  /** Where a car that ran before left off (see SimulatedCar.saved): it carries on from there. */
  resume?: SavedCar;
  /**
   * Where the car stands when it starts, parked (at home with its cable in), over where `resume`
   * left it. By default a new car is where the commute puts it at this hour: at work from half an
   * hour after it leaves home until it leaves work, at home otherwise.
   */
  parkedAt?: Place;
  /**
   * Whether the car leaves at the schedule's hours (leaveHomeHour, leaveWorkHour); true by
   * default. False keeps it where it is parked, errands aside: a car that must stay at home
   * whatever the hour, as the tests that charge it need.
   */
  commute?: boolean;
}

export type Place = 'home' | 'work';

/**
 * What a simulated car keeps across a restart: whatever must not jump back (its odometer and
 * energy counters) and what a person would notice moving (where it is, its charge).
 */
export interface SavedCar {
  /** m */
  odometer: number;
  /** % */
  level: number;
  position: GeoPoint;
  heading: number;
  /** Parked at home or work, or null while on the road (then `drive` says where to). */
  place: Place | null;
  drive: { to: Place; metres: number } | null;
  cableConnected: boolean;
  chargeLimit: number;
  setPoint: number;
  consumedKwh: number;
  chargedKwh: number;
  /** kWh/km: the consumption the range estimate is worked out with. */
  recentKwhPerKm: number;
  /** kWh/km: what recent drives used, which the range estimate takes up at the next charge (older files lack it). */
  learnedKwhPerKm?: number;
  departedOn: string;
  /** Each door's lock and the trunk's, as they were left (older files lack it: all locked). */
  locks?: { doors: Record<DoorName, boolean>; trunk: boolean };
  /** Whether charging was stopped by a command and waits for START (older files lack it: no). */
  toldToStop?: boolean;
  /** Each window's position, % open (older files lack it: all closed). */
  windows?: Record<DoorName, number>;
  /** The climate control, on or off, and the cabin's temperature, °C (older files lack it: off, at the outside air's). */
  climate?: { on: boolean; cabin: number };
}

interface Drive {
  route: Route;
  to: Place;
  metres: number;
  /** Whether the doors locked themselves on this drive (once, as it got going). */
  autoLocked: boolean;
  /** The battery's energy (kWh) and the odometer (m) when the drive began: what it used, at the end. */
  startKwh: number;
  startOdometer: number;
  /**
   * Whether the driver has seen to the climate on this drive: turned it on (a cabin far from
   * comfortable), or found it set as wanted (on already, or turned off remotely on the way).
   */
  climateSeen: boolean;
}

const ACCEL = 1.5; // m/s²
/** Like most cars, it locks its doors itself once it drives faster than this (km/h). */
const AUTO_LOCK_KMH = 15;
const BRAKE = 2; // m/s²
const HOUR_MS = 3_600_000;
/**
 * How far (°C) from the set point the cabin may be before the driver turns the climate control on
 * for the drive, as most drivers do (or the car's automatic climate does) in winter and summer.
 */
const COMFORT_BAND = 4;
/**
 * How many km of driving the consumption figure is averaged over: a drive weighs its length
 * against this, so one short trip nudges the estimate rather than setting it.
 */
const CONSUMPTION_WINDOW_KM = 50;

/**
 * A simulated electric car that commutes between home and work on the injected clock: it drives
 * the route at the roads' speeds, spends energy by speed and temperature, charges at home with a
 * taper above 80 %, and heats or cools its cabin. It offers its signals as VSS, so a VISS server
 * can serve it to anyone.
 */
export class SimulatedCar implements SignalSource, CarAtCharger {
  readonly maxCurrentA = CAR.maxChargeCurrentA;
  readonly tree: SignalTree;
  private readonly routes: { toWork: Route; toHome: Route };
  private readonly values = new Map<string, DataPoint>();
  private readonly listeners = new Set<(path: string) => void>();
  private cancelTick: (() => void) | null = null;
  private readonly timers = new Set<() => void>();

  // The car's state, in SI units.
  private place: Place | null = 'home';
  private drive: Drive | null = null;
  /** Set by park() in the constructor. */
  private position!: GeoPoint;
  private heading = 0;
  private speed = 0; // m/s
  private odometer = 12_345_000; // m
  private energyKwh: number;
  private consumedKwh = 4_180;
  private chargedKwh = 4_310;
  /**
   * What the car's own systems (the drive, the climate) drew from the battery at the last step, W:
   * the battery's power is what the cable brings in now less this (see intoBatteryKw).
   */
  private loadW = 0;
  /**
   * The range estimate is the energy in the battery over a consumption figure, as a car's own
   * estimate is: `recentKwhPerKm` is the figure it uses now, `learnedKwhPerKm` what the drives
   * since say (each weighed by its length, see learnFrom). The estimate takes the learned figure
   * up when the car next charges, so between charges the range moves only with the energy: it
   * falls as the drive uses the battery and does not creep up because the last kilometres were
   * frugal. (A fast average of the consumption of each second made it rise while driving.)
   */
  private recentKwhPerKm = 0.17;
  private learnedKwhPerKm = 0.17;
  /**
   * The range reported (m). Between charges it never goes up: the little that braking gives back
   * is left out of the estimate until the car has spent it, so the range does not tick up at
   * every stop.
   */
  private rangeM = Number.POSITIVE_INFINITY;
  private cabin: number;
  private hvacOn = false;
  private setPoint = 21;
  private chargeLimit = 80;
  private cableConnected = false;
  /** Whether the car wants charge: cable in, below its limit, not stopped by a command. */
  private charging = false;
  /**
   * Whether charging was stopped by a command (STOP) since the cable went in: the car then waits
   * for START, though its limit is raised; otherwise a raised limit resumes charging, as on a real car.
   */
  private toldToStop = false;
  /** AC power drawn from an external charge point now, kW (without self-charging). */
  private wallboxKw = 0;
  /** What that charge point offers now, kW: how long the charge takes goes by it. */
  private offeredKw = 0;
  private doorsLocked: Record<DoorName, boolean> = {
    front_driver: true,
    front_passenger: true,
    rear_driver: true,
    rear_passenger: true,
  };
  private trunkLocked = true;
  private windows: Record<DoorName, number> = {
    front_driver: 0,
    front_passenger: 0,
    rear_driver: 0,
    rear_passenger: 0,
  };
  private horn = false;
  private hazard = false;
  /** The day and place of the last scheduled departure, so each one happens once. */
  private departedOn = '';
  /** When the car last came to a stop (or the simulation began): for errands. */
  private parkedSince: number;

  constructor(private readonly options: SimulatedCarOptions) {
    this.routes = commute(options.home, options.work);
    this.energyKwh = ((options.level ?? 70) / 100) * CAR.netCapacityKwh;
    const now = options.clock.now();
    this.parkedSince = options.errands ? now - options.errands.parkMs + options.errands.firstAfterMs : now;
    this.cabin = outsideTemperature(now);
    // Start where the schedule says the car is at this hour (home outside working hours).
    const hour = (now % (24 * HOUR_MS)) / HOUR_MS;
    const atWork = hour >= this.leaveHome + 0.5 && hour < this.leaveWork;
    this.park(atWork ? 'work' : 'home');
    if (options.resume) this.resumeFrom(options.resume);
    if (options.parkedAt) this.park(options.parkedAt);
    this.charging = this.wantsCharge;
    this.tree = new SignalTree([...this.snapshot(now).keys(), VSS.startStopCharging], VSS_NODES);
    this.publish(now);
  }

  start(): void {
    if (this.cancelTick) return;
    this.cancelTick = this.options.clock.setInterval(() => this.tick(), this.tickMs);
  }

  stop(): void {
    this.cancelTick?.();
    this.cancelTick = null;
    for (const cancel of this.timers) cancel();
    this.timers.clear();
  }

  /** What the car would carry on from after a restart (see SavedCar). */
  saved(): SavedCar {
    return {
      odometer: this.odometer,
      level: this.level,
      position: { ...this.position },
      heading: this.heading,
      place: this.place,
      drive: this.drive ? { to: this.drive.to, metres: this.drive.metres } : null,
      cableConnected: this.cableConnected,
      chargeLimit: this.chargeLimit,
      setPoint: this.setPoint,
      consumedKwh: this.consumedKwh,
      chargedKwh: this.chargedKwh,
      recentKwhPerKm: this.recentKwhPerKm,
      learnedKwhPerKm: this.learnedKwhPerKm,
      departedOn: this.departedOn,
      locks: { doors: { ...this.doorsLocked }, trunk: this.trunkLocked },
      toldToStop: this.toldToStop,
      windows: { ...this.windows },
      climate: { on: this.hvacOn, cabin: this.cabin },
    };
  }

  /** Where the car is now, and how it moves: what a passenger's phone would report. */
  whereabouts(): GeoPoint & { speed: number; heading: number } {
    return { ...this.position, speed: this.speed * 3.6, heading: this.heading };
  }

  get isDriving(): boolean {
    return this.drive !== null;
  }

  /** Sends the car on its way now, whatever the time (tests and the CLI's curious users). */
  depart(): boolean {
    if (this.drive || !this.place) return false;
    const to: Place = this.place === 'home' ? 'work' : 'home';
    this.drive = {
      route: to === 'work' ? this.routes.toWork : this.routes.toHome,
      to,
      metres: 0,
      autoLocked: false,
      startKwh: this.energyKwh,
      startOdometer: this.odometer,
      climateSeen: false,
    };
    this.place = null;
    // The driver unlocks, unplugs and gets in.
    for (const door of DOOR_NAMES) this.doorsLocked[door] = false;
    this.trunkLocked = false;
    this.cableConnected = false;
    this.charging = false;
    this.wallboxKw = 0;
    this.publish(this.options.clock.now());
    return true;
  }

  /** Plugs the cable in (or out), as the driver does at the wallbox. */
  plugIn(connected = true): void {
    this.cableConnected = connected;
    this.toldToStop = false;
    this.charging = this.wantsCharge;
    if (!connected) this.wallboxKw = 0;
    this.publish(this.options.clock.now());
  }

  // The car as a charge point sees it through the cable (CarAtCharger).

  plugged(): boolean {
    return this.cableConnected;
  }

  soc(): number {
    return this.level;
  }

  /** Draws what the on-board charger takes of the offer: nothing when it does not want charge. */
  acceptKw(offeredKw: number): number {
    this.offeredKw = offeredKw;
    const kw = this.cableConnected && this.charging ? acceptedAcKw(this.level, offeredKw) : 0;
    if (kw !== this.wallboxKw) {
      this.wallboxKw = kw;
      this.publish(this.options.clock.now());
    }
    return kw;
  }

  /** Takes the AC energy the charge point metered into it, less the on-board charger's losses. */
  charged(kwh: number): void {
    const added = kwh * CAR.chargerEfficiency;
    this.energyKwh = Math.min(CAR.netCapacityKwh, this.energyKwh + added);
    this.chargedKwh += added;
    if (this.level >= this.chargeLimit) this.charging = false;
    this.publish(this.options.clock.now());
  }

  read(path: string): DataPoint | undefined {
    return this.values.get(path);
  }

  watch(listener: (path: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async write(path: string, value: SignalValue): Promise<VissError | null> {
    const door = DOOR_NAMES.find((d) => path === VSS.doorLocked(d));
    const window = DOOR_NAMES.find((d) => path === VSS.window(d));
    if (door) this.doorsLocked[door] = value === true;
    else if (window) this.windows[window] = Number(value);
    else if (path === VSS.trunkLocked) this.trunkLocked = value === true;
    else if (path === VSS.hvacActive) this.hvacOn = value === true;
    else if (path === VSS.driverSetPoint) {
      if (Number(value) < 15 || Number(value) > 30) return vissErrors.outsideLimit('between 15 and 30 °C for this car');
      this.setPoint = Number(value);
    } else if (path === VSS.chargeLimit) {
      if (Number(value) < 50) return vissErrors.outsideLimit('at least 50 % for this car');
      this.chargeLimit = Number(value);
      // Lowered to the charge it has, it stops; raised above it, charging resumes (unless stopped by a command).
      this.charging = this.wantsCharge;
    } else if (path === VSS.startStopCharging) {
      if (value === 'START' && !this.cableConnected) return vissErrors.refused('no charging cable is connected');
      // Said as a car's app says it: a start the car would take and then ignore leaves whoever
      // asked waiting for a charge that never comes, until the command expires with no reason.
      if (value === 'START' && this.level >= this.chargeLimit) {
        return vissErrors.refused(
          `the battery is at ${Math.floor(this.level)} %, already at its charge limit of ${this.chargeLimit} %; raise the limit to charge further`,
        );
      }
      this.toldToStop = value !== 'START';
      this.charging = value === 'START';
    } else if (path === VSS.horn) this.momentary('horn', value === true, 1_000);
    else if (path === VSS.hazard) this.momentary('hazard', value === true, 10_000);
    else return vissErrors.refused(`this car cannot set ${path} remotely`);
    this.publish(this.options.clock.now());
    return null;
  }

  /** Takes up where a saved car left off; a drive under way goes on from a standstill. */
  private resumeFrom(saved: SavedCar): void {
    this.odometer = saved.odometer;
    this.energyKwh = (saved.level / 100) * CAR.netCapacityKwh;
    this.consumedKwh = saved.consumedKwh;
    this.chargedKwh = saved.chargedKwh;
    this.recentKwhPerKm = saved.recentKwhPerKm;
    this.learnedKwhPerKm = saved.learnedKwhPerKm ?? saved.recentKwhPerKm;
    this.chargeLimit = saved.chargeLimit;
    this.setPoint = saved.setPoint;
    this.departedOn = saved.departedOn;
    this.heading = saved.heading;
    this.place = saved.place;
    this.position = { ...saved.position };
    this.cableConnected = saved.cableConnected;
    if (saved.drive) {
      const route = saved.drive.to === 'work' ? this.routes.toWork : this.routes.toHome;
      const metres = Math.min(saved.drive.metres, route.metres);
      // What it used before the restart is not known: the consumption is learnt from here on.
      this.drive = {
        route,
        to: saved.drive.to,
        metres,
        autoLocked: true,
        startKwh: this.energyKwh,
        startOdometer: this.odometer,
        climateSeen: false,
      };
      this.place = null;
      this.position = pointAlong(route, this.drive.metres).position;
    }
    // A car left unlocked is still unlocked when it comes back. Without a record: doors lock as
    // the driver walks away, and on the road once the car got going (see AUTO_LOCK_KMH).
    for (const door of DOOR_NAMES) this.doorsLocked[door] = saved.locks?.doors[door] ?? true;
    this.trunkLocked = saved.locks?.trunk ?? true;
    this.toldToStop = saved.toldToStop ?? false;
    // Windows left open, or the cabin being warmed for the driver, are so still.
    for (const door of DOOR_NAMES) this.windows[door] = saved.windows?.[door] ?? 0;
    if (saved.climate) {
      this.hvacOn = saved.climate.on;
      this.cabin = saved.climate.cabin;
    }
  }

  private get tickMs(): number {
    return this.options.tickMs ?? 1_000;
  }

  private get leaveHome(): number {
    return this.options.leaveHomeHour ?? DEFAULT_SCHEDULE.leaveHome;
  }

  private get leaveWork(): number {
    return this.options.leaveWorkHour ?? DEFAULT_SCHEDULE.leaveWork;
  }

  private get level(): number {
    return (this.energyKwh / CAR.netCapacityKwh) * 100;
  }

  private get selfCharging(): boolean {
    return this.options.selfCharging ?? true;
  }

  /** Whether the car takes charge when it can: cable in, below its limit, not stopped by a command. */
  private get wantsCharge(): boolean {
    return this.cableConnected && !this.toldToStop && this.level < this.chargeLimit;
  }

  /** Whether energy flows into the battery now, as the car reports it. */
  private get chargingNow(): boolean {
    return this.charging && (this.selfCharging || this.wallboxKw > 0);
  }

  /**
   * Power the cable brings the battery now, kW: the car's own wallbox model's, or the charge
   * point's less the on-board charger's losses. Worked out when reported, not at the last step, so
   * the car never says it charges at the power of a moment before it began (0 kW).
   */
  private get intoBatteryKw(): number {
    if (!this.chargingNow) return 0;
    return this.selfCharging ? chargePowerKw(this.level) : this.wallboxKw * CAR.chargerEfficiency;
  }

  /** Horn and hazard flashing stop by themselves, as they do on a real car's remote command. */
  private momentary(what: 'horn' | 'hazard', on: boolean, ms: number): void {
    this[what] = on;
    if (!on) return;
    const cancel = this.options.clock.setTimeout(() => {
      this.timers.delete(cancel);
      this[what] = false;
      this.publish(this.options.clock.now());
    }, ms);
    this.timers.add(cancel);
  }

  private tick(): void {
    const now = this.options.clock.now();
    const dt = this.tickMs / 1000;
    this.keepSchedule(now);
    const outside = outsideTemperature(now);
    let drawW = 0;
    if (this.drive) this.seeToClimate(this.drive);
    if (this.drive) drawW += this.driveStep(dt, outside) + CAR.auxiliaryW;
    if (this.hvacOn) drawW += hvacPowerW(this.cabin, this.setPoint, outside);
    this.cabin = cabinAfter(this.cabin, outside, this.setPoint, this.hvacOn, dt);
    if (this.charging && this.selfCharging) {
      const added = (this.intoBatteryKw * dt) / 3_600;
      this.energyKwh = Math.min(CAR.netCapacityKwh, this.energyKwh + added);
      this.chargedKwh += added;
      if (this.level >= this.chargeLimit) this.charging = false;
    }
    const usedKwh = (drawW * dt) / 3_600_000;
    this.energyKwh = Math.max(0, this.energyKwh - usedKwh);
    if (usedKwh > 0) this.consumedKwh += usedKwh;
    else this.chargedKwh -= usedKwh;
    this.loadW = drawW;
    this.publish(now);
  }

  /**
   * The driver turns the heating (or cooling) on towards the set point once on the road when the
   * cabin is far from comfortable, and leaves it as it is otherwise: a climate turned off remotely
   * during the drive stays off. It draws from the battery like the rest of the car (see tick).
   */
  private seeToClimate(drive: Drive): void {
    if (drive.climateSeen) return;
    drive.climateSeen = true;
    if (!this.hvacOn && Math.abs(this.cabin - this.setPoint) > COMFORT_BAND) this.hvacOn = true;
  }

  /** Leaves at the schedule's hours, once a day each way (unless `commute` is off). */
  private keepSchedule(now: number): void {
    const day = Math.floor(now / (24 * HOUR_MS));
    const hour = (now % (24 * HOUR_MS)) / HOUR_MS;
    const due =
      this.options.commute !== false &&
      ((this.place === 'home' && hour >= this.leaveHome && hour < this.leaveHome + 0.25) ||
        (this.place === 'work' && hour >= this.leaveWork && hour < this.leaveWork + 0.25));
    if (due && this.departedOn !== `${day}:${this.place}`) {
      this.departedOn = `${day}:${this.place}`;
      this.depart();
      return;
    }
    const errands = this.options.errands;
    if (errands && this.place && now - this.parkedSince >= errands.parkMs) this.depart();
  }

  /** Moves along the route for `dt` seconds; returns the battery power the drive took (W). */
  private driveStep(dt: number, outside: number): number {
    const drive = this.drive!;
    const { leg } = pointAlong(drive.route, drive.metres);
    const left = drive.route.metres - drive.metres;
    // Brake in time to stop at the destination; otherwise go for the road's limit.
    const stopAt = Math.sqrt(2 * BRAKE * Math.max(0, left - 5));
    const target = Math.min(leg.limit / 3.6, stopAt);
    const before = this.speed;
    this.speed = target > before ? Math.min(target, before + ACCEL * dt) : Math.max(target, before - BRAKE * dt);
    if (!drive.autoLocked && this.speed * 3.6 >= AUTO_LOCK_KMH) {
      // Once, as it gets going: a door unlocked later on the road stays as it was left.
      drive.autoLocked = true;
      for (const door of DOOR_NAMES) this.doorsLocked[door] = true;
      this.trunkLocked = true;
    }
    const step = ((before + this.speed) / 2) * dt;
    drive.metres = Math.min(drive.route.metres, drive.metres + step);
    this.odometer += step;
    const at = pointAlong(drive.route, drive.metres);
    this.position = at.position;
    this.heading = at.leg.heading;
    const traction = tractionPowerW((before + this.speed) / 2, (this.speed - before) / dt, outside);
    if (drive.metres >= drive.route.metres - 1 || (left < 6 && this.speed < 0.5)) this.arrive(drive.to);
    return traction;
  }

  /** Stands the car at `place`, as a start puts it there: a drive under way ends where it is not. */
  private park(place: Place): void {
    this.drive = null;
    this.place = place;
    this.speed = 0;
    this.position = (place === 'work' ? this.routes.toWork : this.routes.toHome).legs.at(-1)!.to;
    // At home the driver plugs in; away, no cable reaches the car.
    this.cableConnected = place === 'home';
  }

  private arrive(place: Place): void {
    if (this.drive) this.learnFrom(this.drive);
    this.parkedSince = this.options.clock.now();
    this.drive = null;
    this.place = place;
    this.speed = 0;
    this.position = (place === 'work' ? this.routes.toWork : this.routes.toHome).legs.at(-1)!.to;
    // The climate goes off with the car; it locks when the driver walks away; at home the driver plugs in.
    this.hvacOn = false;
    this.loadW = 0;
    for (const door of DOOR_NAMES) this.doorsLocked[door] = true;
    this.trunkLocked = true;
    if (place === 'home') {
      this.cableConnected = true;
      this.toldToStop = false;
      this.charging = this.wantsCharge;
    }
  }

  /**
   * Takes a finished drive into the consumption figure: what the battery gave for it (traction,
   * the car's own systems and the HVAC, less what braking gave back) per km, weighed by its length.
   */
  private learnFrom(drive: Drive): void {
    const km = (this.odometer - drive.startOdometer) / 1000;
    if (km < 0.5) return;
    const perKm = Math.max(0.08, Math.min(0.4, (drive.startKwh - this.energyKwh) / km));
    const weight = Math.min(1, km / CONSUMPTION_WINDOW_KM);
    this.learnedKwhPerKm += (perKm - this.learnedKwhPerKm) * weight;
  }

  /**
   * The range estimate (m) as it stands now. While energy flows in, the estimate takes up what
   * recent drives used, and follows the charge up; otherwise it follows the energy down only.
   */
  private estimateRange(): number {
    if (this.chargingNow) this.recentKwhPerKm = this.learnedKwhPerKm;
    const estimate = Math.round((this.energyKwh / this.recentKwhPerKm) * 1000);
    this.rangeM = this.chargingNow ? estimate : Math.min(this.rangeM, estimate);
    return this.rangeM;
  }

  /** Every signal's current value, rounded as a car's ECU would report it. */
  private snapshot(now: number): Map<string, SignalValue> {
    const level = (this.energyKwh / CAR.netCapacityKwh) * 100;
    const values = new Map<string, SignalValue>([
      [VSS.vin, this.options.vin ?? 'TRDSMCAR1A2B00001'],
      [VSS.latitude, round(this.position.latitude, 6)],
      [VSS.longitude, round(this.position.longitude, 6)],
      [VSS.heading, round(this.heading, 0) % 360],
      [VSS.accuracy, 5],
      [VSS.speed, round(this.speed * 3.6, 1)],
      [VSS.odometer, Math.round(this.odometer)],
      [VSS.moving, this.speed > 0.1],
      [VSS.outsideTemperature, round(outsideTemperature(now), 1)],
      [VSS.stateOfCharge, round(level, 1)],
      [VSS.range, this.estimateRange()],
      [VSS.netCapacity, CAR.netCapacityKwh],
      [VSS.batteryPower, Math.round((this.intoBatteryKw * 1000 - this.loadW) / 10) * 10],
      [VSS.chargedEnergy, round(this.chargedKwh, 2)],
      [VSS.consumedEnergy, round(this.consumedKwh, 2)],
      [VSS.isCharging, this.chargingNow],
      [VSS.chargeLimit, this.chargeLimit],
      [
        VSS.timeToComplete,
        this.chargingNow
          ? secondsToReach(level, this.chargeLimit, this.selfCharging ? CAR.acChargerKw : this.offeredKw)
          : 0,
      ],
      [VSS.cableConnected, this.cableConnected],
      [VSS.cabinTemperature, round(this.cabin, 1)],
      [VSS.hvacActive, this.hvacOn],
      [VSS.driverSetPoint, this.setPoint],
      [VSS.trunkLocked, this.trunkLocked],
      [VSS.horn, this.horn],
      [VSS.hazard, this.hazard],
    ]);
    for (const door of DOOR_NAMES) {
      values.set(VSS.doorLocked(door), this.doorsLocked[door]);
      values.set(VSS.doorOpen(door), false);
      values.set(VSS.window(door), this.windows[door]);
    }
    return values;
  }

  /** Records the new values and tells watchers which changed. */
  private publish(now: number): void {
    const changed: string[] = [];
    for (const [path, value] of this.snapshot(now)) {
      const wire = toWire(value);
      const before = this.values.get(path);
      if (before && JSON.stringify(before.value) === JSON.stringify(wire)) continue;
      this.values.set(path, { value: wire, ts: now });
      // A watcher takes each signal as it comes: charging that stops is said before the power
      // falls (it starts after the power rose, in the snapshot's order), so no one sees the car
      // charging at 0 kW in between.
      if (path === VSS.isCharging && wire === 'false') changed.unshift(path);
      else changed.push(path);
    }
    for (const path of changed) for (const listener of this.listeners) listener(path);
  }
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;

const PLACES = ['home', 'work'];

/**
 * A saved car read back from a file, or null when it is not one (an older or damaged file): the
 * car then starts afresh rather than from nonsense.
 */
export function savedCarFrom(raw: unknown): SavedCar | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const s = raw as Record<string, unknown>;
  const number = (value: unknown, min: number, max: number) =>
    typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
  const position = s.position as Record<string, unknown> | null | undefined;
  const drive = s.drive as Record<string, unknown> | null | undefined;
  const locks = s.locks as { doors?: Record<string, unknown>; trunk?: unknown } | null | undefined;
  const windows = s.windows as Record<string, unknown> | null | undefined;
  const climate = s.climate as { on?: unknown; cabin?: unknown } | null | undefined;
  const fits =
    number(s.odometer, 0, 1e10) &&
    number(s.level, 0, 100) &&
    number(position?.latitude, -90, 90) &&
    number(position?.longitude, -180, 180) &&
    number(s.heading, 0, 360) &&
    (s.place === null || PLACES.includes(s.place as string)) &&
    (drive === null || (PLACES.includes(drive?.to as string) && number(drive?.metres, 0, 1e7))) &&
    (s.place === null) !== (drive === null) &&
    typeof s.cableConnected === 'boolean' &&
    number(s.chargeLimit, 50, 100) &&
    number(s.setPoint, 15, 30) &&
    number(s.consumedKwh, 0, 1e9) &&
    number(s.chargedKwh, 0, 1e9) &&
    number(s.recentKwhPerKm, 0.01, 2) &&
    (s.learnedKwhPerKm === undefined || number(s.learnedKwhPerKm, 0.01, 2)) &&
    typeof s.departedOn === 'string' &&
    (locks === undefined ||
      (typeof locks?.trunk === 'boolean' && DOOR_NAMES.every((door) => typeof locks.doors?.[door] === 'boolean'))) &&
    (s.toldToStop === undefined || typeof s.toldToStop === 'boolean') &&
    (windows === undefined || DOOR_NAMES.every((door) => number(windows?.[door], 0, 100))) &&
    (climate === undefined || (typeof climate?.on === 'boolean' && number(climate.cabin, -60, 90)));
  return fits ? (structuredClone(raw) as SavedCar) : null;
}
