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
  /** Power kept for the house when planning ahead, kW: the planner does not know tomorrow's load. */
  houseReserveKw?: number;
}

export interface SiteReading {
  gridW: number | null;
  solarW: number | null;
  batteryW: number | null;
  houseW: number | null;
  /** What the chargers draw now. */
  chargersW: number;
  /** Solar power the chargers may use, counting what they already draw; the home battery comes first. */
  surplusW: number;
  /** Power the chargers may draw together without tripping the fuse. */
  headroomW: number;
}

export class SiteMeters {
  constructor(
    private readonly twins: TwinRegistry,
    private readonly householdId: string,
  ) {}

  read(config: SiteConfig, chargersW: number): SiteReading {
    const power = (id: string | undefined): number | null => {
      if (!id) return null;
      const value = this.twins.value(this.householdId, id, 'sensor.power');
      return typeof value === 'number' && Number.isFinite(value) ? value : null;
    };
    const gridW = power(config.grid);
    const solarW = power(config.solar);
    const batteryW = power(config.battery);
    const houseW = power(config.house);
    let surplusW: number;
    let otherLoadW: number;
    if (gridW !== null) {
      // grid = house + battery + chargers − solar, so chargers − grid is what is left after the house and battery.
      surplusW = chargersW - gridW;
      otherLoadW = gridW - chargersW;
    } else {
      surplusW = (solarW ?? 0) - (houseW ?? 0) - Math.max(0, batteryW ?? 0);
      otherLoadW = (houseW ?? 0) + Math.max(0, batteryW ?? 0) - (solarW ?? 0);
    }
    const headroomW = Math.max(0, config.limitKw * 1000 - Math.max(0, otherLoadW));
    return { gridW, solarW, batteryW, houseW, chargersW, surplusW, headroomW };
  }
}
