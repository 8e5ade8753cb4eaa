/** A small fetch client: adds the token, turns the hub's error shape into an `ApiError`. */

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

export interface ApiClientOptions {
  token: string;
  /** Called once when the hub refuses the token, so the app can send the user back to sign-in. */
  onUnauthorized: (message: string) => void;
}

export interface ApiClient {
  readonly token: string;
  get<T>(path: string): Promise<T>;
  send<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T>;
  /** The routes the hub serves, from its OpenAPI document; parts of Triad still landing are left out. */
  routes(): Promise<Set<string>>;
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

/** Asks the hub whether a token is good, without keeping it. */
export async function checkToken(token: string): Promise<ApiError | null> {
  const response = await fetch('/api/things?kind=household', { headers: { authorization: `Bearer ${token}` } });
  return response.ok ? null : readError(response);
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const { token } = options;
  let routes: Promise<Set<string>> | null = null;

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      const error = await readError(response);
      options.onUnauthorized('Your sign-in has expired or the token is no longer valid. Sign in again.');
      throw error;
    }
    if (!response.ok) throw await readError(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  return {
    token,
    get: (path) => request('GET', path),
    send: (method, path, body) => request(method, path, body),
    routes() {
      routes ??= fetch('/api/openapi.json')
        .then((r) => (r.ok ? (r.json() as Promise<{ paths?: Record<string, unknown> }>) : { paths: {} }))
        .then((doc) => new Set(Object.keys(doc.paths ?? {})))
        .catch(() => new Set<string>());
      return routes;
    },
  };
}
