import { ADDRESS_CREDENTIALS as CREDENTIALS, hidePasswords } from '../core/redact.ts';

/**
 * The password of a URL written with credentials (`http://user:pw@host/…`, as a notify webhook
 * may be), replaced by `***` wherever it appears in a text: what a reader of a rule, its problems
 * or its traces sees. The stored rule keeps the password, so the webhook still works.
 */
export const redactText = hidePasswords;

/** A copy of a rule document (or any JSON value) with every URL's password shown as `***`. */
export function redactSecrets<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = redactSecrets(v);
    return out as T;
  }
  return value;
}

/**
 * A rule sent back after it was read (GET, edit, PUT; the dashboard's editor does that) carries
 * `***` where its webhook's password was: each such address gets its password back from the
 * stored rule's address of the same scheme, user and host, so an edit does not wipe it. A `***`
 * with no such address stays as it is (and the webhook will be refused, which its trace says).
 */
export function restoreSecrets<T>(edited: T, stored: unknown): T {
  const known = new Map<string, string>();
  const collect = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const m of value.matchAll(CREDENTIALS))
        known.set(addressKey(m[1], m[2], value, m.index ?? 0, m[0].length), m[3]);
    } else if (Array.isArray(value)) value.forEach(collect);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(stored);
  const restore = (value: unknown): unknown => {
    if (typeof value === 'string')
      return value.replace(CREDENTIALS, (all: string, scheme: string, user: string, password: string, at: number) => {
        if (password !== '***') return all;
        const kept = known.get(addressKey(scheme, user, value, at, all.length));
        return kept === undefined ? all : `${scheme}${user}:${kept}@`;
      });
    if (Array.isArray(value)) return value.map(restore);
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, restore(v)]));
    return value;
  };
  return restore(edited) as T;
}

/** Scheme, user and the host that follows the credentials: which stored password an edited `***` stands for. */
function addressKey(scheme: string, user: string, text: string, at: number, length: number): string {
  const host = /^[^\s/?#]*/.exec(text.slice(at + length))?.[0] ?? '';
  return `${scheme.toLowerCase()}${user}@${host.toLowerCase()}`;
}
