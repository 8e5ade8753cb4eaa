import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HubEvent, StateChanged } from '../src/core/events.ts';
import type { Thing } from '../src/model/thing.ts';
import { makeCommand, type StoreBackend, storeBackends, storeOf, T0, unique } from './helpers/stores.ts';

/**
 * Strings SQLite keeps and PostgreSQL refuses unless the store escapes them: NUL (in TEXT and as
 * JSON's \u0000), lone surrogates (JSON's \ud800), and the private-use character the PostgreSQL
 * store escapes with, alone and next to what its escapes look like.
 */
const AWKWARD = [
  'nul\u0000inside',
  '\u0000',
  'lone \ud800 high',
  'lone \udfff low',
  'pair 🚗 kept',
  'private \ue000 use',
  '\ue0000 \ue0001 \ue000j \ue000u0041 \ue000Jd800',
  'literal \\u0000 and \\\\u0000 and \\ud800',
  '\\\\\u0000\\',
];

/**
 * The ones without lone surrogates: SQLite's TEXT columns are UTF-8, so a lone surrogate in a
 * column that is not JSON reads back as U+FFFD there. JSON values keep them (escaped) in both.
 */
const TEXT_SAFE = AWKWARD.filter((text) => !text.includes('lone'));

function thing(householdId: string, id: string, name: string): Thing {
  return {
    id,
    householdId,
    kind: 'device',
    name,
    room: name,
    adapter: 'mqtt',
    properties: { [`p ${name}`]: { schema: { type: 'string' } } },
    actions: {},
    meta: { topic: name },
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  } as Thing;
}

function suite(backend: StoreBackend): void {
  describe(`${backend.name} store keeps awkward strings`, { skip: backend.skip }, () => {
    const store = storeOf(backend);

    it('in things, history, latest values and downsampled history', async () => {
      const household = unique('hh');
      const things = AWKWARD.map((text, n) => thing(household, `t${n} ${text}`, text));
      for (const t of things.slice(0, 3)) await store().saveThing(t);
      await store().saveThings?.(things.slice(3));
      const byId = (a: Thing, b: Thing) => (a.id < b.id ? -1 : 1);
      assert.deepEqual((await store().listThings(household)).sort(byId), [...things].sort(byId));

      const changes: StateChanged[] = AWKWARD.map((text, n) => ({
        type: 'state',
        id: unique(`sc${n}`),
        householdId: household,
        ts: T0 + n,
        cause: TEXT_SAFE[n % TEXT_SAFE.length],
        thing: `dev ${n}`,
        property: 'p',
        from: n === 0 ? undefined : { [text]: AWKWARD[n - 1] },
        to: { [text]: text, list: [text] },
        source: TEXT_SAFE[n % TEXT_SAFE.length],
      }));
      await store().appendHistory(changes);
      for (const c of changes) {
        const points = await store().queryHistory({ householdId: household, thing: c.thing, property: 'p' });
        assert.deepEqual(
          points.map((p) => [p.value, p.cause]),
          [[c.to, c.cause]],
        );
      }
      const latest = await store().latestValues(household);
      assert.deepEqual(
        latest.map((v) => v.value).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
        changes.map((c) => c.to).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)),
      );

      // One property whose values are all the awkward strings: value buckets read them as text.
      await store().appendHistory(
        AWKWARD.map((text, n) => ({ ...changes[n], id: unique('sv'), thing: 'one', property: 'text', to: text })),
      );
      const buckets = await store().bucketHistory({
        householdId: household,
        thing: 'one',
        property: 'text',
        buckets: 3,
      });
      assert.equal(buckets.kind, 'value');
      assert.equal(buckets.count, AWKWARD.length);
      assert.deepEqual(buckets.last?.value, AWKWARD.at(-1));
      if (buckets.kind === 'value') {
        assert.deepEqual(buckets.buckets[0].first, AWKWARD[0]);
        assert.deepEqual(buckets.buckets.at(-1)?.last, AWKWARD.at(-1));
      }
    });

    it('in events, commands, rules, traces, timers, tokens, accounts, sessions and audit', async () => {
      const household = unique('hh');
      const events = AWKWARD.map(
        (text, n) =>
          ({
            type: 'automation',
            id: unique(`ev${n}`),
            householdId: household,
            ts: T0 + n,
            thing: text,
            data: { [text]: text },
          }) as unknown as HubEvent,
      );
      await store().appendEvents(events);
      assert.deepEqual(await store().listEvents({ householdId: household }), events);
      assert.deepEqual(await store().listEvents({ householdId: household, thing: AWKWARD[0] }), [events[0]]);

      for (const [n, text] of TEXT_SAFE.entries()) {
        const command = makeCommand(household, { id: `cmd ${text}`, thing: text, input: { text }, cause: text });
        await store().saveCommand(command);
        assert.deepEqual(await store().getCommand(household, command.id), command, `command ${n}`);

        const body = { name: text, [text]: [text] };
        await store().saveRule({ householdId: household, id: `rule ${text}`, body, createdAt: T0, updatedAt: T0 });
        const trace = { id: unique('tr'), householdId: household, rule: text, startedAt: T0, status: text, body };
        await store().saveTrace(trace);
        assert.deepEqual(await store().listTraces({ householdId: household, rule: text }), [trace]);

        const timer = { id: unique('tm'), householdId: household, owner: `owner ${text}`, due: T0, payload: body };
        await store().saveTimer(timer);
        assert.deepEqual(await store().listTimers(timer.owner), [timer]);

        const account = {
          kind: 'guest_pass' as const,
          householdId: household,
          id: `pass ${text}`,
          body,
          createdAt: T0 + n,
        };
        await store().saveAccountRecord(account);
        const session = { householdId: household, id: `s ${text}`, charger: text, body, updatedAt: T0 + n };
        await store().saveOpenChargingSession(session);
        await store().appendAudit({
          id: unique('au'),
          householdId: household,
          ts: T0 + n,
          actor: { kind: 'user', id: text, name: text },
          via: text,
          thing: text,
          action: text,
          result: 'accepted',
          reason: text,
          commandId: text,
        });
        await store().saveToken({
          id: unique('tok'),
          householdId: household,
          userId: text,
          name: text,
          hash: `hash ${text}`,
          role: 'owner',
          scopes: [text],
          createdAt: T0 + n,
          expiresAt: null,
          revokedAt: null,
        });
        assert.equal((await store().findTokenByHash(`hash ${text}`))?.name, text);
      }
      assert.deepEqual((await store().listRules(household)).map((r) => r.body.name).sort(), [...TEXT_SAFE].sort());
      assert.deepEqual(
        (await store().listAccountRecords('guest_pass', household)).map((a) => a.body.name),
        TEXT_SAFE,
      );
      assert.deepEqual(
        (await store().listOpenChargingSessions(household)).map((s) => s.charger),
        TEXT_SAFE,
      );
      assert.deepEqual(
        (await store().listAudit({ householdId: household })).map((a) => [a.actor.name, a.reason]),
        TEXT_SAFE.map((text) => [text, text]).reverse(),
      );
      assert.deepEqual(
        (await store().listTokens(household)).map((t) => t.scopes),
        TEXT_SAFE.map((text) => [text]),
      );
    });
  });
}

for (const backend of await storeBackends('triad-store-strings-')) suite(backend);
