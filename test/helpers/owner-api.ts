import type { Hub } from '../../src/core/hub.ts';

/** Calls the hub's API with the owner's token; a body, when given, goes as JSON. */
export function ownerFetch(hub: Hub, path: string, method = 'GET', body?: unknown): Promise<Response> {
  return fetch(hub.httpUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${hub.ownerToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
