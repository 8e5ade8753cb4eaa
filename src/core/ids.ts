import { randomBytes } from 'node:crypto';

let lastMs = -1;
/** lastMs in hex, formatted once per millisecond rather than once per id. */
let lastMsHex = '';
let sequence = 0;
/**
 * Random bytes are drawn 4 KiB at a time, and turned into hex text once per draw: one system call
 * and one conversion per thousand ids. A whole id then takes ~95 ns instead of ~180 (converting 4
 * bytes per id was most of it); a report that fires a rule makes about eight ids.
 */
let pool = '';
let offset = 0;

function randomHex(): string {
  if (offset + 8 > pool.length) {
    pool = randomBytes(4096).toString('hex');
    offset = 0;
  }
  const hex = pool.slice(offset, offset + 8);
  offset += 8;
  return hex;
}

/**
 * Time-ordered ids: 12 hex digits of milliseconds, 4 of a per-process sequence within that
 * millisecond, then 8 random hex digits. Ids sort in the order they were made, so ordering by
 * (time, id) keeps events that share a millisecond in the order they happened.
 */
export function newId(now: number, prefix = ''): string {
  const ms = Math.floor(now);
  if (ms === lastMs) sequence = (sequence + 1) & 0xffff;
  else {
    lastMs = ms;
    lastMsHex = ms.toString(16).padStart(12, '0');
    sequence = 0;
  }
  return prefix + lastMsHex + sequence.toString(16).padStart(4, '0') + randomHex();
}
