/**
 * Charging sessions: from plug-in to unplug, the energy delivered, what it cost and how much of it
 * came from the sun, tied to the vehicle that was plugged in. Energy is measured in steps (each
 * control tick), each step priced at the moment it happened: grid energy at the import price,
 * solar energy at the feed-in price it would otherwise have earned.
 */
export interface ChargingSession {
  id: string;
  charger: string;
  vehicle: string | null;
  start: number;
  end: number | null;
  energyKwh: number;
  solarKwh: number;
  cost: number;
  currency: string | null;
}

export interface EnergyStep {
  /** Energy the charger delivered in the step, kWh. */
  energyKwh: number;
  /** Part of the step's energy that was solar surplus, 0…1. */
  solarShare: number;
  importPrice: number | null;
  feedInPrice: number;
}

export class SessionBook {
  private readonly open = new Map<string, ChargingSession>();

  constructor(private readonly newId: () => string) {}

  begin(charger: string, vehicle: string | null, now: number, currency: string | null): ChargingSession {
    const existing = this.open.get(charger);
    if (existing) return existing;
    const session: ChargingSession = {
      id: this.newId(),
      charger,
      vehicle,
      start: now,
      end: null,
      energyKwh: 0,
      solarKwh: 0,
      cost: 0,
      currency,
    };
    this.open.set(charger, session);
    return session;
  }

  current(charger: string): ChargingSession | undefined {
    return this.open.get(charger);
  }

  add(charger: string, step: EnergyStep): void {
    const session = this.open.get(charger);
    if (!session || !(step.energyKwh > 0)) return;
    const solar = step.energyKwh * Math.min(1, Math.max(0, step.solarShare));
    session.energyKwh += step.energyKwh;
    session.solarKwh += solar;
    session.cost += (step.energyKwh - solar) * (step.importPrice ?? 0) + solar * step.feedInPrice;
  }

  /** Ties an open session to a vehicle once it is known (a plan named it, the car reported its plug). */
  assign(charger: string, vehicle: string): void {
    const session = this.open.get(charger);
    if (session && !session.vehicle) session.vehicle = vehicle;
  }

  finish(charger: string, now: number): ChargingSession | undefined {
    const session = this.open.get(charger);
    if (!session) return undefined;
    this.open.delete(charger);
    session.end = now;
    return session;
  }

  list(): ChargingSession[] {
    return [...this.open.values()];
  }
}

/** A session as the API and the event log show it. */
export function sessionView(session: ChargingSession) {
  return {
    id: session.id,
    charger: session.charger,
    vehicle: session.vehicle,
    start: new Date(session.start).toISOString(),
    end: session.end === null ? null : new Date(session.end).toISOString(),
    energyKwh: round(session.energyKwh, 4),
    solarKwh: round(session.solarKwh, 4),
    solarShare: session.energyKwh > 0 ? round(session.solarKwh / session.energyKwh, 4) : 0,
    cost: round(session.cost, 4),
    currency: session.currency,
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
