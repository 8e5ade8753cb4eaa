import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../src/model/thing.ts';
import { tempDir } from './helpers/hub-process.ts';

type Json = Record<string, unknown>;

/**
 * What ends a credential, and what its holder is told: a password change signs the user out of
 * every other session, and a revoked guest pass or session hears that it was revoked (401), not
 * that its token is unknown. Real sessions and passes on an in-process hub.
 */
describe('security: password changes end sessions, and revoked credentials say so', () => {
  let hub: Hub;
  const hour = 3_600_000;

  const call = async (
    path: string,
    init: RequestInit & { json?: unknown; token?: string | null; session?: Session } = {},
  ) => {
    const headers = new Headers();
    if (init.session) {
      headers.set('cookie', init.session.cookie);
      headers.set('x-csrf-token', init.session.csrf);
    } else if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? hub.ownerToken}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json === undefined ? undefined : JSON.stringify(init.json);
    const res = await fetch(hub.httpUrl + path, { ...init, headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json & Json[], text, headers: res.headers };
  };

  interface Session {
    cookie: string;
    csrf: string;
    id: string;
  }

  const signIn = async (name: string, password: string): Promise<Session> => {
    const answer = await call('/api/session', { method: 'POST', json: { name, password }, token: null });
    assert.equal(answer.status, 200, answer.text);
    const cookie = answer.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    return { cookie, csrf: answer.body.csrfToken as string, id: answer.body.sessionId as string };
  };

  const errorOf = (answer: { body: Json }) => answer.body.error as { code: string; message: string };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-sessions-'),
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
      properties: vocabularyProperties(['light.on']),
      actions: vocabularyActions('light'),
    });
    const alex = await call('/api/users', {
      method: 'POST',
      json: { name: 'Alex', role: 'adult', password: 'Alex-secret-pw-1' },
    });
    assert.equal(alex.status, 201, alex.text);
  });

  after(async () => {
    await hub.stop();
  });

  it("an owner setting someone's password signs that person out of every session", async () => {
    const laptop = await signIn('Alex', 'Alex-secret-pw-1');
    const phone = await signIn('Alex', 'Alex-secret-pw-1');
    const script = await call('/api/tokens', { method: 'POST', json: { user: 'Alex', name: 'script' } });
    assert.equal(script.status, 201, script.text);
    for (const session of [laptop, phone]) assert.equal((await call('/api/things', { session })).status, 200);

    const changed = await call('/api/users/Alex/password', { method: 'PUT', json: { password: 'Alex-new-pw-22' } });
    assert.equal(changed.status, 204, changed.text);

    for (const session of [laptop, phone]) {
      const refused = await call('/api/things', { session });
      assert.equal(refused.status, 401, refused.text);
      assert.equal(errorOf(refused).code, 'unauthorized');
      assert.match(errorOf(refused).message, /session has ended/);
      assert.match(errorOf(refused).message, /sign in again/);
    }
    // An API token is not a sign-in with the password: it is revoked on its own (DELETE /api/tokens/{id}).
    assert.equal((await call('/api/things', { token: script.body.token as string })).status, 200);
    // The new password signs in; the old one no longer does.
    const again = await signIn('Alex', 'Alex-new-pw-22');
    assert.equal((await call('/api/things', { session: again })).status, 200);
    const old = await call('/api/session', {
      method: 'POST',
      json: { name: 'Alex', password: 'Alex-secret-pw-1' },
      token: null,
    });
    assert.equal(old.status, 401, old.text);
  });

  it("a person who is not an owner changes their own password with the current one, and no one else's", async () => {
    const kim = await call('/api/users', {
      method: 'POST',
      json: { name: 'Kim', role: 'child', password: 'Kim-first-pw-1' },
    });
    assert.equal(kim.status, 201, kim.text);
    const kimId = kim.body.id as string;
    const here = await signIn('Kim', 'Kim-first-pw-1');
    const elsewhere = await signIn('Kim', 'Kim-first-pw-1');
    const path = `/api/users/${kimId}/password`;

    // Without the current password, or with a wrong one: nothing changes.
    const missing = await call(path, { method: 'PUT', json: { password: 'Kim-second-pw-2' }, session: here });
    assert.equal(missing.status, 400, missing.text);
    assert.match(errorOf(missing).message, /currentPassword is needed/);
    const wrong = await call(path, {
      method: 'PUT',
      json: { password: 'Kim-second-pw-2', currentPassword: 'not-it' },
      session: here,
    });
    assert.equal(wrong.status, 403, wrong.text);
    assert.match(errorOf(wrong).message, /not your current password/);
    // Someone else's password is the owners' to set, whatever the caller knows.
    const alex = (await call('/api/users')).body.find((u: Json) => u.name === 'Alex') as Json;
    const other = await call(`/api/users/${alex.id}/password`, {
      method: 'PUT',
      json: { password: 'Kim-set-this-3', currentPassword: 'Kim-first-pw-1' },
      session: here,
    });
    assert.equal(other.status, 403, other.text);
    assert.match(errorOf(other).message, /only owners may set another person's password/);
    // Other account routes stay the owners'.
    assert.equal((await call('/api/users', { session: here })).status, 403);
    assert.equal(
      (await call('/api/session', { method: 'POST', json: { name: 'Kim', password: 'Kim-first-pw-1' }, token: null }))
        .status,
      200,
    );

    const changed = await call(path, {
      method: 'PUT',
      json: { password: 'Kim-second-pw-2', currentPassword: 'Kim-first-pw-1' },
      session: here,
    });
    assert.equal(changed.status, 204, changed.text);
    assert.equal((await call('/api/things', { session: here })).status, 200, 'the session that made the change');
    assert.equal((await call('/api/things', { session: elsewhere })).status, 401, 'the others end');
    assert.equal(
      (await call('/api/session', { method: 'POST', json: { name: 'Kim', password: 'Kim-first-pw-1' }, token: null }))
        .status,
      401,
    );
    await signIn('Kim', 'Kim-second-pw-2');
  });

  it('an owner changing their own password keeps the session that changed it and ends the others', async () => {
    const password = (await readFile(join(hub.ownerTokenPath, '..', 'owner.password'), 'utf8')).trim();
    const here = await signIn('owner', password);
    const elsewhere = await signIn('owner', password);
    const me = (await call('/api/session', { session: here })).body.user as Json;

    const changed = await call(`/api/users/${me.id}/password`, {
      method: 'PUT',
      json: { password: 'owner-new-password-1' },
      session: here,
    });
    assert.equal(changed.status, 204, changed.text);

    assert.equal((await call('/api/things', { session: here })).status, 200, 'the session that made the change');
    const refused = await call('/api/things', { session: elsewhere });
    assert.equal(refused.status, 401, refused.text);
    assert.match(errorOf(refused).message, /session has ended/);
    // The first-start owner token is not a session: it keeps working.
    assert.equal((await call('/api/things')).status, 200);
    // Signing out still ends the kept session.
    assert.equal((await call('/api/session', { method: 'DELETE', session: here })).status, 204);
    assert.equal((await call('/api/things', { session: here })).status, 401);
  });

  it('a revoked guest pass is told it was revoked (401), and nothing else', async () => {
    const made = await call('/api/guest-passes', {
      method: 'POST',
      json: {
        name: 'Dog sitter Robin',
        things: ['hall-light'],
        actions: ['turn_on'],
        from: new Date(Date.now() - 60_000).toISOString(),
        to: new Date(Date.now() + hour).toISOString(),
      },
    });
    assert.equal(made.status, 201, made.text);
    const token = made.body.token as string;
    assert.equal((await call('/api/things', { token })).status, 200);
    assert.equal((await call(`/api/guest-passes/${made.body.id}`, { method: 'DELETE' })).status, 204);

    for (const [method, path] of [
      ['GET', '/api/things'],
      ['GET', '/api/things/hall-light'],
      ['POST', '/api/things/hall-light/actions/turn_on'],
    ] as const) {
      const refused = await call(path, { method, token, json: method === 'POST' ? {} : undefined });
      assert.equal(refused.status, 401, `${method} ${path}: ${refused.text}`);
      assert.deepEqual(refused.body, { error: { code: 'unauthorized', message: 'this guest pass was revoked' } });
    }
    // A token nobody knows is still told nothing more than that.
    const unknown = await call('/api/things', { token: `${token.slice(0, -4)}AAAA` });
    assert.equal(unknown.status, 401);
    assert.doesNotMatch(errorOf(unknown).message, /revoked/);
    // And a revoked API token stays an unknown one.
    const plain = await call('/api/tokens', { method: 'POST', json: { user: 'Alex', name: 'old script' } });
    assert.equal((await call(`/api/tokens/${plain.body.id}`, { method: 'DELETE' })).status, 204);
    const revoked = await call('/api/things', { token: plain.body.token as string });
    assert.equal(revoked.status, 401);
    assert.doesNotMatch(errorOf(revoked).message, /pass/);
  });
});
