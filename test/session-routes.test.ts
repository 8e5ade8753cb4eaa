import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, { security?: unknown[]; responses?: Json }>> };

const HOUR = 3_600_000;

/**
 * `GET /api/session` tells a client which routes it may call (`routes`: `METHOD /path` → true or
 * the 403's words), so the dashboard asks only for what the hub will give it and keeps no copy of
 * the hub's rules; and its answer is described in the OpenAPI document. Each answer is checked
 * against what the hub does when the route is called, for an owner, a child and a guest pass.
 */
describe('security: the routes GET /api/session says a principal may call', () => {
  let hub: Hub;
  let doc: Doc;

  const call = async (path: string, init: RequestInit & { json?: unknown; token?: string | null } = {}) => {
    const headers = new Headers();
    if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? hub.ownerToken}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json, text };
  };

  const childToken = async () => {
    const made = await call('/api/users', {
      method: 'POST',
      json: { name: 'robin', role: 'child', password: 'robin-long-password-1' },
    });
    assert.equal(made.status, 201, made.text);
    const token = await call('/api/tokens', { method: 'POST', json: { user: 'robin', name: "robin's phone" } });
    assert.equal(token.status, 201, token.text);
    return token.body.token as string;
  };

  const passToken = async () => {
    const now = Date.now();
    const pass = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Dog walker',
        things: ['front-door', 'hall-light'],
        actions: ['*'],
        from: new Date(now - 60_000).toISOString(),
        to: new Date(now + HOUR).toISOString(),
      },
    });
    assert.equal(pass.status, 201, pass.text);
    return pass.body.token as string;
  };

  /**
   * Reads every GET route the session answers for (ids filled with the hall light's) and checks
   * the hub does as it said: a route said `true` is not refused, one with a reason is a 403 in
   * those words. Answers the session's routes.
   */
  const readsMatchHub = async (token: string): Promise<Record<string, true | string>> => {
    const session = await call('/api/session', { token });
    assert.equal(session.status, 200, session.text);
    const routes = session.body.routes as Record<string, true | string>;
    assert.ok(routes && typeof routes === 'object', `the session says which routes: ${session.text}`);
    const served = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    assert.deepEqual(Object.keys(routes).sort(), served.sort(), 'one answer for each route the document lists');
    for (const [route, answer] of Object.entries(routes)) {
      const [method, path] = route.split(' ');
      if (method !== 'GET' || path === '/api/stream') continue;
      const url = path.replace(/\{\w+\}/g, (param) => (param === '{property}' ? 'light.on' : 'hall-light'));
      const res = await call(url, { token });
      if (answer === true) assert.notEqual(res.status, 403, `${route} said allowed, the hub refused: ${res.text}`);
      else {
        assert.equal(res.status, 403, `${route} said refused (${answer}), the hub answered ${res.status}`);
        assert.equal((res.body.error as Json).message, answer, `${route}: the same words as the 403`);
      }
    }
    return routes;
  };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-session-routes-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    await addFrontDoorAndHallLight(hub);
    doc = (await call('/api/openapi.json', { token: null })).body as unknown as Doc;
  });

  after(async () => {
    await hub.stop();
  });

  it('an owner may call every route', async () => {
    const routes = await readsMatchHub(hub.ownerToken);
    assert.deepEqual(
      Object.entries(routes).filter(([, answer]) => answer !== true),
      [],
    );
  });

  it('a child may read the household but not its accounts, nor make anything but commands', async () => {
    const routes = await readsMatchHub(await childToken());
    assert.equal(routes['GET /api/things'], true);
    assert.equal(routes['GET /api/events'], true);
    assert.equal(
      routes['GET /api/users'],
      'only owners may manage accounts, grants, guest passes, devices, tokens and the audit trail',
    );
    assert.equal(routes['POST /api/things/{id}/actions/{action}'], true, 'each action is then checked on its own');
    assert.equal(routes['GET /api/health'], true, 'a route anyone may call');
  });

  it('a guest pass may read what it was given as it is now, not its history', async () => {
    const routes = await readsMatchHub(await passToken());
    assert.equal(routes['GET /api/things/{id}'], true);
    assert.equal(routes['GET /api/things/{id}/history'], "a guest pass shows a thing's current state, not its history");
    assert.equal(routes['GET /api/commands/{id}'], true);
    assert.equal(routes['GET /api/events'], "a guest pass shows a thing's current state, not its history");
    assert.equal(routes['POST /api/session'], true, 'signing in is for anyone');
  });

  it('the OpenAPI document describes the answer of GET /api/session, and real answers fit it', async () => {
    const response = doc.paths['/api/session']?.get?.responses?.['200'] as
      | { content?: { 'application/json'?: { schema?: Json } } }
      | undefined;
    const schema = response?.content?.['application/json']?.schema;
    assert.ok(schema, 'GET /api/session has a response schema');
    const properties = Object.keys((schema.properties ?? {}) as Json).sort();
    assert.deepEqual(properties, ['actions', 'householdId', 'role', 'routes', 'timeZone', 'token', 'user']);
    const fits = new Ajv2020({ strict: false }).compile(schema);
    for (const token of [hub.ownerToken, await passToken()]) {
      const session = await call('/api/session', { token });
      assert.equal(session.status, 200, session.text);
      assert.ok(fits(session.body), `the answer fits its schema: ${JSON.stringify(fits.errors)}`);
      const actions = session.body.actions as Record<string, Record<string, unknown>>;
      assert.ok(Object.keys(actions['hall-light'] ?? {}).length > 0, 'the answer keeps every action it gives');
    }
    // And every schema of the document is still one JSON Schema 2020-12 (OpenAPI 3.1's) can read.
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations as Record<string, Json>)) {
        const bodies = [
          (operation.requestBody as Json | undefined)?.content,
          ...Object.values((operation.responses ?? {}) as Record<string, Json>).map((r) => r.content),
        ];
        for (const content of bodies) {
          const schema = (content as Record<string, Json> | undefined)?.['application/json']?.schema as Json;
          if (schema && !('$ref' in schema)) assert.doesNotThrow(() => ajv.compile(schema), `${method} ${path}`);
        }
      }
    }
    // The owner's answer names them (user), the guest pass's is null: both fit.
    const owner = await call('/api/session');
    assert.equal((owner.body.user as Json).role, 'owner');
  });
});
