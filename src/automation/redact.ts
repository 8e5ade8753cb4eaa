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

/** Keys whose values are secrets wherever they appear in a payload (compared without `-`, `_` and case). */
const SECRET_KEY =
  /(password|passwd|passphrase|secret|token|apikey|authorization|credentials?|privatekey)$|^(pass|pwd|auth)$/;
/** `password=…`, `access_token: …` and the like in plain text. */
const SECRET_TEXT =
  /\b(\w*?(?:password|passwd|passphrase|pwd|secret|token|api[-_]?key|authorization|credentials?))(\s*["']?\s*[=:]\s*["']?)([^\s"'&,;}]+)/gi;
/** The most characters of a payload an event keeps. */
export const SUMMARY_LIMIT = 256;

/**
 * A short, secret-free text of what came in with a trigger (an MQTT payload, a webhook's body),
 * for the `automation.triggered` event any member of the household may read: values under keys
 * that name secrets and the passwords of addresses are `***`, and the text is cut at
 * SUMMARY_LIMIT characters (with `…`). The run itself still sees the whole payload.
 */
export function summarise(value: unknown): string {
  const hide = (v: unknown, depth: number): unknown => {
    // A long text is cut first (well past what is kept, so no cut secret shows), so a megabyte
    // payload costs the hub no more than a short one.
    if (typeof v === 'string')
      return redactText(v.length > 4 * SUMMARY_LIMIT ? v.slice(0, 4 * SUMMARY_LIMIT) : v).replace(
        SECRET_TEXT,
        '$1$2***',
      );
    if (v === null || typeof v !== 'object') return v;
    // What lies deeper is left out, not kept whole: a secret there would show, and a body nested
    // sixty thousand deep overflowed the stack of the JSON made of it and failed the webhook call.
    if (depth > 8) return '…';
    if (Array.isArray(v)) return v.slice(0, 50).map((item) => hide(item, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(v).slice(0, 50))
      out[key] = SECRET_KEY.test(key.toLowerCase().replace(/[-_\s]/g, '')) ? '***' : hide(item, depth + 1);
    return out;
  };
  const hidden = hide(value, 0);
  const text = typeof hidden === 'string' ? hidden : (JSON.stringify(hidden) ?? '');
  return text.length > SUMMARY_LIMIT ? `${text.slice(0, SUMMARY_LIMIT)}…` : text;
}
