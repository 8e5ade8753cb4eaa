import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, type HubProcess, startHubProcess } from './helpers/hub-process.ts';

/**
 * Every API input that takes a time takes an ISO 8601 date and time with its zone on a date that
 * exists, and nothing else: Date.parse alone had stored `to: 2027-02-31` as 3 March, read
 * "December 25, 2026" and a zone-less time (in the hub machine's zone) as if they were meant.
 */
describe('API times are strict ISO 8601', () => {
  let hub: HubProcess;
  before(async () => {
    hub = await startHubProcess({ args: ['--mqtt-port', String(await freePort())] });
  });
  after(async () => {
    await hub?.stop();
  });

  const refused = [
    ['an impossible date', '2027-02-31T00:00:00Z'],
    ['a 30 February', '2026-02-30T00:00:00Z'],
    ['a date in words', 'December 25, 2026'],
    ["Date's own text", 'Fri Dec 25 2026'],
    ['a time without its zone (machine-local)', '2026-12-24T10:00'],
    ['a date without a time', '2026-12-24'],
    ['hour 24', '2026-12-24T24:00:00Z'],
  ] as const;

  async function assertRefused(response: Response, field: string, what: string): Promise<void> {
    const body = (await response.json()) as { error?: { code: string; message: string } };
    assert.equal(response.status, 400, `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.error?.code, 'bad_request', what);
    assert.match(
      body.error?.message ?? '',
      new RegExp(`^${field} must be an ISO 8601 time \\(a date and time with its zone, such as `),
      what,
    );
  }

  const passBody = (from: string, to: string) =>
    JSON.stringify({ name: 'dog walker', things: ['household'], actions: ['*'], from, to });

  it('guest passes: from and to', async () => {
    const passesBefore = (await (await hub.api('/api/guest-passes')).json()) as unknown[];
    for (const [what, value] of refused) {
      await assertRefused(
        await hub.api('/api/guest-passes', { method: 'POST', body: passBody('2026-12-24T10:00:00Z', value) }),
        'to',
        `to: ${what}`,
      );
      await assertRefused(
        await hub.api('/api/guest-passes', { method: 'POST', body: passBody(value, '2030-01-01T00:00:00Z') }),
        'from',
        `from: ${what}`,
      );
    }
    const passesAfter = (await (await hub.api('/api/guest-passes')).json()) as unknown[];
    assert.equal(passesAfter.length, passesBefore.length, 'a refused pass is not stored');

    // The README's forms still work, a zone offset included, and the times are kept as meant.
    const made = await hub.api('/api/guest-passes', {
      method: 'POST',
      body: passBody('2026-12-24T10:00:00+01:00', '2030-02-28T23:59:59.5Z'),
    });
    assert.equal(made.status, 201, await made.clone().text());
    const { id } = (await made.json()) as { id: string };
    const stored = (
      (await (await hub.api('/api/guest-passes')).json()) as { id: string; from: string; to: string }[]
    ).find((p) => p.id === id);
    assert.equal(stored?.from, '2026-12-24T09:00:00.000Z');
    assert.equal(stored?.to, '2030-02-28T23:59:59.500Z');
  });

  it('history: from and to', async () => {
    for (const [what, value] of refused) {
      for (const field of ['from', 'to']) {
        const query = `property=presence.anyone_home&${field}=${encodeURIComponent(value)}`;
        await assertRefused(await hub.api(`/api/things/household/history?${query}`), field, `${field}: ${what}`);
      }
    }
    const ok = await hub.api(
      '/api/things/household/history?property=presence.anyone_home&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00%2B02:00',
    );
    assert.equal(ok.status, 200, await ok.text());
  });

  it('events, audit: since and until', async () => {
    for (const path of ['/api/events', '/api/audit']) {
      for (const [what, value] of refused) {
        for (const field of ['since', 'until']) {
          await assertRefused(
            await hub.api(`${path}?${field}=${encodeURIComponent(value)}`),
            field,
            `${path} ${field}: ${what}`,
          );
        }
      }
      const ok = await hub.api(`${path}?since=2026-01-02T00:00:00Z&until=2026-01-03T00:00Z`);
      assert.equal(ok.status, 200, `${path}: ${await ok.text()}`);
    }
  });

  it("tokens' expiresAt and a replay's from and to", async () => {
    const users = (await (await hub.api('/api/users')).json()) as { id: string; name: string }[];
    const owner = users.find((u) => u.name === 'owner');
    assert.ok(owner);
    const tokensBefore = ((await (await hub.api('/api/tokens')).json()) as unknown[]).length;
    for (const [what, value] of refused) {
      await assertRefused(
        await hub.api('/api/tokens', {
          method: 'POST',
          body: JSON.stringify({ user: owner.id, name: 'script', expiresAt: value }),
        }),
        'expiresAt',
        `expiresAt: ${what}`,
      );
      await assertRefused(
        await hub.api('/api/automations/replay', {
          method: 'POST',
          body: JSON.stringify({ rule: 'not looked at', from: value, to: '2026-01-02T00:00:00Z' }),
        }),
        'from',
        `replay from: ${what}`,
      );
    }
    assert.equal(((await (await hub.api('/api/tokens')).json()) as unknown[]).length, tokensBefore);
    const made = await hub.api('/api/tokens', {
      method: 'POST',
      body: JSON.stringify({ user: owner.id, name: 'script', expiresAt: '2031-03-01T00:00:00-05:00' }),
    });
    assert.equal(made.status, 201, await made.text());
  });
});
