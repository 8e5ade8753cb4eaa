import { badRequest } from '../../core/errors.ts';
import { householdTimeZone } from '../../core/wall-time.ts';
import { checkSeries, MAX_PRICE, type PriceSlot } from './price-series.ts';

/**
 * What electricity costs, when. A household has one Tariff made of up to three layers: a
 * dynamic series (day-ahead prices) where it has slots, else a time-of-use schedule, else a fixed
 * price. Feed-in is what exported energy earns, so solar energy used for the car is valued at it.
 */

/** One rule of a time-of-use schedule, in the household's local time: `from` ≤ time < `to`. */
export interface TimeOfUseRule {
  from: string;
  to: string;
  price: number;
  /** ISO weekdays, 1 = Monday … 7 = Sunday; every day when absent. */
  days?: number[];
}

export interface TariffConfig {
  currency: string;
  /** Price per kWh when nothing else applies. */
  fixed?: number;
  timeOfUse?: TimeOfUseRule[];
  /** Dynamic prices (day-ahead), epoch ms. */
  series?: PriceSlot[];
  /** What exported energy earns per kWh. */
  feedIn?: number;
  /** The time zone time-of-use times are in, e.g. `Europe/Amsterdam`. */
  timeZone?: string;
}

/** 00:00 to 23:59, and 24:00 for the end of the day: 24:30 would be a rule that never applies. */
const HHMM = /^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$/;
const QUARTER = 15 * 60_000;

export class Tariff {
  private readonly rules: Array<{ from: number; to: number; price: number; days: Set<number> }>;
  private readonly series: PriceSlot[];
  private readonly local: Intl.DateTimeFormat;

  constructor(readonly config: TariffConfig) {
    this.rules = (config.timeOfUse ?? []).map((rule, i) => {
      const from = minutes(rule.from, i);
      const to = minutes(rule.to, i);
      return { from, to, price: rule.price, days: new Set(rule.days ?? [1, 2, 3, 4, 5, 6, 7]) };
    });
    this.series = config.series ? checkSeries(config.series) : [];
    try {
      this.local = new Intl.DateTimeFormat('en-GB', {
        // The household's clocks, as its plans and rules read them: the hub's own without a zone.
        timeZone: householdTimeZone(config.timeZone),
        weekday: 'short',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      });
    } catch {
      throw badRequest(`unknown time zone ${JSON.stringify(config.timeZone)}`);
    }
  }

  get currency(): string {
    return this.config.currency;
  }

  get feedIn(): number {
    return this.config.feedIn ?? 0;
  }

  /** The import price per kWh at `ts`, or null when no layer prices that moment. */
  priceAt(ts: number): number | null {
    const slot = this.slotAt(ts);
    if (slot) return slot.price;
    const scheduled = this.scheduled(ts);
    if (scheduled !== null) return scheduled;
    return this.config.fixed ?? null;
  }

  co2At(ts: number): number | null {
    return this.slotAt(ts)?.co2 ?? null;
  }

  /**
   * The priced slots covering [from, to): the dynamic series' own slots where it has them, and
   * quarter hours priced by the schedule or fixed price elsewhere. Slots at the edges are cut to
   * the window; a stretch nothing prices is left out (the planner cannot choose it).
   */
  slotsBetween(from: number, to: number): PriceSlot[] {
    const out: PriceSlot[] = [];
    let t = from;
    while (t < to) {
      const slot = this.slotAt(t);
      if (slot) {
        const end = Math.min(slot.end, to);
        out.push({ start: t, end, price: slot.price, ...(slot.co2 !== undefined ? { co2: slot.co2 } : {}) });
        t = end;
        continue;
      }
      // Up to the next quarter hour, or the series' next slot if it starts sooner.
      const nextQuarter = Math.floor(t / QUARTER) * QUARTER + QUARTER;
      const nextSeries = this.series.find((s) => s.start > t)?.start ?? Number.POSITIVE_INFINITY;
      const end = Math.min(nextQuarter, nextSeries, to);
      const price = this.priceAt(t);
      if (price !== null) out.push({ start: t, end, price });
      t = end;
    }
    return out;
  }

  /** The end of the known dynamic prices, so a planner can tell a user when prices run out. */
  get knownUntil(): number | null {
    return this.series.length ? this.series[this.series.length - 1].end : null;
  }

  private slotAt(ts: number): PriceSlot | undefined {
    // Binary search: a week of quarter hours is 672 slots and the planner asks often.
    let low = 0;
    let high = this.series.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const slot = this.series[mid];
      if (ts < slot.start) high = mid - 1;
      else if (ts >= slot.end) low = mid + 1;
      else return slot;
    }
    return undefined;
  }

  private scheduled(ts: number): number | null {
    if (this.rules.length === 0) return null;
    const parts = this.local.formatToParts(new Date(ts));
    const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
    const day = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(get('weekday')) + 1;
    const minute = Number(get('hour')) * 60 + Number(get('minute'));
    for (const rule of this.rules) {
      if (!rule.days.has(day)) continue;
      // A rule from 22:00 to 06:00 wraps past midnight.
      const inside =
        rule.from <= rule.to ? minute >= rule.from && minute < rule.to : minute >= rule.from || minute < rule.to;
      if (inside) return rule.price;
    }
    return null;
  }
}

/**
 * What of a stored tariff this version can still use, and what it had to leave out, in words. A
 * tariff stored before a check existed (a time-of-use rule to 24:30, a price of 1e308) is refused
 * whole by the Tariff; read back at a start, only the parts it refuses are dropped, rather than
 * the household losing its fixed price, feed-in, schedule and prices for one of them.
 */
export function usableTariff(config: TariffConfig): { config: TariffConfig; dropped: string[] } {
  const dropped: string[] = [];
  const kept: TariffConfig = { currency: typeof config.currency === 'string' ? config.currency : 'EUR' };
  const price = (value: unknown) => typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_PRICE;
  for (const field of ['fixed', 'feedIn'] as const) {
    if (config[field] === undefined) continue;
    if (price(config[field])) kept[field] = config[field];
    else dropped.push(`the ${field === 'fixed' ? 'fixed' : 'feed-in'} price ${String(config[field])}`);
  }
  if (config.timeZone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: config.timeZone });
      kept.timeZone = config.timeZone;
    } catch {
      dropped.push(`the time zone ${JSON.stringify(config.timeZone)}`);
    }
  }
  const rules = (config.timeOfUse ?? []).filter((rule, index) => {
    try {
      minutes(rule.from, index);
      minutes(rule.to, index);
      if (price(rule.price)) return true;
    } catch {}
    dropped.push(`time-of-use rule ${index} (${JSON.stringify(rule.from)} to ${JSON.stringify(rule.to)})`);
    return false;
  });
  if (config.timeOfUse) kept.timeOfUse = rules;
  if (config.series) {
    try {
      kept.series = checkSeries(config.series);
    } catch (error) {
      dropped.push(`the price series (${(error as Error).message})`);
    }
  }
  return { config: kept, dropped };
}

function minutes(text: string, index: number): number {
  const match = HHMM.exec(text);
  if (!match) throw badRequest(`time-of-use rule ${index}: times are HH:MM, not ${JSON.stringify(text)}`);
  return Number(match[1] ?? match[3]) * 60 + Number(match[2] ?? match[4]);
}
