import { randomBytes } from 'node:crypto';

/**
 * Time-ordered ids: 12 hex digits of milliseconds then 10 random hex digits, so ids sort in the
 * order they were made and a store index on them is an index on time.
 */
export function newId(now: number, prefix = ''): string {
  return prefix + Math.floor(now).toString(16).padStart(12, '0') + randomBytes(5).toString('hex');
}
