import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { idFromName, slugify } from '../src/model/thing.ts';
import { PeopleService } from '../src/people/index.ts';
import { tempDir } from './helpers/hub-process.ts';

/** A person's id is made once, from the name given when they are added: it should read like it. */

describe('ids made from names', () => {
  it('fold accented letters to their base letter instead of splitting the word', () => {
    assert.equal(idFromName('Zoë 🚗 Ünïcødé', 'person'), 'zoe-unicode');
    assert.equal(idFromName('Bjørn Strauß', 'person'), 'bjorn-strauss');
    assert.equal(idFromName('Ægir Łukasz', 'person'), 'aegir-lukasz');
  });

  it('fall back to the kind for a name with nothing to keep, and step round reserved ids', () => {
    assert.equal(idFromName('🚗', 'person'), 'person');
    assert.equal(idFromName('Алекс', 'person'), 'person');
    const reserved = new Set(['household', 'home']);
    assert.equal(idFromName('household', 'person', reserved), 'household-person');
    assert.equal(idFromName('Alex', 'person', reserved), 'alex');
  });

  it('leave slugify as it was, so ids other parts recompute from names (configured cars) do not move', () => {
    assert.equal(slugify('Bjørn'), 'bj-rn');
    assert.equal(slugify('🚗'), 'thing');
  });
});

describe('adding people over the API', () => {
  let hub: Hub;
  const add = async (name: string) => {
    const res = await fetch(`${hub.httpUrl}/api/people`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  };

  before(async () => {
    hub = new Hub({
      dataDir: await tempDir('triad-person-ids-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock: new VirtualClock(Date.UTC(2026, 2, 2, 7, 0)),
      log: createLogger({ level: 'silent' }),
    }).use(new PeopleService());
    await hub.start();
  });

  after(async () => {
    await hub?.stop();
  });

  it('gives readable ids: folded letters, a fallback for emoji, the kind after a reserved word', async () => {
    assert.equal(await add('Zoë 🚗 Ünïcødé'), 'zoe-unicode');
    assert.equal(await add('🚗'), 'person');
    assert.equal(await add('🚲'), 'person-2');
    assert.equal(await add('household'), 'household-person');
    assert.equal(await add('Home'), 'home-person');
    assert.equal(await add('Zoë 🚗 Ünïcødé'), 'zoe-unicode-2');
  });
});
