import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import type { Hub } from '../src/core/hub.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { apiCaller, type Json } from './helpers/guest-stream.ts';
import { eventually } from './helpers/hub-process.ts';
import { startTriad } from './helpers/triad-hub.ts';

/**
 * The things API and the stream under hostile names and another household's ids: a name that is
 * a property of every JavaScript object (constructor, __proto__, toString) is no thing, property,
 * action or input field of the hub's, and another household's thing is, to a caller, not there.
 */
describe('API review: hostile names and other households', () => {
  let hub: Hub;
  let call: ReturnType<typeof apiCaller>;
  let neighbours: string;

  before(async () => {
    hub = await startTriad();
    call = apiCaller(hub);
    await addFrontDoorAndHallLight(hub);
    const made = await call('/api/households', { method: 'POST', json: { name: 'Neighbours' } });
    assert.equal(made.status, 201, made.text);
    neighbours = made.body.token as string;
  });
  after(async () => {
    await hub?.stop();
  });

  const commands = async () => ((await call('/api/events?type=command&limit=10000')).body as unknown as Json[]).length;

  it('refuses an action input field named after an Object.prototype member, as it refuses any unknown field', async () => {
    const before = await commands();
    for (const key of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      const answer = await call('/api/things/hall-light/actions/turn_on', { method: 'POST', json: { [key]: 5 } });
      assert.equal(answer.status, 400, `${key}: ${answer.text}`);
      assert.equal((answer.body.error as Json).code, 'invalid_input');
      assert.match((answer.body.error as Json).message as string, new RegExp(`input\\.${key} is not allowed`));
    }
    assert.equal(await commands(), before, 'nothing was commanded');
  });

  it('answers any property name with its value or a 404, never a 5xx or a prototype member', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', 'light.on', 'ü', '🙂.on'),
          fc.string({ maxLength: 128 }).filter((s) => s.length > 0 && !/[/?#%]/.test(s) && s.trim() === s),
        ),
        async (property) => {
          const path = `/api/things/hall-light/properties/${encodeURIComponent(property)}`;
          const answer = await call(path);
          if (property === 'light.on') assert.equal(answer.status, 200);
          else assert.equal(answer.status, 404, `${JSON.stringify(property)}: ${answer.text}`);
          const history = await call(`/api/things/hall-light/history?property=${encodeURIComponent(property)}`);
          assert.ok(history.status === 200 || history.status === 404, `${JSON.stringify(property)}: ${history.text}`);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("answers another household's thing as not there, on every route and on the stream", async () => {
    for (const [path, method] of [
      ['/api/things/hall-light', 'GET'],
      ['/api/things/hall-light/td', 'GET'],
      ['/api/things/hall-light/properties/light.on', 'GET'],
      ['/api/things/hall-light/history', 'GET'],
      ['/api/events?thing=hall-light', 'GET'],
      ['/api/things/hall-light/actions/turn_on', 'POST'],
    ] as const) {
      const answer = await call(path, { method, token: neighbours, ...(method === 'POST' ? { json: {} } : {}) });
      assert.equal(answer.status, 404, `${method} ${path}: ${answer.text}`);
      assert.ok(!answer.text.includes('Hall light'), answer.text);
    }
    const listed = (await call('/api/things', { token: neighbours })).body as unknown as Json[];
    assert.ok(!listed.some((t) => t.id === 'hall-light'));
    const socket = new WebSocket(`${hub.httpUrl.replace(/^http/, 'ws')}/api/stream`, {
      headers: { authorization: `Bearer ${neighbours}` },
    });
    const messages: Json[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Json));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'subscribe', things: ['hall-light'] }));
    await eventually(() => messages.some((m) => m.type === 'error'), { what: 'a refusal' });
    assert.equal((messages[0].error as Json).code, 'not_found');
    socket.send(JSON.stringify({ type: 'subscribe', things: ['*'], snapshot: true }));
    await eventually(() => messages.some((m) => m.type === 'snapshot.end'), { what: 'the snapshot' });
    hub.core.ingest([
      {
        householdId: hub.householdId,
        thing: 'hall-light',
        property: 'light.on',
        value: true,
        ts: Date.now(),
        source: 't',
      },
    ]);
    // The owner's own stream hears it; the neighbours' never does.
    const own = await call('/api/things/hall-light/properties/light.on');
    assert.equal(own.body.value, true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const heard = JSON.stringify(messages.filter((m) => m.type !== 'error'));
    assert.ok(!heard.includes('hall-light') && !heard.includes('Hall light'), heard.slice(0, 500));
    socket.close();
  });
});
