/**
 * The car's energy and heat: what a mid-size electric hatchback draws at a given speed and
 * temperature, how an AC charger fills it, and how its cabin warms or cools. Plain functions of
 * state and time step, so the model is easy to check on its own.
 */

const AIR_DENSITY = 1.2; // kg/m³
const GRAVITY = 9.81;

export const CAR = {
  massKg: 1_850,
  dragAreaM2: 0.62, // Cd × frontal area
  rollingResistance: 0.011,
  drivetrainEfficiency: 0.85,
  regenEfficiency: 0.6,
  auxiliaryW: 250,
  netCapacityKwh: 64,
  /** What the wallbox gives: 16 A on three phases at 230 V. */
  acChargerKw: 11,
  /** The on-board charger's limit per phase, as the car tells a wallbox. */
  maxChargeCurrentA: 16,
  chargerEfficiency: 0.92,
} as const;

/**
 * Battery power (W, positive = drawn from the battery) to go at `speed` m/s while accelerating at
 * `accel` m/s². Cold makes the battery and drivetrain less efficient: about 1.2 % per °C below 20.
 */
export function tractionPowerW(speed: number, accel: number, outsideC: number): number {
  const wheel =
    CAR.massKg * accel * speed +
    0.5 * AIR_DENSITY * CAR.dragAreaM2 * speed ** 3 +
    CAR.rollingResistance * CAR.massKg * GRAVITY * speed;
  if (wheel < 0) return wheel * CAR.regenEfficiency;
  const cold = 1 + 0.012 * Math.max(0, 20 - outsideC);
  return (wheel / CAR.drivetrainEfficiency) * cold;
}

/** What the heat pump draws to hold or reach the set point: more the further off, within its limit. */
export function hvacPowerW(cabinC: number, setPointC: number, outsideC: number): number {
  const toReach = Math.abs(setPointC - cabinC);
  const toHold = Math.abs(setPointC - outsideC) * 25;
  return Math.min(4_500, 300 + toReach * 200 + toHold);
}

/**
 * The cabin after `dt` seconds: with the HVAC on it closes on the set point within minutes
 * (time constant 4 min); off, it drifts towards the outside air over about an hour.
 */
export function cabinAfter(cabinC: number, outsideC: number, setPointC: number, hvacOn: boolean, dt: number): number {
  const [target, tau] = hvacOn ? [setPointC, 240] : [outsideC, 3_600];
  return target + (cabinC - target) * Math.exp(-dt / tau);
}

/** The share of full charging power the battery takes at `level` %: all of it to 80 %, then tapering. */
function taper(level: number): number {
  return level <= 80 ? 1 : Math.max(0.1, (100 - level) / 20);
}

/** Power into the battery (kW) while AC charging at `level` %: full power to 80 %, then tapering. */
export function chargePowerKw(level: number): number {
  return CAR.acChargerKw * CAR.chargerEfficiency * taper(level);
}

/**
 * AC power (kW) the on-board charger draws when a wallbox offers `offeredKw` at `level` %: the
 * offer, or less where the charger's limit or the taper above 80 % lets the battery take less.
 */
export function acceptedAcKw(level: number, offeredKw: number): number {
  return Math.max(0, Math.min(offeredKw, CAR.acChargerKw * taper(level)));
}

/**
 * Seconds until `limit` % when a wallbox offers `offeredKw` (by default all the car takes), at
 * the taper above: summed 0.1 % at a time.
 */
export function secondsToReach(level: number, limit: number, offeredKw: number = CAR.acChargerKw): number {
  let seconds = 0;
  for (let at = level; at < limit; at += 0.1) {
    const step = Math.min(0.1, limit - at);
    seconds += ((step / 100) * CAR.netCapacityKwh * 3_600) / (acceptedAcKw(at, offeredKw) * CAR.chargerEfficiency);
  }
  return Math.round(seconds);
}

/** Outside air in a Dutch January, by hour of day (UTC): coldest before dawn, warmest mid-afternoon. */
export function outsideTemperature(now: number): number {
  const hour = (now / 3_600_000) % 24;
  return 4 + 4 * Math.sin((2 * Math.PI * (hour - 9)) / 24);
}
