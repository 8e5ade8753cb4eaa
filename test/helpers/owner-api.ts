import type { Hub } from '../../src/core/hub.ts';

/** Calls the hub's API with the owner's token; a body, when given, goes as JSON. */
export function ownerFetch(hub: Hub, path: string, method = 'GET', body?: unknown): Promise<Response> {
  return tokenFetch(hub, hub.ownerToken, path, method, body);
}

/** Calls the hub's API with a bearer token; a body, when given, goes as JSON. */
export function tokenFetch(hub: Hub, token: string, path: string, method = 'GET', body?: unknown): Promise<Response> {
  return fetch(hub.httpUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
