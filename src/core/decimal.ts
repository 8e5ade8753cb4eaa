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

/** A plain decimal number: digits, an optional sign and point (`7400`, `-3`, `.5`, `7.4`). */
export const PLAIN_DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/**
 * A reading or a price written as text, as a plain decimal, or null. `Number()` reads a blank
 * payload or cell as 0 (a free hour, an idle charger) and takes hex (`0x10` as 16): neither is what
 * a meter or a tariff says. Surrounding spaces are let through, as devices pad payloads.
 */
export function decimalNumber(text: string | undefined): number | null {
  const trimmed = text?.trim() ?? '';
  return PLAIN_DECIMAL.test(trimmed) ? Number(trimmed) : null;
}
