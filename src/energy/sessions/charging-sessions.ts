/**
 * Charging sessions: from plug-in to unplug, the energy delivered, what it cost and how much of it
 * came from the sun, tied to the vehicle that was plugged in.
 *
 * How much energy: the charger's own meter when it has one (its last reading less its first, over
 * every transaction of the plug-in), and power × time only for chargers without a meter. What it
 * cost: the energy is priced in steps (each control tick) at the moment it was counted, grid
 * energy at the import price, solar energy at the feed-in price it would otherwise have earned.
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
  /** The charger's meter register (kWh) as last read in this session; null until it gives one. */
  meterKwh: number | null;
  /** The part of `energyKwh` already priced into `cost` and `solarKwh`. */
  pricedKwh: number;
}

/** The moment a step of energy is priced at. */
export interface PriceStep {
  /** Part of the step's energy that was solar surplus, 0…1. */
  solarShare: number;
  importPrice: number | null;
  feedInPrice: number;
}

export class SessionBook {
  private readonly open = new Map<string, ChargingSession>();
  /** Sessions that have ended and are not recorded yet: their meter's final reading may still come. */
  private readonly ended = new Map<string, ChargingSession>();

  constructor(private readonly newId: () => string) {}

  /**
   * Opens a session on a charger, or answers the one already open. `meterKwh` is the charger's
   * meter as the hub knows it now: the energy the session counts is what the meter adds to it.
   */
  begin(input: {
    charger: string;
    vehicle: string | null;
    now: number;
    currency: string | null;
    meterKwh: number | null;
  }): ChargingSession {
    const existing = this.open.get(input.charger);
    if (existing) return existing;
    const session: ChargingSession = {
      id: this.newId(),
      charger: input.charger,
      vehicle: input.vehicle,
      start: input.now,
      end: null,
      energyKwh: 0,
      solarKwh: 0,
      cost: 0,
      currency: input.currency,
      meterKwh: input.meterKwh,
      pricedKwh: 0,
    };
    this.open.set(input.charger, session);
    return session;
  }

  /** Takes back a session that was open when the hub stopped; false when its charger has one already. */
  restore(session: ChargingSession): boolean {
    if (this.open.has(session.charger)) return false;
    this.open.set(session.charger, session);
    return true;
  }

  current(charger: string): ChargingSession | undefined {
    return this.open.get(charger);
  }

  /** A charger's session that has ended but is not recorded yet (see finish and settle). */
  ending(charger: string): ChargingSession | undefined {
    return this.ended.get(charger);
  }

  /**
   * A reading of the charger's meter register; answers whether the session changed (its energy,
   * or where counting goes on from). The first reading only sets where counting starts. A register
   * that went back (a charger replaced or reset) counts on from its new value rather than taking
   * energy away. An ended session not yet recorded still takes its meter's final reading.
   */
  read(charger: string, meterKwh: number): boolean {
    const session = this.open.get(charger) ?? this.ended.get(charger);
    if (!session || !Number.isFinite(meterKwh) || meterKwh < 0 || meterKwh === session.meterKwh) return false;
    const last = session.meterKwh;
    session.meterKwh = meterKwh;
    if (last !== null && meterKwh > last) session.energyKwh += meterKwh - last;
    return true;
  }

  /**
   * Energy worked out from the charger's power over a step, for chargers without a meter: once
   * the meter has given a reading, only the meter counts.
   */
  estimate(charger: string, energyKwh: number): boolean {
    const session = this.open.get(charger);
    if (!session || session.meterKwh !== null || !(energyKwh > 0)) return false;
    session.energyKwh += energyKwh;
    return true;
  }

  /** Prices the energy counted since the last step (a final reading too); answers that energy, kWh. */
  price(charger: string, step: PriceStep): number {
    const session = this.open.get(charger) ?? this.ended.get(charger);
    if (!session) return 0;
    const energy = session.energyKwh - session.pricedKwh;
    if (!(energy > 0)) return 0;
    const solar = energy * Math.min(1, Math.max(0, step.solarShare));
    session.solarKwh += solar;
    session.cost += (energy - solar) * (step.importPrice ?? 0) + solar * step.feedInPrice;
    session.pricedKwh = session.energyKwh;
    return energy;
  }

  /** Ties an open session to a vehicle once it is known (a plan named it, the car reported its plug). */
  assign(charger: string, vehicle: string): boolean {
    const session = this.open.get(charger);
    if (!session || session.vehicle) return false;
    session.vehicle = vehicle;
    return true;
  }

  /**
   * Ends a charger's session; it ends no earlier than it began. It stays in the book, reading its
   * meter, until settle takes it out: a meter can report the last of a charge after the end.
   */
  finish(charger: string, end: number): ChargingSession | undefined {
    const session = this.open.get(charger);
    if (!session) return undefined;
    this.open.delete(charger);
    session.end = Math.max(session.start, end);
    this.ended.set(charger, session);
    return session;
  }

  /** Takes a charger's ended session out of the book to be recorded; nothing is counted in it after. */
  settle(charger: string): ChargingSession | undefined {
    const session = this.ended.get(charger);
    this.ended.delete(charger);
    return session;
  }

  list(): ChargingSession[] {
    return [...this.open.values()];
  }

  /** The sessions that have ended and are not recorded yet. */
  listEnded(): ChargingSession[] {
    return [...this.ended.values()];
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

/**
 * An open session as the store keeps it: what the API shows, and the meter reading and priced
 * energy that let counting go on after a restart where it stopped.
 */
export function storedSession(session: ChargingSession): Record<string, unknown> {
  return {
    ...sessionView(session),
    // Unrounded, so a session restored many times does not drift.
    energyKwh: session.energyKwh,
    solarKwh: session.solarKwh,
    cost: session.cost,
    meterKwh: session.meterKwh,
    pricedKwh: session.pricedKwh,
  };
}

/**
 * A stored open session read back; throws, naming the field, when the row is not one (the session
 * is then left out, and said so, rather than half restored).
 */
export function sessionFromStored(body: Record<string, unknown>): ChargingSession {
  const text = (key: string) => {
    const value = body[key];
    if (typeof value !== 'string' || value === '') throw new Error(`${key} is not a text`);
    return value;
  };
  const amount = (key: string) => {
    const value = body[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`${key} is not an amount`);
    return value;
  };
  const time = (key: string) => {
    const value = Date.parse(text(key));
    if (Number.isNaN(value)) throw new Error(`${key} is not a time`);
    return value;
  };
  const meter = body.meterKwh;
  if (meter !== null && (typeof meter !== 'number' || !Number.isFinite(meter)))
    throw new Error('meterKwh is not a reading');
  const vehicle = body.vehicle;
  if (vehicle !== null && typeof vehicle !== 'string') throw new Error('vehicle is not a text');
  const currency = body.currency;
  if (currency !== null && typeof currency !== 'string') throw new Error('currency is not a text');
  const energyKwh = amount('energyKwh');
  return {
    id: text('id'),
    charger: text('charger'),
    vehicle,
    start: time('start'),
    end: null,
    energyKwh,
    solarKwh: Math.min(energyKwh, amount('solarKwh')),
    cost: Number.isFinite(body.cost) ? (body.cost as number) : 0,
    currency,
    meterKwh: meter,
    pricedKwh: Math.min(energyKwh, amount('pricedKwh')),
  };
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
