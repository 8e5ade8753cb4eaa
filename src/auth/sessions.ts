import { createHash, timingSafeEqual } from 'node:crypto';

/** The dashboard's session: an httpOnly cookie the page's scripts cannot read. */
export const SESSION_COOKIE = 'triad_session';
/** The CSRF token, readable by the page so it can echo it in `X-CSRF-Token` (double submit). */
export const CSRF_COOKIE = 'triad_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/**
 * The CSRF token of a session, derived from its secret: another site can neither read it nor,
 * without the secret, compute one that matches, so a planted cookie does not help it either.
 */
export function csrfTokenFor(sessionSecret: string): string {
  return createHash('sha256').update(`triad-csrf\u0000${sessionSecret}`).digest('base64url');
}

export function csrfMatches(sessionSecret: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const expected = Buffer.from(csrfTokenFor(sessionSecret));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The cookies of a request, by name; malformed pairs are skipped. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header || header.length > 8192) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

/** `Set-Cookie` values that start a session (or, with `maxAgeSeconds` 0, end it). */
export function sessionCookies(options: { secret: string; maxAgeSeconds: number; secure: boolean }): string[] {
  const common = `Path=/; SameSite=Strict; Max-Age=${options.maxAgeSeconds}${options.secure ? '; Secure' : ''}`;
  const csrf = options.maxAgeSeconds > 0 ? csrfTokenFor(options.secret) : '';
  return [`${SESSION_COOKIE}=${options.secret}; HttpOnly; ${common}`, `${CSRF_COOKIE}=${csrf}; ${common}`];
}
