import type { SolarSurplus } from './solar-surplus.ts';

/**
 * What a charge point does on its own: `off` never charges, `now` charges at full current,
 * `minsolar` charges at least at the minimum current and adds any solar surplus, `solar` charges
 * from surplus only, and `smart` follows the charge plan (cheapest or greenest slots).
 */
export const CHARGE_MODES = ['off', 'now', 'minsolar', 'solar', 'smart'] as const;
export type ChargeMode = (typeof CHARGE_MODES)[number];

/** A charge point's electrical limits; a car charges between 6 A (IEC 61851's minimum) and the cable's rating. */
export interface ChargerLimits {
  minCurrentA: number;
  maxCurrentA: number;
  phases: 1 | 3;
  voltage: number;
}

export const wattsPerAmp = (limits: ChargerLimits) => limits.voltage * limits.phases;

export function maxPowerKw(limits: ChargerLimits): number {
  return (limits.maxCurrentA * wattsPerAmp(limits)) / 1000;
}

export interface ModeInput {
  mode: ChargeMode;
  limits: ChargerLimits;
  now: number;
  /** Solar surplus this charger may use, W (counting what it draws already); null when no one can measure it. */
  surplusW: number | null;
  solar: SolarSurplus;
  /** The plan's power for the current slot, kW; null without a plan. */
  plannedKw: number | null;
}

/** The current a charge point should be given now, before the site's limit is applied (0 = pause). */
export function wantedCurrent(input: ModeInput): number {
  const { limits } = input;
  const fromPower = (watts: number) =>
    clamp(Math.floor(watts / wattsPerAmp(limits)), limits.minCurrentA, limits.maxCurrentA);
  // A surplus that cannot be measured adds nothing: charging on it would be charging from the grid.
  const surplusW = input.surplusW ?? 0;
  // A plan in force overrides surplus-only modes: the user asked for the energy by a time.
  if (input.plannedKw !== null && input.plannedKw > 0 && input.mode !== 'off' && input.mode !== 'now') {
    // Rounded up to the tenth of an ampere a charger is told: rounded down (10.58 A sent as 10 A)
    // the car got less than planned every hour and missed the time it was wanted by.
    const amps = (input.plannedKw * 1000) / wattsPerAmp(limits);
    const planned = clamp(Math.ceil(amps * 10 - 1e-9) / 10, limits.minCurrentA, limits.maxCurrentA);
    const solarExtra = input.mode === 'smart' ? 0 : Math.max(0, surplusW);
    return Math.max(planned, solarExtra > 0 ? fromPower(input.plannedKw * 1000 + solarExtra) : 0);
  }
  switch (input.mode) {
    case 'off':
      return 0;
    case 'now':
      return limits.maxCurrentA;
    case 'minsolar':
      return fromPower(Math.max(0, surplusW));
    case 'solar':
      return input.solar.decide(input.now, input.surplusW) ? fromPower(surplusW) : 0;
    case 'smart':
      return 0;
  }
}

/**
 * Shares the site's headroom among charge points: each keeps what it wants while the total fits;
 * otherwise all are scaled down alike, and one that would fall below its minimum is paused so
 * the others can run.
 */
export function shareHeadroom(
  wants: Array<{ id: string; currentA: number; limits: ChargerLimits }>,
  headroomW: number,
): Map<string, number> {
  const result = new Map<string, number>();
  let active = wants.filter((w) => w.currentA > 0);
  for (const w of wants) if (w.currentA <= 0) result.set(w.id, 0);
  for (;;) {
    const total = active.reduce((sum, w) => sum + w.currentA * wattsPerAmp(w.limits), 0);
    const scale = total <= headroomW || total === 0 ? 1 : headroomW / total;
    const below = active.filter((w) => Math.floor(w.currentA * scale) < w.limits.minCurrentA);
    if (scale === 1 || below.length === 0) {
      // To the tenth of an ampere: one that is already there (10.6 A) is not cut to 10.5 A by the
      // float's error in 10.6 × 10.
      for (const w of active) result.set(w.id, scale === 1 ? w.currentA : Math.floor(w.currentA * scale * 10) / 10);
      return result;
    }
    // Pause the one wanting least, then share again among the rest.
    const drop = below.reduce((a, b) => (a.currentA <= b.currentA ? a : b));
    result.set(drop.id, 0);
    active = active.filter((w) => w !== drop);
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
