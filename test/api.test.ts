import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { validationMessage } from '../src/api/validation.ts';
import type { Hub } from '../src/core/hub.ts';
import type { DataSchema } from '../src/model/schema.ts';
import { actionDefinition } from '../src/model/vocabulary.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually } from './helpers/hub-process.ts';

/**
 * The HTTP API as a client sees it, on a hub started in this process with the embedded broker and
 * the simulated home: contract shapes, errors, and hostile input that must change nothing.
 */
describe('HTTP API', () => {
  let hub: Hub;
  let base: string;
  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? hub.ownerToken : init.token;
    if (token) headers.set('authorization', `Bearer ${token}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(base + path, { ...init, headers });
  };
  /**
   * The commands requests gave, by id (an earlier test's command may take its next status, one more
   * event, meanwhile). Not the energy service's: it sets the demo charger's current by itself
   * whenever its plan or the meters move it, which on the hub's real clock can be at any moment.
   */
  const requestedCommandIds = async () =>
    new Set(
      (
        (await (await call('/api/events?type=command&limit=10000')).json()) as Array<{
          command: { id: string; issuedBy: string };
        }>
      )
        .filter((event) => event.command.issuedBy !== 'energy')
        .map((event) => event.command.id),
    );

  before(async () => {
    hub = await startDemoTriad();
    base = hub.httpUrl;
    await eventually(async () => ((await (await call('/api/things')).json()) as unknown[]).length >= 6, {
      what: 'the demo devices to be discovered',
    });
  });

  after(async () => {
    await hub.stop();
  });

  it('answers health without a token and everything else only with one', async () => {
    const health = await call('/api/health', { token: null });
    assert.equal(health.status, 200);
    // Liveness and version only: nothing about the household for whoever can reach the port.
    assert.deepEqual(Object.keys((await health.json()) as object).sort(), ['status', 'time', 'version']);
    for (const path of ['/api/things', '/api/events', '/api/things/household', '/api/stream']) {
      const res = await call(path, { token: null });
      assert.equal(res.status, 401, path);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'unauthorized');
    }
    assert.equal((await call('/api/things', { token: 'triad_not-a-real-token' })).status, 401);
    assert.equal((await call('/api/things', { headers: { authorization: 'Basic abc' }, token: null })).status, 401);
  });

  it('lists things with vocabulary state and exports a WoT Thing Description', async () => {
    const things = (await (await call('/api/things')).json()) as Array<{
      id: string;
      name: string;
      capabilities: string[];
      state: Record<string, unknown>;
    }>;
    const hall = things.find((t) => t.name === 'Hall light');
    assert.ok(hall, 'the demo hall light is listed');
    assert.ok(hall.capabilities.includes('light'));
    const td = (await (await call(`/api/things/${hall.id}/td`)).json()) as Record<string, unknown>;
    assert.deepEqual((td['@context'] as unknown[])[0], 'https://www.w3.org/2022/wot/td/v1.1');
    assert.equal(td.title, 'Hall light');
    const actions = td.actions as Record<string, { forms: Array<{ href: string }> }>;
    assert.ok(actions.turn_on.forms[0].href.endsWith(`/actions/turn_on`));
    assert.ok((td.properties as Record<string, unknown>)['light.brightness']);
    assert.deepEqual(td.security, ['bearer_sc']);
  });

  it('describes itself as OpenAPI 3.1 with every contract route', async () => {
    const doc = (await (await call('/api/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.1.0');
    for (const path of [
      '/api/health',
      '/api/things',
      '/api/things/{id}',
      '/api/things/{id}/td',
      '/api/things/{id}/actions/{action}',
      '/api/commands/{id}',
      '/api/things/{id}/history',
      '/api/events',
      '/api/stream',
    ]) {
      assert.ok(doc.paths[path], `${path} is documented`);
    }
  });

  it('commands the demo light through MQTT and the simulated device confirms', async () => {
    const res = await call('/api/things/hall-light/actions/turn_on', {
      method: 'POST',
      body: JSON.stringify({ brightness: 40 }),
    });
    assert.equal(res.status, 202);
    const { commandId } = (await res.json()) as { commandId: string };
    const command = await eventually(async () => {
      const c = (await (await call(`/api/commands/${commandId}`)).json()) as { status: string };
      return c.status === 'confirmed' ? c : null;
    });
    assert.equal(command.status, 'confirmed');
    const thing = (await (await call('/api/things/hall-light')).json()) as { state: Record<string, unknown> };
    assert.equal(thing.state['light.on'], true);
    assert.ok(Math.abs((thing.state['light.brightness'] as number) - 40) < 1);
    const events = (await (await call('/api/events?type=command')).json()) as Array<{
      command: { id: string; status: string };
    }>;
    assert.deepEqual(
      events.filter((e) => e.command.id === commandId).map((e) => e.command.status),
      ['pending', 'sent', 'confirmed'],
    );
  });

  it('gives clear 4xx errors for unknown ids, bad JSON, wrong types and oversized bodies', async () => {
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/api/things/no-such-thing', {}, 404, 'not_found'],
      ['/api/commands/cmd_nope', {}, 404, 'not_found'],
      ['/api/things/hall-light/actions/turn_on', { method: 'POST', body: '{"brightness":' }, 400, 'invalid_json'],
      ['/api/things/hall-light/actions/turn_on', { method: 'POST', body: '[1,2]' }, 400, 'invalid_input'],
      [
        '/api/things/hall-light/actions/turn_on',
        { method: 'POST', body: '{"brightness":"high"}' },
        400,
        'invalid_input',
      ],
      ['/api/things/hall-light/actions/turn_on', { method: 'POST', body: '{"colour":"red"}' }, 400, 'invalid_input'],
      ['/api/things/hall-light/actions/explode', { method: 'POST', body: '{}' }, 404, 'not_found'],
      ['/api/things/hall-light/history?from=yesterday', {}, 400, 'bad_request'],
      ['/api/things/hall-light/history?property=nope.nope', {}, 404, 'not_found'],
      [
        '/api/things/hall-light/actions/turn_on',
        { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(400_000) }) },
        413,
        'body_too_large',
      ],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await call(path, init);
      assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}`);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, code, path);
      assert.ok(body.error.message.length > 0);
      assert.ok(!/at .*\.ts:\d+/.test(body.error.message), 'no stack trace');
    }
    // Bad JSON says where it goes wrong; valid JSON the prototype guard refuses says why.
    const message = async (body: string) => {
      const res = await call('/api/things/hall-light/actions/turn_on', { method: 'POST', body });
      assert.equal(res.status, 400, body);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'invalid_json', body);
      return error.message;
    };
    assert.match(await message('{"brightness":'), /^the body is not valid JSON: .*JSON/);
    assert.equal(
      await message('{"__proto__":{"brightness":1}}'),
      'a key named __proto__, or constructor holding prototype, is not accepted in a body',
    );
    assert.match(await message('{"constructor":{"prototype":{}}}'), /constructor holding prototype/);
  });

  it('takes a JSON body as sent: a wrong type is a 400 that changes nothing, not a value made to fit', async () => {
    const household = await (await call('/api/household')).json();
    const people = await (await call('/api/people')).json();
    const cases: Array<[string, string, unknown]> = [
      ['PUT', '/api/household', { latitude: '52.1', longitude: true }],
      ['PUT', '/api/household', { homeRadius: '100' }],
      ['POST', '/api/people', { name: ['Alex'] }],
      ['POST', '/api/people', { name: true }],
      ['POST', '/api/people', { name: 123 }],
      ['POST', '/api/tokens', { user: 'owner', name: ['x'] }],
    ];
    for (const bad of ['Zed\u0000null', 'red\u001b[31m', '   ']) {
      const res = await call('/api/people', { method: 'POST', body: JSON.stringify({ name: bad }) });
      assert.equal(res.status, 400, `a name ${JSON.stringify(bad)}`);
    }
    for (const [method, path, json] of cases) {
      const res = await call(path, { method, body: JSON.stringify(json) });
      const text = await res.text();
      assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(json)}: ${text}`);
      const error = (JSON.parse(text) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'invalid_request');
      assert.match(error.message, /must be (string|number)/, `${path}: refused for its type`);
    }
    assert.deepEqual(await (await call('/api/household')).json(), household, 'the household is as it was');
    assert.deepEqual(await (await call('/api/people')).json(), people, 'no person was added');
    // A query string is text by nature: its numbers are still read as numbers.
    const page = await call('/api/things/hall-light/history?property=light.on&limit=1');
    assert.equal(page.status, 200, await page.clone().text());
    assert.ok(((await page.json()) as { points: unknown[] }).points.length <= 1);
    // Without a property, every point says whose value it is.
    const mixed = (await (await call('/api/things/hall-light/history')).json()) as {
      points: Array<{ property?: string }>;
    };
    assert.ok(mixed.points.length > 0);
    for (const point of mixed.points) assert.match(point.property ?? '', /^light\./);
  });

  it('names the field a schema refuses and says what is allowed there, on every route', async () => {
    const cases: Array<[string, string, unknown, string | RegExp]> = [
      // people
      ['POST', '/api/people', { name: '   ' }, 'name must not be blank'],
      ['POST', '/api/people', { name: '' }, 'name must not be empty'],
      [
        'POST',
        '/api/people',
        { name: 'x'.repeat(101) },
        'name must be 1–100 characters of text that is not blank and has no control or hidden characters (it has 101)',
      ],
      ['POST', '/api/people', { name: 'red\u001b[31m' }, /^name must not contain control characters/],
      // Hidden characters that hide in a name or reorder it (a right-to-left override), C1 controls.
      ['POST', '/api/people', { name: 'Zo\u200be' }, /^name must not contain .* hidden ones that hide or reorder text/],
      ['POST', '/api/people', { name: 'Sam\u202egnp.exe' }, /^name must not contain .* hidden ones/],
      ['POST', '/api/people', { name: 'Sam\u0085' }, /^name must not contain control characters/],
      ['POST', '/api/people', {}, 'name is required in the body'],
      ['POST', '/api/people', [1], 'the body must be a JSON object'],
      [
        'POST',
        '/api/people',
        { name: 'Alex', colour: 'red' },
        'unknown field "colour" in the body; the fields are name',
      ],
      ['PUT', '/api/household', { latitude: '52.1' }, 'latitude must be number, not string'],
      // zones
      [
        'POST',
        '/api/zones',
        { name: 'Shed', latitude: 1, longitude: 2, radius: 10, colour: 'red' },
        'unknown field "colour" in the body; the fields are name, latitude, longitude, radius, arriveDelay, leaveDelay',
      ],
      [
        'POST',
        '/api/zones',
        { name: 'Shed', latitude: 91, longitude: 2, radius: 10 },
        'latitude must be from -90 to 90',
      ],
      [
        'POST',
        '/api/zones',
        { name: 'Shed', latitude: 1, longitude: 2, radius: 0 },
        'radius must be more than 0 and at most 100000',
      ],
      ['POST', '/api/zones', { name: 'Shed', latitude: 1, radius: 5 }, 'longitude is required in the body'],
      // automations
      ['POST', '/api/automations/replay', { rule: {}, from: '2026-01-01' }, 'to is required in the body'],
      ['GET', '/api/automations/any/traces?limit=0', undefined, 'query parameter limit must be from 1 to 1000'],
      // energy
      ['PUT', '/api/chargers/cp-1/mode', { mode: 'fast' }, 'mode must be one of off, now, minsolar, solar, smart'],
      ['PUT', '/api/chargers/cp-1/mode', { phases: 2 }, 'phases must be one of 1, 3'],
      ['PUT', '/api/energy/site', { limitKw: 0 }, 'limitKw must be more than 0 and at most 1000'],
      [
        'PUT',
        '/api/energy/tariff',
        { currency: 'eur' },
        'currency is not in the allowed form: an ISO 4217 currency code of three capital letters, such as EUR',
      ],
      [
        'PUT',
        '/api/energy/tariff',
        { currency: 'EUR', timeOfUse: [{ from: '07:00', to: '09:00' }] },
        'timeOfUse[0].price is required',
      ],
      [
        'PUT',
        '/api/energy/tariff',
        { currency: 'EUR', timeOfUse: [{ from: '07:00', to: '09:00', price: 1, until: 'x' }] },
        'unknown field "until" in timeOfUse[0]; the fields are from, to, price, days',
      ],
      [
        'PUT',
        '/api/energy/tariff',
        { currency: 'EUR', timeOfUse: [{ from: '07:00', to: '09:00', price: 1, days: [1, 8] }] },
        'timeOfUse[0].days[1] must be from 1 to 7',
      ],
      // things
      [
        'GET',
        `/api/things/${'x'.repeat(129)}`,
        undefined,
        'path parameter id must be at most 128 characters (it has 129)',
      ],
      ['GET', '/api/things/hall-light/history?limit=many', undefined, 'query parameter limit must be integer'],
    ];
    for (const [method, path, json, expected] of cases) {
      const res = await call(path, { method, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
      const text = await res.text();
      const what = `${method} ${path} ${JSON.stringify(json)}: ${text}`;
      assert.equal(res.status, 400, what);
      const error = (JSON.parse(text) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'invalid_request', what);
      if (typeof expected === 'string') assert.equal(error.message, expected, what);
      else assert.match(error.message, expected, what);
      // No regular expression and no ajv path ("body/name") reaches the client.
      assert.doesNotMatch(error.message, /\^|\$"|body\/|querystring\/|params\//, what);
    }
  });

  it('pages events: a full page links to the next, which follows it without a gap or a repeat', async () => {
    const whole = (await (await call('/api/events?limit=6')).json()) as Array<{ id: string }>;
    assert.equal(whole.length, 6, 'the demo has made at least six events');
    const ids: string[] = [];
    let path = '/api/events?limit=2';
    for (let page = 0; page < 3; page++) {
      const res = await call(path);
      ids.push(...((await res.json()) as Array<{ id: string }>).map((e) => e.id));
      const link = res.headers.get('link');
      assert.ok(link, `page ${page} is full and links to the next`);
      path = (/^<([^>]+)>; rel="next"$/.exec(link) as RegExpExecArray)[1];
      assert.match(path, /limit=2/, 'the link keeps the query');
    }
    assert.deepEqual(
      ids,
      whole.map((e) => e.id),
    );
    const last = await call('/api/events?limit=10000');
    assert.equal(last.headers.get('link'), null, 'a page that is not full has nothing after it');
    assert.equal((await call('/api/events?after=yesterday')).status, 400);
  });

  it('never answers 5xx and never changes state for arbitrary ids, actions and bodies (fast-check)', async () => {
    const things = async () => changeable((await (await call('/api/things')).json()) as ThingView[]);
    const before = await things();
    const commandsBefore = await requestedCommandIds();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 40 }),
        fc.constantFrom('turn_on', 'turn_off', 'unlock', 'set_target_temperature', 'x'),
        fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 50 })),
        async (id, action, body) => {
          const target = id.length ? encodeURIComponent(`zz-${id}`) : 'zz';
          const res = await call(`/api/things/${target}/actions/${action}`, { method: 'POST', body });
          assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
          const json = (await res.json()) as { error?: { code?: string } };
          assert.equal(typeof json.error?.code, 'string');
        },
      ),
      { numRuns: 80 },
    );
    await fc.assert(
      fc.asyncProperty(fc.json({ maxDepth: 3 }), async (body) => {
        const res = await call('/api/things/living-room-sensor/actions/turn_on', { method: 'POST', body });
        assert.ok(res.status < 500);
      }),
      { numRuns: 30 },
    );
    await hub.history.flush();
    assert.deepEqual(await things(), before, 'no thing, and no state a command sets, changed');
    assert.deepEqual(await requestedCommandIds(), commandsBefore, 'no command was created');
  });

  it('pages a thing’s history with a cursor, through a millisecond longer than a page', async () => {
    const householdId = hub.householdId;
    // A burst of reports in one millisecond, as a car sends after a tunnel: more than a page.
    // Ahead, clear of the demo's readings (before the sensor was added is not its history).
    const ts = Date.parse('2100-01-01T00:00:00Z');
    await hub.store.appendHistory(
      Array.from({ length: 5 }, (_, i) => ({
        type: 'state' as const,
        id: `evt_page_${i}`,
        householdId,
        ts,
        cause: null,
        thing: 'living-room-sensor',
        property: 'sensor.humidity',
        from: null,
        to: 40 + i,
        source: 'test',
      })),
    );
    const path =
      '/api/things/living-room-sensor/history?property=sensor.humidity&from=2100-01-01T00:00:00Z&to=2100-01-01T00:00:01Z&limit=2';
    const seen: unknown[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const res = await call(next ? `${path}&after=${encodeURIComponent(next)}` : path);
      assert.equal(res.status, 200);
      const page = (await res.json()) as { points: Array<{ id: string; value: unknown }>; next: string | null };
      assert.ok(page.points.length <= 2);
      seen.push(...page.points.map((p) => p.value));
      next = page.next;
      pages++;
    } while (next && pages < 10);
    assert.deepEqual(seen, [40, 41, 42, 43, 44], 'every point once, in order');
    assert.equal(pages, 3, 'two full pages, then the last');
    for (const bad of ['yesterday', '12', '.evt', 'x.evt_1', '1'.repeat(16) + '.evt']) {
      const res = await call(`/api/things/living-room-sensor/history?after=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 400, bad);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.match(body.error.message, /after must be the next cursor/);
    }
    // Any cursor at all, well-formed or not: an answer, never a failure of the hub.
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.tuple(fc.nat(), fc.string()).map(([ms, id]) => `${ms}.${id}`),
        ),
        async (cursor) => {
          const res = await call(`/api/things/living-room-sensor/history?after=${encodeURIComponent(cursor)}&limit=3`);
          assert.ok(res.status === 200 || res.status === 400, `status ${res.status} for ${JSON.stringify(cursor)}`);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('streams state changes over the WebSocket and can resynchronise with a snapshot', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/stream?token=${hub.ownerToken}`);
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    ws.send('not json');
    await eventually(() => messages.some((m) => m.type === 'error'), { what: 'an error for a bad message' });
    ws.send(JSON.stringify({ type: 'subscribe', things: ['coffee-machine'], snapshot: true }));
    await eventually(() => messages.some((m) => m.type === 'snapshot.end'), { what: 'the snapshot' });
    assert.ok(messages.some((m) => m.type === 'thing' && m.thing === 'coffee-machine'));
    assert.ok(!messages.some((m) => m.type === 'thing' && m.thing === 'hall-light'), 'only what was asked for');
    await call('/api/things/coffee-machine/actions/toggle', { method: 'POST', body: '{}' });
    const change = await eventually(() =>
      messages.find((m) => m.type === 'state' && m.thing === 'coffee-machine' && m.property === 'switch.on'),
    );
    assert.equal(typeof change.value, 'boolean');
    assert.ok(!messages.some((m) => m.type === 'state' && m.thing !== 'coffee-machine'));
    ws.close();
  });

  it('refuses a stream subscription to a thing that does not exist, or by a filter it does not have', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/stream`, {
      headers: { authorization: `Bearer ${hub.ownerToken}` },
    });
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'subscribe', things: ['coffee-machine'] }));
    await eventually(() => messages.some((m) => m.type === 'subscribed'), { what: 'the first subscription' });
    const errors = () =>
      messages.filter((m) => m.type === 'error') as Array<{ error: { code: string; message: string } }>;
    ws.send(JSON.stringify({ type: 'subscribe', things: ['nope'] }));
    await eventually(() => errors().length === 1, { what: 'a refusal of the unknown thing' });
    assert.equal(errors()[0].error.code, 'not_found');
    assert.match(errors()[0].error.message, /no thing "nope" in your household/);
    ws.send(JSON.stringify({ type: 'subscribe', types: ['nope'] }));
    await eventually(() => errors().length === 2, { what: 'a refusal of the unknown field' });
    assert.equal(errors()[1].error.code, 'bad_message');
    assert.match(errors()[1].error.message, /unknown field "types"/);
    ws.send(JSON.stringify({ type: 'subscribe', things: ['*'], snapshot: 'yes' }));
    await eventually(() => errors().length === 3, { what: 'a refusal of a snapshot that is not true or false' });
    assert.equal(errors()[2].error.code, 'bad_message');
    assert.match(errors()[2].error.message, /snapshot must be true or false/);
    ws.send(JSON.stringify({ type: 'subscribe', things: Array.from({ length: 5000 }, (_, i) => `t-${i}`) }));
    await eventually(() => errors().length === 4, { what: 'a refusal of too many things' });
    assert.equal(errors()[3].error.code, 'bad_message');
    assert.match(errors()[3].error.message, /^at most 1000 things in one subscription \(5000 asked\)/);
    assert.equal(messages.filter((m) => m.type === 'subscribed').length, 1, 'none was acknowledged');
    // Refused messages changed nothing: the first subscription still carries its thing, only it.
    await call('/api/things/coffee-machine/actions/toggle', { method: 'POST', body: '{}' });
    await eventually(() => messages.some((m) => m.type === 'state' && m.thing === 'coffee-machine'), {
      what: 'the coffee machine’s change on the earlier subscription',
    });
    assert.ok(!messages.some((m) => m.type === 'state' && m.thing !== 'coffee-machine'));
    ws.close();
  });

  it('refuses an unknown event type naming the known ones, and a range that ends before it starts', async () => {
    const bogus = await call('/api/events?type=bogus');
    assert.equal(bogus.status, 400);
    const { error } = (await bogus.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'bad_request');
    assert.match(error.message, /^unknown event type "bogus"; the types are state, command, /);
    assert.match(error.message, /automation\.run/);
    const misspelt = (await (await call('/api/events?type=state,comand')).json()) as { error: { message: string } };
    assert.match(misspelt.error.message, /^unknown event type "comand";/, 'only the wrong one is named');

    // Every type the hub has recorded is one it accepts, and filters by.
    await call('/api/things/coffee-machine/actions/toggle', { method: 'POST', body: '{}' });
    const all = (await (await call('/api/events?limit=10000')).json()) as Array<{ type: string }>;
    const recorded = [...new Set(all.map((e) => e.type))];
    assert.ok(recorded.includes('state') && recorded.includes('command'), recorded.join(', '));
    for (const type of recorded) {
      const res = await call(`/api/events?type=${encodeURIComponent(type)}&limit=10000`);
      assert.equal(res.status, 200, `${type}: ${await res.clone().text()}`);
      const events = (await res.json()) as Array<{ type: string }>;
      assert.ok(events.length > 0 && events.every((e) => e.type === type), type);
    }

    const backwards = await call('/api/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z');
    assert.equal(backwards.status, 400);
    assert.deepEqual(await backwards.json(), {
      error: { code: 'bad_request', message: 'since must not be after until' },
    });
    const history = await call('/api/things/hall-light/history?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z');
    assert.deepEqual(await history.json(), { error: { code: 'bad_request', message: 'from must not be after to' } });
  });

  it('answers in the hub’s error format even where Fastify itself refuses the request', async () => {
    const expect = async (res: Response, status: number, code: string) => {
      const text = await res.text();
      assert.equal(res.status, status, text);
      const body = JSON.parse(text) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ['error'], text);
      const error = body.error as { code: string; message: string };
      assert.equal(error.code, code, text);
      assert.ok(error.message.length > 0);
    };
    await expect(await call('/api/things/%ZZ'), 400, 'bad_url');
    await expect(await call('/api/things/%ZZ', { token: null }), 400, 'bad_url');
    await expect(
      await call('/api/things/hall-light/actions/turn_on', {
        method: 'POST',
        body: '<on/>',
        headers: { 'content-type': 'application/xml' },
      }),
      415,
      'unsupported_media_type',
    );
    // A 415 names what was sent and what the route takes.
    const xml = await call('/api/things/hall-light/actions/turn_on', {
      method: 'POST',
      body: '<on/>',
      headers: { 'content-type': 'application/xml; charset=utf-8' },
    });
    assert.equal(
      ((await xml.json()) as { error: { message: string } }).error.message,
      'application/xml is not accepted here; send application/json',
    );
    // text/plain has a parser (rules are YAML text), but an action's input is JSON only: a JSON body
    // sent as text is told so, not that its input "must be an object", and nothing is commanded.
    const commandsBefore = await requestedCommandIds();
    const text = await call('/api/things/hall-light/actions/turn_on', {
      method: 'POST',
      body: '{"brightness":40}',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(text.status, 415);
    assert.deepEqual(await text.json(), {
      error: { code: 'unsupported_media_type', message: 'text/plain is not accepted here; send application/json' },
    });
    assert.deepEqual(await requestedCommandIds(), commandsBefore);
    const rule = await call('/api/automations', {
      method: 'POST',
      body: '<rule/>',
      headers: { 'content-type': 'text/xml' },
    });
    assert.equal(rule.status, 415);
    assert.match(
      ((await rule.json()) as { error: { message: string } }).error.message,
      /^text\/xml is not accepted here; send application\/json or YAML \(application\/yaml/,
    );
    await expect(await call('/api/stream'), 426, 'upgrade_required');
    // Headers too large never reach Fastify's router: Node refuses them on the connection.
    const raw = await rawRequest(`GET /api/things HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 431 /);
    assert.deepEqual(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)), {
      error: { code: 'headers_too_large', message: 'the request headers are too large' },
    });
  });

  it('answers a method a route does not take with 405 and the methods it does take in Allow', async () => {
    const refused = async (method: string, path: string, allow: string) => {
      const res = await call(path, { method });
      const text = await res.text();
      assert.equal(res.status, 405, `${method} ${path}: ${text}`);
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
      assert.deepEqual(JSON.parse(text), {
        error: { code: 'method_not_allowed', message: `no route for ${method} ${path}; it takes ${allow}` },
      });
    };
    for (const method of ['PATCH', 'DELETE', 'PUT', 'POST'])
      await refused(method, '/api/things/hall-light', 'GET, HEAD');
    await refused('GET', '/api/things/hall-light/actions/turn_on', 'POST');
    await refused('DELETE', '/api/things', 'GET, HEAD');
    // A trailing slash is the same path: the same 405, not a 404 beside it.
    await refused('DELETE', '/api/things/', 'GET, HEAD');
    await refused('PATCH', '/api/things/hall-light/', 'GET, HEAD');
    assert.equal((await call('/api/things/hall-light')).status, 200, 'the DELETE removed nothing');
    // Outside /api every path is the dashboard's, which takes GET: a POST to it is told so.
    await refused('POST', '/', 'GET, HEAD');
    await refused('DELETE', '/no-such-page', 'GET, HEAD');
    // A path no route takes is still a 404: under /api, where only the dashboard answers GET; with
    // an empty part where a route has an id; and with a part longer than any route parameter takes
    // (which the router answers under every method).
    for (const [method, path] of [
      ['PATCH', '/api/no-such-route'],
      ['GET', '/api/no-such-route'],
      ['GET', '/api/things//history'],
      ['PATCH', '/api/things//history'],
      ['POST', '/api/things//actions/turn_on'],
      ['PATCH', `/api/things/${'x'.repeat(300)}`],
    ]) {
      const res = await call(path, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), null, `${method} ${path}`);
    }
    // With a trailing slash a route answers as without one: a list, a thing, the public health check.
    const list = await call('/api/things/');
    assert.equal(list.status, 200);
    assert.ok(Array.isArray(await list.json()));
    const thing = await call('/api/things/hall-light/');
    assert.equal(thing.status, 200);
    assert.equal(((await thing.json()) as { id: string }).id, 'hall-light');
    assert.equal((await call('/api/health/', { token: null })).status, 200);
    const empty = await call('/api/things//history');
    assert.deepEqual(await empty.json(), {
      error: { code: 'not_found', message: 'no route for GET /api/things//history' },
    });
    // Without a token it is the 401 every API route gives first.
    assert.equal((await call('/api/things/hall-light', { method: 'DELETE', token: null })).status, 401);
  });

  it('takes ?token= only when opening a WebSocket: elsewhere it is a 401 that points to the header', async () => {
    for (const token of [hub.ownerToken, null]) {
      const res = await call(`/api/things?token=${hub.ownerToken}`, { token });
      assert.equal(res.status, 401, `with${token ? '' : 'out'} the header too`);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'unauthorized');
      assert.match(error.message, /Authorization header/);
    }
    const commandsBefore = await requestedCommandIds();
    const action = await call(`/api/things/hall-light/actions/toggle?token=${hub.ownerToken}`, {
      method: 'POST',
      body: '{}',
      token: null,
    });
    assert.equal(action.status, 401);
    const commandsAfter = await requestedCommandIds();
    assert.deepEqual(commandsAfter, commandsBefore, 'the refused call commanded nothing');
    // The stream, which browsers cannot give a header, still opens with it.
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/stream?token=${hub.ownerToken}`);
    const first = new Promise<Record<string, unknown>>((resolve) =>
      ws.once('message', (d) => resolve(JSON.parse(d.toString()))),
    );
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'subscribe', things: ['*'] }));
    assert.equal((await first).type, 'subscribed');
    ws.close();
  });

  /** Sends bytes as they are, for what no HTTP client would send; returns the whole answer. */
  function rawRequest(text: string): Promise<string> {
    const { port } = new URL(base);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(text));
      let answer = '';
      socket.on('data', (d: Buffer) => {
        answer += d.toString();
      });
      socket.on('close', () => resolve(answer));
      // The hub closes the connection once it has answered; a reset then loses nothing.
      socket.on('error', (error) => (answer ? resolve(answer) : reject(error)));
    });
  }
});

/** A thing as `/api/things` lists it, as far as `changeable` reads it. */
interface ThingView {
  kind: string;
  state: Record<string, unknown>;
  properties: Record<string, Record<string, unknown>>;
  actions: Record<string, { capability: string; input?: DataSchema }>;
  [field: string]: unknown;
}

/**
 * What a request could change in a `/api/things` answer, and nothing the simulated household
 * changes by itself: every thing's description (which things there are, their names, rooms,
 * capabilities, properties' schemas, actions) and each home device's commandable state, the
 * properties its actions set (a light's on, brightness and colour temperature; a lock's bolt; a
 * thermostat's mode and target). Readings, availability and times are left out: on the hub's real
 * clock the energy site's meters report every 10 s (a device with `sensor.power` that moves with
 * the sun and the charger's draw), the sensor drifts, the thermostat's room warms, the car and the
 * phones report. So is the charger's and the car's charging, which the energy service commands by
 * itself; a command to them from a request is what `requestedCommandIds` sees.
 */
function changeable(things: ThingView[]): unknown[] {
  return things.map(({ state, online: _online, updatedAt: _updatedAt, properties, ...description }) => ({
    ...description,
    // A property's schema, without its live value and time.
    properties: Object.fromEntries(
      Object.entries(properties).map(([name, { value: _value, ts: _ts, ...schema }]) => [name, schema]),
    ),
    state:
      description.kind === 'device'
        ? Object.fromEntries(commandableProperties(description.actions).map((name) => [name, state[name] ?? null]))
        : {},
  }));
}

/** The properties a thing's actions set: those each action's expectation names, given every input it takes. */
function commandableProperties(actions: ThingView['actions']): string[] {
  const names = new Set<string>();
  for (const [action, spec] of Object.entries(actions)) {
    const definition = actionDefinition(spec.capability, action);
    const takes = definition?.input?.properties ?? spec.input?.properties ?? {};
    const input = Object.fromEntries(Object.keys(takes).map((key) => [key, 1]));
    for (const name of Object.keys(definition?.expect(input, () => undefined) ?? {})) names.add(name);
  }
  return [...names].sort();
}

describe('schema refusals in words', () => {
  it('says what form a pattern wants from its description, and never prints the pattern', () => {
    const code = { type: 'string', pattern: '^[A-Z]{3}$', description: 'three capital letters, such as EUR' };
    const error = (keyword: string, params: Record<string, unknown>, parentSchema: Record<string, unknown>) => ({
      keyword,
      instancePath: '/currency',
      params,
      parentSchema,
      data: 'eur',
    });
    assert.equal(
      validationMessage([error('pattern', { pattern: code.pattern }, code)], 'body'),
      'currency is not in the allowed form: three capital letters, such as EUR',
    );
    assert.equal(
      validationMessage(
        [error('format', { format: 'date-time' }, { type: 'string', format: 'date-time' })],
        'querystring',
      ),
      'query parameter currency must be a date and time in ISO 8601, such as 2026-01-31T18:00:00Z',
    );
    assert.equal(
      validationMessage(
        [error('multipleOf', { multipleOf: 5 }, {})].map((e) => ({ ...e, message: 'must be multiple of 5' })),
        'body',
      ),
      'currency must be multiple of 5',
    );
  });
});
