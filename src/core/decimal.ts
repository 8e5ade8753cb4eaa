/**
 * A count or a port written as text (a query parameter, a command-line flag): plain decimal digits
 * and nothing else, or undefined. `Number()`, which the schema validator's coercion and the flags
 * used, also reads `1e3`, `0x10` and ` 12 ` as numbers: the same text was a number in one place
 * and refused in another. One reading for the API (src/api/validation.ts) and the command line
 * (src/cli/settings.ts).
 */
export function decimalInteger(text: string): number | undefined {
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}
