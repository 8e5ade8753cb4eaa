import { decimalNumber } from '../../core/decimal.ts';
import { badRequest } from '../../core/errors.ts';
import { ISO_TIME_EXAMPLE, parseIsoTime } from '../../core/iso-time.ts';

/** One priced stretch of time: a day-ahead hour or quarter hour. Times are epoch ms, price per kWh. */
export interface PriceSlot {
  start: number;
  end: number;
  price: number;
  /** Grid CO₂ intensity in g/kWh, when the source gives it. */
  co2?: number;
}

const MINUTE = 60_000;
/** Day-ahead markets publish quarter hours or hours; anything else is a mistake in the file. */
const SLOT_LENGTHS = new Set([15 * MINUTE, 60 * MINUTE]);
/** A week of quarter hours and some; a longer series is not a price forecast. */
const MAX_SLOTS = 4 * 24 * 31;
/**
 * The largest price per kWh, either way, in any currency (a million: far above any market's cap
 * even in rupiah). A plan's cost is price × energy: a price near the largest double made it
 * Infinity, which JSON writes as null.
 */
export const MAX_PRICE = 1_000_000;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Checks a series the way a user can fix it: each slot 15 or 60 minutes, in order, each starting
 * where the one before ends. Errors name the slot by number and time. Returns the slots sorted.
 */
export function checkSeries(slots: PriceSlot[]): PriceSlot[] {
  if (slots.length === 0) throw badRequest('a price series needs at least one slot', 'invalid_prices');
  if (slots.length > MAX_SLOTS) throw badRequest(`a price series has at most ${MAX_SLOTS} slots`, 'invalid_prices');
  const sorted = slots.map((slot, index) => ({ slot, index })).sort((a, b) => a.slot.start - b.slot.start);
  for (const { slot, index } of sorted) {
    const length = slot.end - slot.start;
    if (!SLOT_LENGTHS.has(length)) {
      throw badRequest(
        `slot ${index} (${iso(slot.start)}) lasts ${length / MINUTE} minutes; slots are 15 or 60 minutes`,
        'invalid_prices',
      );
    }
    if (!Number.isFinite(slot.price))
      throw badRequest(`slot ${index} (${iso(slot.start)}) has no price`, 'invalid_prices');
    if (Math.abs(slot.price) > MAX_PRICE)
      throw badRequest(`slot ${index} (${iso(slot.start)}) has a price beyond ±${MAX_PRICE} per kWh`, 'invalid_prices');
  }
  for (let i = 1; i < sorted.length; i++) {
    const before = sorted[i - 1];
    const here = sorted[i];
    const name = `slot ${here.index} (${iso(here.slot.start)}–${iso(here.slot.end)})`;
    if (here.slot.start > before.slot.end) {
      throw badRequest(
        `${name} leaves a gap of ${(here.slot.start - before.slot.end) / MINUTE} minutes after slot ${before.index}, which ends at ${iso(before.slot.end)}`,
        'price_gap',
      );
    }
    if (here.slot.start < before.slot.end) {
      throw badRequest(
        `${name} overlaps slot ${before.index} (${iso(before.slot.start)}–${iso(before.slot.end)})`,
        'price_overlap',
      );
    }
  }
  return sorted.map((s) => s.slot);
}

const QUARTER = 15 * MINUTE;

/**
 * Checks a series a user sets now, beyond checkSeries: day-ahead slots begin on the quarter hour
 * (in every time zone in use), and a series whose every slot has ended prices nothing the
 * planner could choose: it would replace the prices ahead with none.
 */
export function checkNewSeries(slots: PriceSlot[], now: number): PriceSlot[] {
  const sorted = checkSeries(slots);
  slots.forEach((slot, index) => {
    if (slot.start % QUARTER !== 0) {
      throw badRequest(
        `slot ${index} (${iso(slot.start)}) does not start on a quarter hour; slots start at :00, :15, :30 or :45`,
        'invalid_prices',
      );
    }
  });
  const end = sorted[sorted.length - 1].end;
  if (end <= now) {
    throw badRequest(
      `every slot has ended: the series ends at ${iso(end)}, before now (${iso(now)}); the planner needs prices ahead`,
      'prices_expired',
    );
  }
  return sorted;
}

/** Reads `{"slots":[{"start","end","price","co2?"}]}` (or a bare array), as the API and JSON files give it. */
export function parseJsonSeries(value: unknown): PriceSlot[] {
  const list = Array.isArray(value) ? value : (value as { slots?: unknown } | null)?.slots;
  if (!Array.isArray(list)) throw badRequest('prices need a "slots" list', 'invalid_prices');
  return checkSeries(
    list.map((raw, index) => {
      const item = raw as Record<string, unknown>;
      const start = time(item.start, index, 'start');
      const end = time(item.end, index, 'end');
      const price = Number(item.price);
      if (typeof item.price !== 'number' || !Number.isFinite(price)) {
        throw badRequest(`slot ${index} needs a numeric price`, 'invalid_prices');
      }
      const co2 = item.co2 === undefined || item.co2 === null ? undefined : Number(item.co2);
      checkCo2(co2, index);
      return { start, end, price, ...(co2 !== undefined ? { co2 } : {}) };
    }),
  );
}

/**
 * Reads CSV with a header naming `start`, `price` and optionally `end` and `co2` (comma or
 * semicolon separated, as spreadsheets export). Without `end`, a slot ends where the next begins,
 * and the last lasts as long as the one before it.
 */
export function parseCsvSeries(text: string): PriceSlot[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '' && !line.startsWith('#'));
  if (lines.length < 2) throw badRequest('a price CSV needs a header and at least one row', 'invalid_prices');
  const separator = lines[0].includes(';') ? ';' : ',';
  const header = lines[0].split(separator).map((h) => h.trim().toLowerCase());
  const column = (name: string) => header.indexOf(name);
  const [startAt, endAt, priceAt, co2At] = [column('start'), column('end'), column('price'), column('co2')];
  if (startAt < 0 || priceAt < 0) throw badRequest('a price CSV needs "start" and "price" columns', 'invalid_prices');
  const rows = lines.slice(1).map((line, index) => {
    const cells = line.split(separator).map((c) => c.trim());
    // Number() reads a blank cell as 0 (free power) and takes hex: only a plain decimal is a price.
    const price = decimal(cells[priceAt]);
    if (price === null) throw badRequest(`slot ${index} (line ${index + 2}) has no numeric price`, 'invalid_prices');
    const co2 = co2At >= 0 && cells[co2At] ? (decimal(cells[co2At]) ?? Number.NaN) : undefined;
    checkCo2(co2, index);
    return {
      start: time(cells[startAt], index, 'start'),
      end: endAt >= 0 && cells[endAt] ? time(cells[endAt], index, 'end') : Number.NaN,
      price,
      ...(co2 !== undefined ? { co2 } : {}),
    };
  });
  for (let i = 0; i < rows.length; i++) {
    if (!Number.isNaN(rows[i].end)) continue;
    const next = rows[i + 1];
    const previous = rows[i - 1];
    rows[i].end = next
      ? next.start
      : previous
        ? rows[i].start + (previous.end - previous.start)
        : rows[i].start + 60 * MINUTE;
  }
  return checkSeries(rows);
}

/** A plain decimal as spreadsheets write it (`0.25`, `0,25`, `-3`), or null. */
function decimal(cell: string | undefined): number | null {
  return decimalNumber(cell?.replace(',', '.'));
}

function checkCo2(co2: number | undefined, index: number): void {
  if (co2 !== undefined && !(Number.isFinite(co2) && co2 >= 0)) {
    throw badRequest(`slot ${index} has a CO₂ intensity that is not a number ≥ 0`, 'invalid_prices');
  }
}

function time(value: unknown, index: number, field: string): number {
  // Strict, as every time the API takes: Date.parse rolled 31 February into March and read a
  // time without its zone in the machine's.
  const ms = typeof value === 'string' ? parseIsoTime(value) : null;
  if (ms === null) {
    throw badRequest(
      `slot ${index} needs an ISO 8601 ${field} time with a date, a time and its zone (${ISO_TIME_EXAMPLE})`,
      'invalid_prices',
    );
  }
  return ms;
}
