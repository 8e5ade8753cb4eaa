import type { Clock } from '../../core/clock.ts';
import type { TwinRegistry } from '../../core/twin.ts';

/**
 * The site: which things measure the grid connection, the solar inverter, the home battery and
 * the house, and how much the connection (the main fuse) allows. Meters are any things with
 * `sensor.power` in W, whatever protocol they speak (MQTT discovery, Zigbee2MQTT…).
 */
export interface SiteConfig {
  /** Grid meter: positive while importing, negative while exporting. */
  grid?: string;
  solar?: string;
  /** Home battery: positive while charging, negative while discharging. */
  battery?: string;
  /** House consumption without the chargers. */
  house?: string;
  /** What the connection allows in total, kW (e.g. 3 × 25 A × 230 V ≈ 17.3). */
  limitKw: number;
  /**
   * Power kept for the house when planning ahead, kW: the planner does not know tomorrow's load.
   * Also what the house is taken to draw now while its meters cannot say (see SiteMeters.read).
   */
  houseReserveKw?: number;
  /**
   * How long a meter may stay silent before its last figure counts as unknown, s (default
   * DEFAULT_STALE_AFTER_S). Raise it for a meter that reports only on change or seldom.
   */
  staleAfterS?: number;
}

/**
 * Meters report every few seconds (a P1 port every 1–10 s, an inverter or a Shelly every 30 s at
 * most): five minutes of silence is a meter that is gone, not one between two reports, and is
 * short enough that a car does not charge for long on a sun that has set meanwhile.
 */
export const DEFAULT_STALE_AFTER_S = 300;
/** The bounds staleAfterS may be set to: below the control step's pace every meter would flap. */
export const STALE_AFTER_S_RANGE = { min: 10, max: 86_400 } as const;

/**
 * The share of the connection the house is taken to draw while nothing measures it and no house
 * reserve is set: an oven, a hob and a heat pump on together take about half of a 3 × 25 A one.
 */
const UNMEASURED_HOUSE_SHARE = 0.5;

/**
 * What the house is taken to draw while its meters cannot say, kW: the reserve the user keeps for
 * it, or half the connection when none (or 0) is set: never nothing, which is what trips a fuse.
 */
function unmeasuredHouseKw(config: SiteConfig): number {
  return config.houseReserveKw || config.limitKw * UNMEASURED_HOUSE_SHARE;
}

/**
 * Whether the house's draw is unmeasured: the grid meter that counted it is gone and no house
 * meter stands in, or the house meter or the home battery (which may charge from the grid) cannot
 * say. A meter that was chosen but cannot say is missing; one never chosen is not (a site without
 * a home battery has none charging).
 */
function houseUnknown(config: SiteConfig, figures: Pick<SiteReading, 'gridW' | 'houseW' | 'batteryW'>): boolean {
  const missing = (role: 'grid' | 'house' | 'battery', figure: number | null) =>
    config[role] !== undefined && figure === null;
  return (
    (missing('grid', figures.gridW) && config.house === undefined) ||
    missing('house', figures.houseW) ||
    missing('battery', figures.batteryW)
  );
}

/**
 * What the planner keeps for the house, kW, as the site reads now: the reserve the user set
 * (tomorrow's load is not known), and while the house cannot be measured what the control step
 * then takes it to draw. The planner kept only the set reserve (none unless set) while the step
 * kept half the connection, so it planned power the step would not give, and the car missed its
 * departure target on a plan that said it would make it.
 */
export function plannedHouseReserveKw(config: SiteConfig, reading: SiteReading): number {
  return houseUnknown(config, reading) ? unmeasuredHouseKw(config) : (config.houseReserveKw ?? 0);
}

export interface SiteReading {
  /** Each meter's figure, W; null when unknown (not chosen, never reported, offline or silent too long). */
  gridW: number | null;
  solarW: number | null;
  batteryW: number | null;
  houseW: number | null;
  /** What the chargers draw now. */
  chargersW: number;
  /**
   * Solar power the chargers may use, counting what they already draw; the home battery comes
   * first. Null when a meter it needs is unknown: no one can measure the surplus then.
   */
  surplusW: number | null;
  /** Power the chargers may draw together without tripping the fuse. */
  headroomW: number;
}

type Role = 'grid' | 'solar' | 'battery' | 'house';

export class SiteMeters {
  constructor(
    private readonly twins: TwinRegistry,
    private readonly householdId: string,
    private readonly clock: Clock,
  ) {}

  read(config: SiteConfig, chargersW: number): SiteReading {
    const now = this.clock.now();
    const staleAfterMs = (config.staleAfterS ?? DEFAULT_STALE_AFTER_S) * 1000;
    const power = (id: string | undefined): number | null => {
      if (!id) return null;
      const twin = this.twins.get(this.householdId, id);
      // Offline (its availability topic or last will said so): its last figure is not flowing now.
      if (!twin || twin.online === false) return null;
      const reported = twin.state.get('sensor.power');
      if (!reported || typeof reported.value !== 'number' || !Number.isFinite(reported.value)) return null;
      // Silent too long: a meter that died without a last will says nothing at all.
      if (now - reported.ts > staleAfterMs) return null;
      return reported.value;
    };
    const gridW = power(config.grid);
    const solarW = power(config.solar);
    const batteryW = power(config.battery);
    const houseW = power(config.house);
    const figures: Record<Role, number | null> = { grid: gridW, solar: solarW, battery: batteryW, house: houseW };
    // A meter that was chosen but cannot say now (see houseUnknown).
    const missing = (role: Role) => config[role] !== undefined && figures[role] === null;
    const unmeasured = houseUnknown(config, { gridW, houseW, batteryW });

    let surplusW: number | null;
    let otherLoadW: number;
    if (gridW !== null) {
      // grid = house + battery + chargers − solar, so chargers − grid is what is left after the house and battery.
      surplusW = chargersW - gridW;
      otherLoadW = gridW - chargersW;
    } else {
      const knownLoadW = (houseW ?? 0) + Math.max(0, batteryW ?? 0) - (solarW ?? 0);
      // Without every figure the sum needs there is no surplus to show or to charge on: it would
      // count a house or battery that cannot be measured as taking nothing.
      surplusW = unmeasured || missing('solar') ? null : -knownLoadW;
      // An unknown solar figure counts as 0 in knownLoadW: the sun then takes nothing off the
      // fuse's load, which can only make the headroom smaller. An unmeasured house is taken to
      // draw the reserve the user keeps for it when planning (the same not knowing, now rather
      // than tomorrow), or half the connection when none (or 0) is set: never nothing, which is
      // what trips a fuse, and never its figure from before the meter went, which may be an hour old.
      otherLoadW = unmeasured ? Math.max(knownLoadW, unmeasuredHouseKw(config) * 1000) : knownLoadW;
    }
    const headroomW = Math.max(0, config.limitKw * 1000 - Math.max(0, otherLoadW));
    return { gridW, solarW, batteryW, houseW, chargersW, surplusW, headroomW };
  }
}
