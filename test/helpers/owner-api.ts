import assert from 'node:assert/strict';
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

/** What JSON.parse gives: a test reads the answer's fields as it expects them to be. */
type ParsedJson = ReturnType<typeof JSON.parse>;

/** Calls the hub's API as its owner and answers the JSON body, failing the test on any status but 2xx. */
export async function ownerJson<T = ParsedJson>(hub: Hub, path: string, method = 'GET', body?: unknown): Promise<T> {
  const response = await ownerFetch(hub, path, method, body);
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
