import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { createTriad } from '../src/triad.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * What the API says of a request it cannot take: an action's body that is JSON but not an object
 * is a 400 saying the body must be an object (not a 415 that asks for the type it was sent in),
 * and an event filter naming a thing the household does not have is a 404 naming it, as a
 * thing's history is.
 */

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

describe('API: action bodies and event filters', () => {
  let hub: Hub;

  const call = async (path: string, init: { method?: string; body?: string; type?: string } = {}): Promise<Answer> => {
    const headers = new Headers({ authorization: `Bearer ${hub.ownerToken}` });
    if (init.type) headers.set('content-type', init.type);
    const res = await fetch(hub.httpUrl + path, { method: init.method ?? 'GET', headers, body: init.body });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  };
  const turnOn = (body: string | undefined, type = 'application/json') =>
    call('/api/things/hall-light/actions/turn_on', {
      method: 'POST',
      body,
      type: body === undefined ? undefined : type,
    });
  /** The household's commands, to see that a refused body commanded nothing. */
  const commandCount = async () => ((await call('/api/events?type=command&limit=10000')).body as unknown as []).length;

  before(async () => {
    hub = createTriad({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    await hub.core.upsertThing({
      id: 'hall-light',
      householdId: hub.householdId,
      kind: 'device',
      name: 'Hall light',
      adapter: 'test',
      properties: vocabularyProperties(['light.on', 'light.brightness']),
      actions: vocabularyActions('light'),
    });
  });

  after(async () => {
    await hub?.stop();
  });

  it('refuses a JSON body that is not an object with a 400 that says so, commanding nothing', async () => {
    const before = await commandCount();
    for (const [body, kind] of [
      ['"x"', 'string'],
      ['null', 'null'],
      ['42', 'number'],
      ['true', 'boolean'],
      ['[1,2]', 'array'],
    ]) {
      const answer = await turnOn(body);
      assert.equal(answer.status, 400, body);
      assert.equal(answer.body.error?.code, 'invalid_input', body);
      assert.equal(
        answer.body.error?.message,
        `the body must be a JSON object, the action's input (send no body, or {}, for an action without input), not ${kind}`,
      );
    }
    // Sent with a charset, it is still JSON.
    const withCharset = await turnOn('"x"', 'application/json; charset=utf-8');
    assert.equal(withCharset.status, 400);
    assert.equal(await commandCount(), before);
    // No body, or {}, is still no input; a body sent as text is still told its type is wrong.
    assert.equal((await turnOn(undefined)).status, 202);
    assert.equal((await turnOn('{}')).status, 202);
    const text = await turnOn('{}', 'text/plain');
    assert.equal(text.status, 415);
    assert.equal(text.body.error?.message, 'text/plain is not accepted here; send application/json');
  });

  it('answers events of a thing the household does not have with a 404 naming it', async () => {
    const unknown = await call('/api/events?thing=nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'not_found');
    assert.match(unknown.body.error?.message ?? '', /"nope"/);
    // As the thing's history does.
    assert.equal((await call('/api/things/nope/history')).status, 404);
    const known = await call('/api/events?thing=hall-light&type=command');
    assert.equal(known.status, 200);
    assert.ok(Array.isArray(known.body));
  });
});
