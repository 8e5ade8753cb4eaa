import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import type { Command, CommandUpdated, HubEvent, StateChanged } from '../src/core/events.ts';
import type { Thing } from '../src/model/thing.ts';
import type { AuditRecord, Store, StoredTimer, TokenRecord } from '../src/store/store.ts';
import { makeCommand, type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

function makeThing(householdId: string, id: string, name = 'Hall light'): Thing {
  return {
    id,
    householdId,
    kind: 'device',
    name,
    room: 'hall',
    adapter: 'mqtt',
    properties: { 'light.on': { schema: { type: 'boolean' } } },
    actions: { turn_on: { capability: 'light' } },
    meta: { topic: 'zigbee2mqtt/hall' },
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  } as Thing;
}

function change(householdId: string, n: number, fields: Partial<StateChanged> = {}): StateChanged {
  return {
    type: 'state',
    id: unique(`sc${String(n).padStart(6, '0')}`),
    householdId,
    ts: T0 + n * 1000,
    cause: `report-${n}`,
    thing: 'car',
    property: 'battery.level',
    from: n - 1,
    to: n,
    source: 'viss',
    ...fields,
  };
}

function makeToken(householdId: string, fields: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: unique('tok'),
    householdId,
    userId: 'owner',
    name: 'phone',
    hash: randomBytes(32).toString('hex'),
    role: 'owner',
    scopes: ['things:read', 'things:write'],
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    ...fields,
  };
}

/** Strings that break naive SQL or JSON handling; none contains NUL, which PostgreSQL cannot store. */
const HOSTILE = [
  'O\'Brien\'s "garage"',
  "'; DROP TABLE things; --",
  'back\\slash \\u0000 not-a-nul',
  'Zürich 🚗 车库 مرحبا',
  '{"looks":"like json"}',
  '$1 ? ?? %s',
  'line\nbreak\ttab',
];

/** The whole behaviour suite, written once and run against each backend. */
function storeSuite(backend: StoreBackend): void {
  describe(`${backend.name} store`, { skip: backend.skip }, () => {
    const openStore = storeOf(backend);
    let store: Store;
    beforeEach(() => {
      store = openStore();
    });

    it('migrates again without harm and a reopened store keeps its data', async () => {
      const household = unique('hh');
      await store.saveThing(makeThing(household, 'lamp'));
      await store.migrate();
      await store.migrate();

      const reopened = await backend.open();
      try {
        await reopened.migrate();
        assert.deepEqual(
          (await reopened.listThings(household)).map((t) => t.id),
          ['lamp'],
        );
      } finally {
        await reopened.close();
      }
    });

    it('saves, updates and lists households', async () => {
      const id = unique('hh');
      await store.saveHousehold({ id, name: 'Home', settings: { home: { lat: 52.5, lon: 13.4 } }, createdAt: T0 });
      await store.saveHousehold({ id, name: 'Our home', settings: { presenceDelayS: 60 }, createdAt: T0 });

      assert.deepEqual(await store.getHousehold(id), {
        id,
        name: 'Our home',
        settings: { presenceDelayS: 60 },
        createdAt: T0,
      });
      assert.equal((await store.listHouseholds()).filter((h) => h.id === id).length, 1);
      assert.equal(await store.getHousehold(unique('missing')), null);
    });

    it('keeps each household’s things apart, even with the same id', async () => {
      const a = unique('hh-a');
      const b = unique('hh-b');
      await store.saveThing(makeThing(a, 'front-door', 'A front door'));
      await store.saveThing(makeThing(b, 'front-door', 'B front door'));
      await store.saveThing(makeThing(a, 'front-door', 'A front door, renamed'));

      const ofA = await store.listThings(a);
      assert.deepEqual(ofA, [makeThing(a, 'front-door', 'A front door, renamed')]);
      assert.deepEqual(
        (await store.listThings(b)).map((t) => t.name),
        ['B front door'],
      );

      await store.deleteThing(b, 'front-door');
      assert.deepEqual(await store.listThings(b), []);
      assert.equal((await store.listThings(a)).length, 1, "deleting B's thing leaves A's");

      const all = await store.listThings();
      assert.ok(all.some((t) => t.householdId === a && t.id === 'front-door'));
      assert.ok(!all.some((t) => t.householdId === b));
    });

    it('writes a history batch and answers by property and time range', async () => {
      const household = unique('hh');
      const levels = [1, 2, 3, 4, 5].map((n) => change(household, n));
      const range = change(household, 3, { property: 'battery.range', to: 120_000, from: 118_000 });
      await store.appendHistory([...levels, range]);

      const byProperty = await store.queryHistory({ householdId: household, thing: 'car', property: 'battery.level' });
      assert.deepEqual(
        byProperty.map((p) => p.value),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(byProperty[0], {
        id: levels[0].id,
        property: 'battery.level',
        ts: T0 + 1000,
        value: 1,
        cause: 'report-1',
      });

      const window = await store.queryHistory({
        householdId: household,
        thing: 'car',
        property: 'battery.level',
        from: T0 + 2000,
        to: T0 + 4000,
      });
      assert.deepEqual(
        window.map((p) => p.value),
        [2, 3, 4],
        'from and to are inclusive',
      );

      const everyProperty = await store.queryHistory({ householdId: household, thing: 'car', limit: 4 });
      assert.equal(everyProperty.length, 4);
      assert.ok(everyProperty.some((p) => p.property === 'battery.range'));

      const otherHousehold = await store.queryHistory({ householdId: unique('hh'), thing: 'car' });
      assert.deepEqual(otherHousehold, []);
    });

    it('moves latest values, the last change in a batch winning', async () => {
      const household = unique('hh');
      await store.appendHistory([change(household, 1), change(household, 2)]);
      await store.appendHistory([
        change(household, 3, { to: { soc: 30 } }),
        change(household, 4, { thing: 'phone', property: 'presence.home', to: true }),
        change(household, 5, { to: { soc: 31 } }),
      ]);

      assert.deepEqual(await store.latestValues(household), [
        { householdId: household, thing: 'car', property: 'battery.level', value: { soc: 31 }, ts: T0 + 5000 },
        { householdId: household, thing: 'phone', property: 'presence.home', value: true, ts: T0 + 4000 },
      ]);
      assert.equal((await store.latestValues()).filter((v) => v.householdId === household).length, 2);

      await store.deleteThing(household, 'phone');
      assert.deepEqual(
        (await store.latestValues(household)).map((v) => v.thing),
        ['car'],
        "a deleted thing's latest values go with it",
      );
    });

    it('keeps null and absent values apart', async () => {
      const household = unique('hh');
      const first = change(household, 1, { from: undefined, to: null, cause: null });
      await store.appendHistory([first]);

      const [event] = await store.listEvents({ householdId: household });
      assert.deepEqual(event, { ...first, from: undefined });
      assert.equal((await store.latestValues(household))[0].value, null);
    });

    it('writing the same batch twice stores it once', async () => {
      const household = unique('hh');
      const batch = [change(household, 1), change(household, 2)];
      await store.appendHistory(batch);
      await store.appendHistory(batch);
      const events: HubEvent[] = [{ type: 'automation.ran', id: unique('ev'), householdId: household, ts: T0 }];
      await store.appendEvents(events);
      await store.appendEvents(events);

      assert.equal((await store.listEvents({ householdId: household })).length, 3);
    });

    it("forgets one thing's history, latest values and events, keeping the record of its removal and everyone else's", async () => {
      const household = unique('hh');
      const other = unique('hh');
      const moves = (h: string) => [1, 2, 3].map((n) => change(h, n, { thing: 'alex', property: 'location.latitude' }));
      await store.appendHistory([...moves(household), ...moves(other), change(household, 4, { thing: 'sam' })]);
      const removed: HubEvent = {
        type: 'thing.removed',
        id: unique('ev'),
        householdId: household,
        ts: T0 + 9000,
        thing: 'alex',
      } as HubEvent;
      await store.appendEvents([
        { type: 'availability', id: unique('ev'), householdId: household, ts: T0 + 500, thing: 'alex', online: true },
        { type: 'availability', id: unique('ev'), householdId: household, ts: T0 + 600, thing: 'sam', online: true },
        removed,
      ]);

      await store.forgetHistory(household, 'alex');

      assert.deepEqual(await store.queryHistory({ householdId: household, thing: 'alex' }), []);
      assert.deepEqual(
        (await store.latestValues(household)).map((v) => v.thing),
        ['sam'],
      );
      assert.deepEqual(
        (await store.listEvents({ householdId: household })).map((e) => `${e.type} ${'thing' in e ? e.thing : ''}`),
        ['availability sam', 'state sam', 'thing.removed alex'],
      );
      // The same id in another household is another person.
      assert.equal((await store.queryHistory({ householdId: other, thing: 'alex' })).length, 3);
    });

    it('merges state changes and events oldest first, with filters', async () => {
      const household = unique('hh');
      const command = makeCommand(household, { thing: 'garage-door', createdAt: T0 + 2500 });
      const events: HubEvent[] = [
        { type: 'command', id: unique('ev'), householdId: household, ts: T0 + 2500, cause: 'rule', command },
        { type: 'automation.ran', id: unique('ev'), householdId: household, ts: T0 + 500, data: { rule: 'arrive' } },
        { type: 'availability', id: unique('ev'), householdId: household, ts: T0 + 4500, thing: 'car', online: false },
      ];
      await store.appendEvents(events);
      await store.appendHistory([1, 2, 3, 4].map((n) => change(household, n)));

      const all = await store.listEvents({ householdId: household });
      assert.deepEqual(
        all.map((e) => e.ts - T0),
        [500, 1000, 2000, 2500, 3000, 4000, 4500],
      );
      assert.deepEqual(all[3], events[0], 'an event comes back exactly as written');

      const since = await store.listEvents({ householdId: household, since: T0 + 2500, until: T0 + 4000 });
      assert.deepEqual(
        since.map((e) => e.type),
        ['command', 'state', 'state'],
      );

      const onlyStates = await store.listEvents({ householdId: household, types: ['state'] });
      assert.equal(onlyStates.length, 4);
      const notStates = await store.listEvents({ householdId: household, types: ['command', 'automation.ran'] });
      assert.deepEqual(
        notStates.map((e) => e.type),
        ['automation.ran', 'command'],
      );

      const ofCar = await store.listEvents({ householdId: household, thing: 'car' });
      assert.deepEqual(
        ofCar.map((e) => e.type),
        ['state', 'state', 'state', 'state', 'availability'],
      );
      const ofGarage = await store.listEvents({ householdId: household, thing: 'garage-door' });
      assert.deepEqual(
        ofGarage.map((e) => e.id),
        [events[0].id],
        'a command event belongs to the thing it commands',
      );

      const firstTwo = await store.listEvents({ householdId: household, limit: 2 });
      assert.deepEqual(
        firstTwo.map((e) => e.ts - T0),
        [500, 1000],
      );
      assert.deepEqual(await store.listEvents({ householdId: unique('hh') }), []);
      // The newest instead: the last ones, newest first, filters and all.
      const lastTwo = await store.listEvents({ householdId: household, limit: 2, newest: true });
      assert.deepEqual(
        lastTwo.map((e) => e.ts - T0),
        [4500, 4000],
      );
      const lastOfCar = await store.listEvents({
        householdId: household,
        thing: 'car',
        types: ['state'],
        limit: 3,
        newest: true,
      });
      assert.deepEqual(
        lastOfCar.map((e) => e.ts - T0),
        [4000, 3000, 2000],
      );
      await assert.rejects(
        store.listEvents({ householdId: household, newest: true, after: { ts: T0, id: 'x' } }),
        /after or newest/,
      );

      // Paged by a cursor, two at a time, with two more in one millisecond to split a page inside
      // it: every event once, in order.
      const sameMs = [unique('ev'), unique('ev')].map(
        (id): HubEvent => ({ type: 'automation.ran', id, householdId: household, ts: T0 + 2000, data: { rule: id } }),
      );
      await store.appendEvents(sameMs);
      const whole = await store.listEvents({ householdId: household });
      assert.equal(whole.length, 9);
      const paged: HubEvent[] = [];
      let after: { ts: number; id: string } | undefined;
      for (let page = 0; page < 10; page++) {
        const got = await store.listEvents({ householdId: household, limit: 2, after });
        paged.push(...got);
        if (got.length < 2) break;
        const last = got[got.length - 1];
        after = { ts: last.ts, id: last.id };
      }
      assert.deepEqual(
        paged.map((e) => e.id),
        whole.map((e) => e.id),
      );
      // With filters too: the cursor narrows what the filters chose.
      const states = await store.listEvents({ householdId: household, types: ['state'], thing: 'car' });
      const pagedStates = await store.listEvents({
        householdId: household,
        types: ['state'],
        thing: 'car',
        until: T0 + 3000,
        after: { ts: states[0].ts, id: states[0].id },
      });
      assert.deepEqual(
        pagedStates.map((e) => e.ts - T0),
        [2000, 3000],
      );
      const late = await store.listEvents({
        householdId: household,
        since: T0 + 4000,
        after: { ts: T0 + 500, id: '' },
      });
      assert.deepEqual(
        late.map((e) => e.ts - T0),
        [4000, 4500],
        'a cursor before since does not reach back past since',
      );
    });

    it('reads a command’s events from its log, in time order with the rest, filtered and paged', async () => {
      const household = unique('hh');
      const base = makeCommand(household, { thing: 'garage-door', createdAt: T0 + 1000, expiresAt: T0 + 60_000 });
      const step = (status: Command['status'], at: number, cause: string | null, error: string | null = null) => ({
        id: unique(`evt${at}`),
        status,
        ts: T0 + at,
        cause,
        error,
      });
      const log = [step('pending', 1000, 'trg_1'), step('sent', 1500, 'trg_1'), step('failed', 3500, null, 'offline')];
      // Saved as the command service does: each status with the log so far, the last one winning.
      await store.saveCommand({ ...base, log: log.slice(0, 1) });
      await store.saveCommands([{ ...base, status: 'failed', error: 'offline', updatedAt: T0 + 3500, log }]);
      const ran: HubEvent = { type: 'automation.ran', id: unique('ev'), householdId: household, ts: T0 + 2000 };
      await store.appendEvents([ran]);
      await store.appendHistory([change(household, 3)]);

      const all = await store.listEvents({ householdId: household });
      assert.deepEqual(
        all.map((e) => [e.ts - T0, e.type]),
        [
          [1000, 'command'],
          [1500, 'command'],
          [2000, 'automation.ran'],
          [3000, 'state'],
          [3500, 'command'],
        ],
      );
      const sent = all[1] as CommandUpdated;
      assert.equal('log' in sent.command, false, 'the log stays in the store');
      assert.deepEqual(sent, {
        type: 'command',
        id: log[1].id,
        householdId: household,
        ts: T0 + 1500,
        cause: 'trg_1',
        command: { ...base, status: 'sent', error: null, updatedAt: T0 + 1500 },
      });
      assert.equal((all[4] as CommandUpdated).command.error, 'offline');
      assert.deepEqual((await store.getCommand(household, base.id))?.status, 'failed');

      const window = await store.listEvents({ householdId: household, since: T0 + 1200, until: T0 + 3000 });
      assert.deepEqual(
        window.map((e) => e.ts - T0),
        [1500, 2000, 3000],
      );
      const onlyCommands = await store.listEvents({ householdId: household, types: ['command'] });
      assert.deepEqual(
        onlyCommands.map((e) => e.id),
        log.map((s) => s.id),
      );
      assert.deepEqual(await store.listEvents({ householdId: household, types: ['command'], thing: 'car' }), []);
      assert.equal((await store.listEvents({ householdId: household, thing: 'garage-door' })).length, 3);
      assert.deepEqual(await store.listEvents({ householdId: unique('hh'), types: ['command'] }), []);

      // The replay reads the event log a page at a time: command steps are paged in order too.
      const first = await store.pageEvents({ householdId: household, from: T0, to: T0 + 5000, limit: 2 });
      assert.deepEqual(
        first.map((e) => e.id),
        [log[0].id, log[1].id],
      );
      const last = first[first.length - 1];
      const rest = await store.pageEvents({
        householdId: household,
        from: T0,
        to: T0 + 5000,
        after: { ts: last.ts, id: last.id },
        limit: 10,
      });
      assert.deepEqual(
        rest.map((e) => e.id),
        [ran.id, log[2].id],
      );
    });

    it('refuses state changes in the event log, writing nothing', async () => {
      const household = unique('hh');
      const other: HubEvent = { type: 'automation.ran', id: unique('ev'), householdId: household, ts: T0 };
      await assert.rejects(store.appendEvents([other, change(household, 1)]), /appendHistory/);
      assert.deepEqual(await store.listEvents({ householdId: household }), []);
    });

    it('upserts commands through their lifecycle and lists them by status', async () => {
      const household = unique('hh');
      const first = makeCommand(household);
      const second = makeCommand(household, { createdAt: T0 + 1 });
      await store.saveCommand(first);
      await store.saveCommand(second);
      await store.saveCommand({ ...first, status: 'sent', updatedAt: T0 + 100 });
      await store.saveCommand({ ...second, status: 'failed', error: 'device offline', updatedAt: T0 + 200 });

      assert.deepEqual(await store.getCommand(household, first.id), { ...first, status: 'sent', updatedAt: T0 + 100 });
      assert.equal(await store.getCommand(unique('hh'), first.id), null, 'another household cannot read it');

      const open = (await store.listCommandsByStatus(['pending', 'sent'])).filter((c) => c.householdId === household);
      assert.deepEqual(
        open.map((c) => c.id),
        [first.id],
      );
      const failed = (await store.listCommandsByStatus(['failed'])).filter((c) => c.householdId === household);
      assert.equal(failed[0].error, 'device offline');
      assert.deepEqual(await store.listCommandsByStatus([]), []);
    });

    it('finds tokens by hash and persists revocation', async () => {
      const household = unique('hh');
      const token = makeToken(household, { expiresAt: T0 + 86_400_000 });
      await store.saveToken(token);
      await store.saveToken(makeToken(household, { userId: null, name: 'charger', role: 'device', createdAt: T0 + 1 }));

      assert.deepEqual(await store.findTokenByHash(token.hash), token);
      assert.equal(await store.findTokenByHash(randomBytes(32).toString('hex')), null);

      await store.saveToken({ ...token, revokedAt: T0 + 5000 });
      const reopened = await backend.open();
      try {
        assert.equal((await reopened.findTokenByHash(token.hash))?.revokedAt, T0 + 5000);
      } finally {
        await reopened.close();
      }
      assert.deepEqual(
        (await store.listTokens(household)).map((t) => t.name),
        ['phone', 'charger'],
      );
      assert.deepEqual(await store.listTokens(unique('hh')), []);
    });

    it('keeps account records per kind and household, replacing on save and gone on delete', async () => {
      const household = unique('hh');
      const other = unique('hh');
      const user = { kind: 'user' as const, householdId: household, id: 'usr_1', body: { name: 'Ada' }, createdAt: T0 };
      await store.saveAccountRecord(user);
      await store.saveAccountRecord({ ...user, id: 'usr_2', body: { name: 'Bo' }, createdAt: T0 + 1 });
      await store.saveAccountRecord({ ...user, householdId: other, body: { name: 'Other Ada' } });
      await store.saveAccountRecord({ kind: 'grant', householdId: household, id: 'usr_1', body: {}, createdAt: T0 });
      await store.saveAccountRecord({ ...user, body: { name: 'Ada L.' } });

      const users = await store.listAccountRecords('user', household);
      assert.deepEqual(
        users.map((u) => [u.id, u.body.name]),
        [
          ['usr_1', 'Ada L.'],
          ['usr_2', 'Bo'],
        ],
      );
      assert.equal((await store.listAccountRecords('user')).filter((u) => u.id === 'usr_1').length >= 2, true);
      await store.deleteAccountRecord('user', household, 'usr_1');
      assert.deepEqual(
        (await store.listAccountRecords('user', household)).map((u) => u.id),
        ['usr_2'],
      );
      assert.equal((await store.listAccountRecords('user', other)).length, 1, 'the other household keeps its user');
      assert.equal((await store.listAccountRecords('grant', household)).length, 1, 'other kinds are untouched');
    });

    it('keeps the audit trail per household, newest first, within a time range', async () => {
      const household = unique('hh');
      const line = (n: number, fields: Partial<AuditRecord> = {}): AuditRecord => ({
        id: unique(`aud${n}`),
        householdId: household,
        ts: T0 + n * 1000,
        actor: { kind: 'user', id: 'usr_1', name: 'Ada' },
        via: 'http',
        thing: 'front_door',
        action: 'unlock',
        result: 'denied',
        reason: 'children may not unlock',
        commandId: null,
        ...fields,
      });
      const lines = [line(1), line(2, { result: 'accepted', reason: null, commandId: 'cmd_1' }), line(3)];
      for (const l of lines) await store.appendAudit(l);
      await store.appendAudit(line(4, { householdId: unique('hh') }));
      await store.appendAudit(lines[0]);

      assert.deepEqual(await store.listAudit({ householdId: household }), [...lines].reverse());
      assert.deepEqual(
        (await store.listAudit({ householdId: household, since: T0 + 2000, until: T0 + 2000 })).map((l) => l.commandId),
        ['cmd_1'],
      );
      assert.equal((await store.listAudit({ householdId: household, limit: 1 }))[0].id, lines[2].id);
    });

    it('keeps timers by owner, soonest first, until deleted', async () => {
      const household = unique('hh');
      const owner = unique('automation');
      const later: StoredTimer = {
        id: unique('t'),
        householdId: household,
        owner,
        due: T0 + 60_000,
        payload: { rule: 'a' },
      };
      const sooner: StoredTimer = {
        id: unique('t'),
        householdId: household,
        owner,
        due: T0 + 5_000,
        payload: { step: 2 },
      };
      const foreign: StoredTimer = {
        id: unique('t'),
        householdId: household,
        owner: unique('commands'),
        due: T0,
        payload: {},
      };
      for (const timer of [later, sooner, foreign]) await store.saveTimer(timer);

      assert.deepEqual(await store.listTimers(owner), [sooner, later]);
      await store.saveTimer({ ...later, due: T0 + 1000 });
      assert.deepEqual(
        (await store.listTimers(owner)).map((t) => t.id),
        [later.id, sooner.id],
        'saving again moves the timer',
      );

      await store.deleteTimer(sooner.id);
      assert.deepEqual(
        (await store.listTimers(owner)).map((t) => t.id),
        [later.id],
      );
    });

    it('writes a batch whole or not at all', async () => {
      const household = unique('hh');
      await store.appendHistory([change(household, 0, { to: 'before' })]);

      // An adapter bug that lets a change through without its thing: the last of 6,000 rows, so
      // thousands of good rows were already written when the database refuses it.
      const batch = Array.from({ length: 6000 }, (_, n) => change(household, n + 1));
      batch[batch.length - 1] = change(household, 6000, { thing: undefined as unknown as string });
      await assert.rejects(store.appendHistory(batch));

      assert.equal((await store.queryHistory({ householdId: household, thing: 'car' })).length, 1);
      assert.deepEqual(
        (await store.latestValues(household)).map((v) => v.value),
        ['before'],
      );

      const events: HubEvent[] = [
        { type: 'automation.ran', id: unique('ev'), householdId: household, ts: T0 },
        { type: 'automation.ran', id: unique('ev'), householdId: undefined as unknown as string, ts: T0 },
      ];
      await assert.rejects(store.appendEvents(events));
      assert.deepEqual(await store.listEvents({ householdId: household, types: ['automation.ran'] }), []);
    });

    it('round-trips hostile strings unchanged', async () => {
      const household = `hh ${HOSTILE[1]} ${randomBytes(4).toString('hex')}`;
      for (const [n, text] of HOSTILE.entries()) {
        await store.saveThing(makeThing(household, `thing-${n}`, text));
      }
      assert.deepEqual(
        (await store.listThings(household)).map((t) => t.name),
        HOSTILE,
      );

      const changes = HOSTILE.map((text, n) =>
        change(household, n, { thing: text, property: 'x.y', to: text, from: { text } }),
      );
      await store.appendHistory(changes);
      for (const [n, text] of HOSTILE.entries()) {
        const [point] = await store.queryHistory({ householdId: household, thing: text, property: 'x.y' });
        assert.equal(point.value, text);
        assert.equal(point.id, changes[n].id);
      }
      const events = await store.listEvents({ householdId: household, thing: HOSTILE[0] });
      assert.deepEqual(events, [changes[0]]);

      const token = makeToken(household, { name: HOSTILE[3], scopes: HOSTILE });
      await store.saveToken(token);
      assert.deepEqual(await store.findTokenByHash(token.hash), token);
      assert.ok((await store.listThings(household)).length > 0, 'the tables are still there');
    });
  });
}

const backends = await storeBackends('triad-store-');
for (const backend of backends) storeSuite(backend);
