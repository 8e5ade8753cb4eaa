import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService, SITE_THING } from '../src/energy/service.ts';
import { usableTariff } from '../src/energy/tariff/tariff.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * A tariff stored by an earlier version, before a check it fails existed (a time-of-use rule to
 * 24:30, a price of 1e308): the hub starts on what it can still use, not without any tariff.
 */
describe('a stored tariff this version partly refuses', () => {
  const hubs: Hub[] = [];
  after(async () => {
    for (const hub of hubs) await hub.stop().catch(() => {});
  });

  async function start(dataDir: string): Promise<Hub> {
    const hub = new Hub({
      dataDir,
      log: createLogger({ level: 'silent' }),
      http: { host: '127.0.0.1', port: 0 },
      mqtt: { host: '127.0.0.1', port: 0 },
    }).use(new EnergyService({ mqttChargers: false }));
    hubs.push(hub);
    await hub.start();
    return hub;
  }

  const call = async (hub: Hub, method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${hub.ownerToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(hub.httpUrl + path, { method, headers, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('keeps the fixed price, feed-in, time zone and good rules, dropping the rule it refuses', async () => {
    const dataDir = await tempDir();
    const first = await start(dataDir);
    const tariff = {
      currency: 'EUR',
      fixed: 0.25,
      feedIn: 0.07,
      timeZone: 'Europe/Amsterdam',
      timeOfUse: [
        { from: '00:00', to: '06:00', price: 0.1 },
        { from: '06:00', to: '22:00', price: 0.3 },
      ],
    };
    assert.equal((await call(first, 'PUT', '/api/energy/tariff', tariff)).status, 200);
    await first.stop();
    // As an earlier version could have stored it: its second rule ends at 24:30.
    const db = new Database(join(dataDir, 'triad.db'));
    try {
      const row = db.prepare('SELECT body FROM things WHERE id = ?').get(SITE_THING) as { body: string } | undefined;
      assert.ok(row, 'the site thing is stored');
      const site = JSON.parse(row.body) as { meta: { energy: { tariff: { timeOfUse: Array<{ to: string }> } } } };
      site.meta.energy.tariff.timeOfUse[1].to = '24:30';
      db.prepare('UPDATE things SET body = ? WHERE id = ?').run(JSON.stringify(site), SITE_THING);
    } finally {
      db.close();
    }

    const second = await start(dataDir);
    const answer = await call(second, 'GET', '/api/energy/tariff');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.fixed, 0.25);
    assert.equal(answer.body.feedIn, 0.07);
    assert.equal(answer.body.timeZone, 'Europe/Amsterdam');
    assert.deepEqual(answer.body.timeOfUse, [{ from: '00:00', to: '06:00', price: 0.1 }]);
  });

  it('says what it leaves out of a tariff, part by part', () => {
    const { config, dropped } = usableTariff({
      currency: 'EUR',
      fixed: 1e308,
      feedIn: 0.05,
      timeZone: 'Mars/Olympus',
      timeOfUse: [
        { from: '24:30', to: '06:00', price: 0.1 },
        { from: '06:00', to: '12:00', price: Number.NaN },
        { from: '12:00', to: '24:00', price: 0.2 },
      ],
      series: [{ start: 0, end: 900_000, price: 2e6 }],
    });
    assert.deepEqual(config, {
      currency: 'EUR',
      feedIn: 0.05,
      timeOfUse: [{ from: '12:00', to: '24:00', price: 0.2 }],
    });
    assert.equal(dropped.length, 5, dropped.join('; '));
    assert.match(dropped.join('; '), /fixed price 1e\+308.*Mars\/Olympus.*rule 0.*rule 1.*price series/);
  });
});
