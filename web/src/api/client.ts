/**
 * A small fetch client. With a token it sends `Authorization: Bearer`; with a cookie session it
 * sends nothing but the cookie (same origin) and, on unsafe methods, the session's CSRF token.
 * The hub's error shape becomes an `ApiError`.
 */
import { type Credentials, csrfToken } from '../auth.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Role = 'owner' | 'adult' | 'child' | 'guest';

/**
 * What the hub lets this person run, from `GET /api/session`: for each thing they see, each of its
 * actions, `true` or why not (the words of the 403 the hub would answer).
 */
export type ActionAnswers = Record<string, Record<string, true | string>>;

/**
 * What the hub lets this person call, from `GET /api/session`: for each route it serves, named as
 * `METHOD /path` of its OpenAPI document (`GET /api/energy/plans`), `true` or why not.
 */
export type RouteAnswers = Record<string, true | string>;

/** Who is signed in, from `GET /api/session`. */
export interface Me {
  role: Role;
  /** The account's name, or the token's (a guest pass is named by its owner). */
  name: string | null;
  householdId: string | null;
  /**
   * The household's time zone (IANA), which a plan's time of day and weekdays are on; null from a
   * hub that does not say.
   */
  timeZone: string | null;
  /** Null from a hub that does not say (it still refuses what it must when asked). */
  actions: ActionAnswers | null;
  /** Null from a hub that does not say: then its 403 is how the dashboard finds out. */
  routes: RouteAnswers | null;
}

export interface ApiClientOptions {
  credentials: Credentials;
  /** Called once when the hub refuses the token or session, so the app can send the user back to sign-in. */
  onUnauthorized: (message: string) => void;
}

export interface ApiClient {
  readonly credentials: Credentials;
  get<T>(path: string): Promise<T>;
  send<T>(method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /**
   * The routes this user may read (OpenAPI paths): the ones the hub serves, less those it said
   * (GET /api/session) this person may not call, so views show an empty state instead of making a
   * request the hub would refuse.
   */
  routes(): Promise<Set<string>>;
  /** Whether the hub serves an OpenAPI route at all, whoever may read it. */
  serves(route: string): Promise<boolean>;
  /**
   * Who is signed in; asked once, or again with `fresh` (what they may run changes with grants and
   * with new things). A 401 answers null (and sends the user to sign-in).
   */
  me(options?: { fresh?: boolean }): Promise<Me>;
  /** Whether the hub still accepts these credentials: null if it does, else why not. */
  check(): Promise<ApiError | null>;
  /** The stream's address: the token in the query for a token, nothing for a session (the cookie goes along). */
  streamUrl(): string;
}

async function readError(response: Response): Promise<ApiError> {
  let code = 'http_' + response.status;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not the hub's JSON error (a proxy in between, say): the status line is the best we have.
  }
  return new ApiError(response.status, code, message);
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function headersFor(credentials: Credentials, method: string): Record<string, string> {
  if (credentials.kind === 'token') return { authorization: `Bearer ${credentials.token}` };
  const csrf = UNSAFE.has(method) ? csrfToken() : null;
  return csrf ? { 'x-csrf-token': csrf } : {};
}

/** The hub's answer to `GET /api/session`. */
interface SessionInfo {
  householdId?: string;
  timeZone?: string;
  role?: string;
  user?: { name?: string } | null;
  token?: { name?: string };
  actions?: ActionAnswers;
  routes?: RouteAnswers;
}

const ROLES: ReadonlySet<string> = new Set(['owner', 'adult', 'child', 'guest']);

/**
 * Why this person may not call a route (`POST /api/energy/plans`), in the hub's words, or null when
 * they may. The hub decides: nothing of its rules is repeated here. A hub that did not say still
 * refuses what it must when asked.
 */
export function routeRefusal(me: Me | null, route: string): string | null {
  const answer = me?.routes?.[route];
  return answer === undefined || answer === true ? null : answer;
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const { credentials } = options;
  let openApi: Promise<Set<string>> | null = null;
  let me: Promise<Me> | null = null;

  const served = () => {
    openApi ??= fetch('/api/openapi.json')
      .then((r) => (r.ok ? (r.json() as Promise<{ paths?: Record<string, unknown> }>) : { paths: {} }))
      .then((doc) => new Set(Object.keys(doc.paths ?? {})))
      .catch(() => new Set<string>());
    return openApi;
  };

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers = headersFor(credentials, method);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      const error = await readError(response);
      options.onUnauthorized(
        credentials.kind === 'session'
          ? 'Your session has ended (it expired, or you signed out elsewhere). Sign in again.'
          : 'Your sign-in has expired or the token is no longer valid. Sign in again.',
      );
      throw error;
    }
    if (!response.ok) throw await readError(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  const client: ApiClient = {
    credentials,
    get: (path) => request('GET', path),
    send: (method, path, body) => request(method, path, body),
    serves: async (route) => (await served()).has(route),
    async routes() {
      const [paths, who] = await Promise.all([served(), client.me().catch(() => null)]);
      return new Set([...paths].filter((route) => routeRefusal(who, `GET ${route}`) === null));
    },
    me(ask = {}) {
      if (ask.fresh) me = null;
      me ??= served().then(async (paths) => {
        // A hub from before accounts has no sessions: its one token is the owner's.
        if (!paths.has('/api/session'))
          return { role: 'owner', name: null, householdId: null, timeZone: null, actions: null, routes: null };
        const info = await request<SessionInfo>('GET', '/api/session');
        const role = ROLES.has(info.role ?? '') ? (info.role as Role) : 'guest';
        return {
          role,
          name: info.user?.name ?? info.token?.name ?? null,
          householdId: info.householdId ?? null,
          timeZone: info.timeZone ?? null,
          actions: info.actions ?? null,
          routes: info.routes ?? null,
        };
      });
      // A failure (the hub was away) is not kept: the next call asks again.
      me.catch(() => {
        me = null;
      });
      return me;
    },
    check: () => checkCredentials(credentials),
    streamUrl() {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const base = `${scheme}//${location.host}/api/stream`;
      return credentials.kind === 'token' ? `${base}?token=${encodeURIComponent(credentials.token)}` : base;
    },
  };
  return client;
}

/**
 * Asks the hub whether credentials are good, without keeping them. `GET /api/things` is the one
 * read every role may make (a guest's answer is just their things), on hubs with or without accounts.
 */
export async function checkCredentials(credentials: Credentials): Promise<ApiError | null> {
  const response = await fetch('/api/things?kind=household', {
    headers: headersFor(credentials, 'GET'),
    credentials: 'same-origin',
  });
  return response.ok ? null : readError(response);
}

/** What `POST /api/session` answers. */
export interface SessionAnswer {
  user: { id: string; name: string; role: string; householdId: string };
  csrfToken: string;
  sessionId: string;
  expiresAt: string;
}

/** Signs in with a name and password; the hub sets the session cookie. Throws an `ApiError` on refusal. */
export async function signInWithPassword(input: {
  name: string;
  password: string;
  household?: string;
}): Promise<SessionAnswer> {
  const response = await fetch('/api/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify(input),
  });
  if (!response.ok) throw await readError(response);
  return (await response.json()) as SessionAnswer;
}

/** Ends a cookie session on the hub (its cookies are cleared by the answer). */
export async function signOutSession(): Promise<void> {
  const csrf = csrfToken();
  await fetch('/api/session', {
    method: 'DELETE',
    headers: csrf ? { 'x-csrf-token': csrf } : {},
    credentials: 'same-origin',
  });
}
