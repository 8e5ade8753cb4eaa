import type { Thing } from './api/types.ts';
import { formatNumber, isOffline, lastSeenText } from './format.ts';

export interface EnergyFlow {
  /** Watts; positive means power flowing in the direction the name says. */
  solar: number | null;
  /** Positive is import from the grid, negative export. */
  grid: number | null;
  /** The home battery: positive while it charges, negative while it gives power to the house (as its meter says). */
  battery: number | null;
  house: number | null;
  car: number | null;
  /** Solar left over after the house, which the chargers may use; negative when the house needs more (see surplusWords). */
  surplus: number | null;
}

/**
 * A car that was charging when the hub lost touch with it: the power it last reported is not
 * known to flow now, so it is not counted in the car's figure, only told as last known.
 */
export interface LastKnownCharge {
  name: string;
  /** W, as the car last reported it. */
  watts: number;
  /** "Last seen 14:05". */
  seen: string;
}

/** The energy subsystem's thing: the site's meters, read and published every few seconds. */
export const SITE_KIND = 'site';

const watts = (thing: Thing | undefined, property: string): number | null => {
  const value = thing?.state[property];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
};

/**
 * Where power is going right now, from the energy subsystem's `site` thing (`site.*_power`, W).
 * The car is what the site's chargers draw or, when the car charges at a charge point Triad does
 * not run, what the car itself reports (`charging.power`, kW); the larger, never both added up.
 * A car that is offline is not counted: its last report is in `lastKnown`.
 * `null` when the hub has no site (no energy subsystem, or a guest who was not given it);
 * `metered` is false while no meter (grid, solar, house) has been chosen for it.
 */
export function energyFlow(
  things: Iterable<Thing>,
  now = Date.now(),
): { flow: EnergyFlow; metered: boolean; lastKnown: LastKnownCharge[] } | null {
  const all = [...things];
  const site = all.find((t) => t.kind === SITE_KIND);
  if (!site) return null;
  const charging = all.filter((t) => t.kind === 'vehicle' && t.state['charging.charging'] === true);
  // A car that is offline reports nothing now: what it said last is not power flowing now.
  const vehicleKw = charging
    .filter((t) => !isOffline(t))
    .map((t) => watts(t, 'charging.power'))
    .filter((kw): kw is number => kw !== null);
  const lastKnown = charging
    .filter(isOffline)
    .map((t) => ({ name: t.name, kw: watts(t, 'charging.power'), seen: lastSeenText(t, now) }))
    .filter((c) => c.kw !== null && c.kw > 0)
    .map(({ name, kw, seen }) => ({ name, watts: kw! * 1000, seen }));
  const vehicleW = vehicleKw.length ? vehicleKw.reduce((a, b) => a + b, 0) * 1000 : null;
  const chargersW = watts(site, 'site.charge_power');
  const car = chargersW === null ? vehicleW : vehicleW === null ? chargersW : Math.max(chargersW, vehicleW);
  const flow: EnergyFlow = {
    solar: watts(site, 'site.solar_power'),
    grid: watts(site, 'site.grid_power'),
    battery: watts(site, 'site.battery_power'),
    house: watts(site, 'site.house_power'),
    car,
    surplus: watts(site, 'site.surplus_power'),
  };
  const metered = [flow.solar, flow.grid, flow.house].some((v) => v !== null);
  return { flow, metered, lastKnown };
}

/** Watts as the energy views show them: "1.8 kW". */
export function kilowatts(watts: number | null): string {
  return watts === null ? '—' : `${formatNumber(watts / 1000, 2)} kW`;
}

/**
 * The surplus in words. The site reports a shortfall (the house takes more than the sun gives, the
 * rest coming from the grid or the battery) as a negative surplus: to a person that is no surplus,
 * and the grid's figure already says what comes in.
 */
export function surplusWords(watts: number | null): string {
  if (watts === null) return '—';
  // Below what "0.01 kW" shows, there is nothing a charger could use.
  return watts >= 5 ? kilowatts(watts) : 'None';
}
