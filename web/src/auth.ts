/**
 * How this tab is signed in. A token (the owner's, an API token or a guest pass) is kept in this
 * tab only (sessionStorage) unless the user asks to be remembered. An account sign-in is a cookie
 * session: the hub keeps it in an httpOnly cookie the page never sees, so nothing is stored here;
 * the readable `triad_csrf` cookie that comes with it tells the page a session exists and is echoed
 * in `X-CSRF-Token` on every unsafe request.
 */
export type Credentials = { kind: 'token'; token: string } | { kind: 'session' };

const KEY = 'triad.token';
const CSRF_COOKIE = 'triad_csrf';

export function storedCredentials(): Credentials | null {
  const token = sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
  if (token) return { kind: 'token', token };
  return csrfToken() ? { kind: 'session' } : null;
}

export function keepToken(token: string, remember: boolean): void {
  forgetToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

/** The session's CSRF token, from the readable cookie the hub set with the session; null without one. */
export function csrfToken(): string | null {
  for (const part of document.cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === CSRF_COOKIE) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/**
 * Drops the CSRF cookie of a session the hub no longer accepts (it expired, or was ended
 * elsewhere), so the next visit starts at sign-in instead of asking with a dead cookie.
 */
export function forgetSession(): void {
  // biome-ignore lint/suspicious/noDocumentCookie: the one readable cookie of the session is ours to clear.
  document.cookie = `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict`;
}
