import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { Hub } from '../../src/core/hub.ts';
import { eventuallyPasses } from './hub-process.ts';

export type Json = Record<string, unknown>;

/** Calls the hub's API as `token`'s holder (the owner by default); a JSON body goes as `json`. */
export function apiCaller(hub: Hub) {
  return async (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
    const headers = new Headers({ authorization: `Bearer ${init.token ?? hub.ownerToken}` });
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json, text };
  };
}

/** A guest pass for the hall light (see addFrontDoorAndHallLight), valid for the next hour; its token. */
export async function hallLightPass(hub: Hub): Promise<string> {
  const pass = await apiCaller(hub)('/api/guest-passes', {
    method: 'POST',
    json: {
      name: 'Dog walker',
      things: ['hall-light'],
      actions: ['turn_on', 'turn_off'],
      from: new Date(Date.now() - 60_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    },
  });
  assert.equal(pass.status, 201, pass.text);
  return pass.body.token as string;
}

/** A stream opened with `token` and subscribed to everything, and every message it was sent since. */
export async function subscribedStream(hub: Hub, token: string) {
  const socket = new WebSocket(`${hub.httpUrl.replace(/^http/, 'ws')}/api/stream`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const messages: Json[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Json));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'subscribe', things: ['*'] }));
  await eventuallyPasses(() =>
    assert.ok(
      messages.some((m) => m.type === 'subscribed'),
      JSON.stringify(messages),
    ),
  );
  return { messages, close: () => socket.close() };
}
