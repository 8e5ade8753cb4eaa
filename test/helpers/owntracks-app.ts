import assert from 'node:assert/strict';
import type { Hub } from '../../src/core/hub.ts';
import { ownerFetch } from './owner-api.ts';
import type { Phone } from './owntracks.ts';

/** A person with one phone: the person's id and the phone's OwnTracks credentials. */
export interface Tracker extends Phone {
  person: string;
}

/** Calls the API as the owner, checks the status and answers the JSON body (undefined for a 204). */
export async function ownerCall<T>(hub: Hub, method: string, path: string, body?: unknown, status = 200): Promise<T> {
  const res = await ownerFetch(hub, path, method, body);
  assert.equal(res.status, status, `${method} ${path}: ${await res.clone().text()}`);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** Adds a person and a tracker named `phone` for them, as a household would through the API. */
export async function addPersonWithPhone(hub: Hub, name: string): Promise<Tracker> {
  const { id } = await ownerCall<{ id: string }>(hub, 'POST', '/api/people', { name }, 201);
  const phone = await ownerCall<Phone>(hub, 'POST', `/api/people/${id}/trackers`, { name: 'phone' }, 201);
  return { person: id, username: phone.username, password: phone.password };
}

/**
 * Posts any body (an object goes as JSON, a string as it is) as the OwnTracks app does in HTTP
 * mode: HTTP Basic with the phone's credentials, X-Limit-U and X-Limit-D.
 */
export function postOwnTracks(hub: Hub, phone: Phone, body: unknown, device = 'pixel'): Promise<Response> {
  return fetch(`${hub.httpUrl}/api/owntracks`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${phone.username}:${phone.password}`).toString('base64')}`,
      'content-type': 'application/json; charset=utf-8',
      'x-limit-u': phone.username,
      'x-limit-d': device,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
