/**
 * The password of a URL written with credentials (`http://user:pw@host/…`, as a notify webhook
 * may be), replaced by `***` wherever it appears in a text: what a reader of a rule, its problems
 * or its traces sees. The stored rule keeps the password, so the webhook still works.
 */
const CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*):([^\s/?#@]*)@/gi;

export function redactText(text: string): string {
  return text.replace(CREDENTIALS, (_all, scheme: string, user: string) => `${scheme}${user}:***@`);
}

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
