import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { addFrontDoorAndHallLight } from './helpers/guest-home.ts';
import { tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;
type ActionAnswers = Record<string, Record<string, true | string>>;
type InputSchema = { required?: string[]; properties?: Record<string, { enum?: string[]; minimum?: number }> };

const HOUR = 3_600_000;

/**
 * `GET /api/session` tells a client, for each thing it sees, which actions it may run and why not
 * the others, so the dashboard offers only what the hub then allows. For every role (owner, adult,
 * a child without and with grants, a guest pass), each answer is checked against what the hub
 * does when the action is asked for: allowed ones are accepted, refused ones are 403 with the same words.
 */
describe('security: what GET /api/session says a principal may run', () => {
  let hub: Hub;

  const call = async (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
    const headers = new Headers({ authorization: `Bearer ${init.token ?? hub.ownerToken}` });
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json & Json[], text };
  };

  /** An API token for a new user of that role, with these grants. */
  const tokenFor = async (name: string, role: string, grants: Array<{ things: string[]; actions: string[] }> = []) => {
    const user = await call('/api/users', {
      method: 'POST',
      json: { name, role, password: `${name}-long-password-1` },
    });
    assert.equal(user.status, 201, user.text);
    for (const grant of grants) {
      const made = await call('/api/grants', { method: 'POST', json: { user: name, ...grant } });
      assert.equal(made.status, 201, made.text);
    }
    const token = await call('/api/tokens', { method: 'POST', json: { user: name, name: `${name}'s phone` } });
    assert.equal(token.status, 201, token.text);
    return token.body.token as string;
  };

  const passFor = async (things: string[], actions: string[]) => {
    const now = Date.now();
    const pass = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Valet',
        things,
        actions,
        from: new Date(now - 60_000).toISOString(),
        to: new Date(now + HOUR).toISOString(),
      },
    });
    assert.equal(pass.status, 201, pass.text);
    return pass.body.token as string;
  };

  /** An input the action takes: each required field at its first choice or its least value. */
  const inputFor = (schema: InputSchema | undefined): Json =>
    Object.fromEntries(
      (schema?.required ?? []).map((field) => {
        const spec = schema?.properties?.[field] ?? {};
        return [field, spec.enum?.[0] ?? spec.minimum ?? 0];
      }),
    );

  /**
   * Runs every action the answer lists and checks the hub does as it said: `true` is accepted (202),
   * a reason is a 403 in those words. Answers what it said, for the caller's own checks.
   */
  const answerMatchesHub = async (token: string): Promise<ActionAnswers> => {
    const session = await call('/api/session', { token });
    assert.equal(session.status, 200, session.text);
    const answers = session.body.actions as unknown as ActionAnswers;
    const seen = (await call('/api/things', { token })).body.map((t) => t.id).sort();
    assert.deepEqual(Object.keys(answers).sort(), seen, 'an answer for each thing it sees, and no other');
    for (const [thing, actions] of Object.entries(answers)) {
      const described = (await call(`/api/things/${thing}`)).body.actions as Record<string, { input?: InputSchema }>;
      assert.deepEqual(Object.keys(actions).sort(), Object.keys(described).sort(), `each action of ${thing}`);
      for (const [action, answer] of Object.entries(actions)) {
        const ran = await call(`/api/things/${thing}/actions/${action}`, {
          method: 'POST',
          json: inputFor(described[action].input),
          token,
        });
        if (answer === true) assert.equal(ran.status, 202, `${thing} ${action} was said to be allowed: ${ran.text}`);
        else {
          assert.equal(ran.status, 403, `${thing} ${action} was said to be refused (${answer}): ${ran.text}`);
          assert.equal((ran.body.error as Json).message, answer, 'in the words of the refusal');
        }
      }
    }
    return answers;
  };

  const refusedOf = (answers: ActionAnswers) =>
    Object.entries(answers).flatMap(([thing, actions]) =>
      Object.entries(actions)
        .filter(([, answer]) => answer !== true)
        .map(([action]) => `${thing} ${action}`),
    );

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-session-actions-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    await addFrontDoorAndHallLight(hub);
    await hub.core.upsertThing({
      id: 'coffee-machine',
      householdId: hub.householdId,
      kind: 'device',
      name: 'Coffee machine',
      adapter: 'test',
      properties: vocabularyProperties(['switch.on']),
      actions: vocabularyActions('switch'),
    });
    await hub.core.upsertThing({
      id: 'family-car',
      householdId: hub.householdId,
      kind: 'vehicle',
      name: 'Family car',
      adapter: 'test',
      properties: vocabularyProperties(['lock.locked', 'charging.limit']),
      actions: {
        ...vocabularyActions('vehicle'),
        ...vocabularyActions('lock'),
        ...vocabularyActions('charging', ['set_limit']),
      },
    });
  });

  after(async () => {
    await hub.stop();
  });

  it('an owner and an adult may run every action of every thing', async () => {
    assert.deepEqual(refusedOf(await answerMatchesHub(hub.ownerToken)), []);
    assert.deepEqual(refusedOf(await answerMatchesHub(await tokenFor('sam', 'adult'))), []);
  });

  it('a child without grants may run nothing, and is told why for each action', async () => {
    const answers = await answerMatchesHub(await tokenFor('robin', 'child'));
    assert.equal(answers['hall-light'].turn_on, 'no grant lets robin run turn_on on hall-light');
    assert.equal(answers['front-door'].unlock, 'unlock on front-door needs a grant that names it (child accounts)');
    assert.ok(Object.values(answers).every((actions) => Object.values(actions).every((a) => a !== true)));
  });

  it('a child granted the hall light and the front door with `*` may use the light and lock the door, not unlock it or the car', async () => {
    const token = await tokenFor('kid', 'child', [{ things: ['hall-light', 'front-door'], actions: ['*'] }]);
    const answers = await answerMatchesHub(token);
    assert.equal(answers['hall-light'].turn_on, true);
    assert.equal(answers['front-door'].lock, true);
    assert.match(String(answers['front-door'].unlock), /^unlock on front-door needs a grant that names it/);
    assert.ok(
      Object.values(answers['family-car']).every((a) => a !== true),
      'nothing on the car',
    );
    assert.ok(
      Object.values(answers['coffee-machine']).every((a) => a !== true),
      'nothing ungranted',
    );
  });

  it('a guest pass for the car with actions `*` sees only the car and may run none of its actions', async () => {
    const answers = await answerMatchesHub(await passFor(['family-car'], ['*']));
    assert.deepEqual(Object.keys(answers), ['family-car']);
    for (const [action, answer] of Object.entries(answers['family-car'])) {
      assert.equal(
        answer,
        `${action} on family-car needs a guest pass that names it: "*" never covers unlocking or a car`,
      );
    }
  });

  it('a guest pass that names the car’s horn may sound it, and nothing else', async () => {
    const answers = await answerMatchesHub(await passFor(['family-car'], ['honk']));
    assert.equal(answers['family-car'].honk, true);
    assert.equal(answers['family-car'].flash, 'this guest pass does not include flash on family-car');
  });
});
