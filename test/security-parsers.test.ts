import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { AdapterContext } from '../src/adapters/adapter.ts';
import { HomeAssistantDiscovery } from '../src/adapters/mqtt/discovery.ts';
import { LocalBus } from '../src/core/bus.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import type { Thing } from '../src/model/thing.ts';
import { MemoryLink } from './helpers/memory-link.ts';

describe('security: fuzzing the Home Assistant discovery parser', () => {
  it('never fails on hostile configs and states, and a config that is not a JSON object makes no thing', async () => {
    const things = new Map<string, Thing>();
    const lines: LogLine[] = [];
    const ctx: AdapterContext = {
      clock: new VirtualClock(),
      bus: new LocalBus(),
      log: createLogger({ level: 'debug', sink: (line) => lines.push(line) }),
      upsertThing: async (thing) => {
        const saved = { ...thing, createdAt: 'now', updatedAt: 'now' } as Thing;
        things.set(saved.id, saved);
        return saved;
      },
      removeThing: async (_h, id) => {
        things.delete(id);
      },
      getThing: (_h, id) => things.get(id),
      getValue: () => undefined,
      ingest: () => undefined,
      setAvailability: () => undefined,
    };
    const link = new MemoryLink();
    const adapter = new HomeAssistantDiscovery({ link, householdId: 'home' });
    await adapter.start(ctx);

    const level = fc.oneof(
      fc.constantFrom('light', 'switch', 'lock', 'sensor', 'climate', 'cover', 'device'),
      fc.string({ maxLength: 12 }),
    );
    const config = fc.oneof(
      fc.record(
        {
          name: fc.oneof(fc.string(), fc.constant(null)),
          unique_id: fc.string({ maxLength: 20 }),
          state_topic: fc.constantFrom('z/a', 'z/b', '#', ''),
          command_topic: fc.constantFrom('z/a/set', '+', ''),
          value_template: fc.oneof(fc.string({ maxLength: 40 }), fc.constant('{{ value_json.state }}')),
          schema: fc.constantFrom('json', 'basic', 'template', 42),
          device: fc.oneof(fc.anything(), fc.record({ identifiers: fc.array(fc.string()), name: fc.string() })),
          cmps: fc.anything(),
          stat_t: fc.anything(),
        },
        { requiredKeys: [] },
      ),
      fc.anything(),
    );
    await fc.assert(
      fc.asyncProperty(
        level,
        level,
        config,
        fc.oneof(fc.jsonValue(), fc.string()),
        async (component, node, body, state) => {
          const before = things.size;
          const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
          const text = JSON.stringify(body) ?? 'undefined';
          link.deliver(`homeassistant/${component}/${node || 'n'}/config`, Buffer.from(text), { retain: true });
          await adapter.idle();
          link.deliver('z/a', Buffer.from(typeof state === 'string' ? state : JSON.stringify(state)), { retain: true });
          await adapter.idle();
          if (!isObject) assert.equal(things.size, before, `a non-object config made a thing: ${text.slice(0, 100)}`);
          const failures = lines.filter((l) => l.level === 'error');
          assert.deepEqual(failures, [], 'the adapter hit an unexpected error');
        },
      ),
      { numRuns: 400 },
    );
    await adapter.stop();
  });
});
