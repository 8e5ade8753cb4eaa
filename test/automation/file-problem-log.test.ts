import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createLogger, type LogLine } from '../../src/core/log.ts';
import { vocabularyActions, vocabularyProperties } from '../../src/model/thing.ts';
import { HOME, HUMID_RULE, startTestHub, type TestHub, writeRuleFile } from './helpers.ts';

/**
 * A rules file that does not apply is read again every time a thing changes (its rule may name a
 * thing still to come), and a start with discovery catching up changes things twenty times. Its
 * problem is logged once per distinct problem: again when it changes, and again when it comes
 * back after the file was fixed.
 */
describe('automations: a broken rules file in the log', () => {
  let t: TestHub | undefined;
  after(async () => {
    await t?.hub.stop();
  });

  it('is reported once per problem, however often things change', async () => {
    const lines: LogLine[] = [];
    t = await startTestHub({ log: createLogger({ level: 'warn', sink: (line) => lines.push(line) }) });
    const hub = t;
    const notApplied = () =>
      lines.filter((l) => l.message.startsWith('rules file not applied; ')).map((l) => String(l.fields?.problem));
    const changeThings = async (times: number) => {
      for (let n = 0; n < times; n++) {
        await hub.home?.ctx.upsertThing({
          householdId: HOME,
          kind: 'device',
          adapter: 'test-home',
          id: 'living-room-fan',
          name: `Living room fan ${n}`,
          properties: vocabularyProperties(['switch.on']),
          actions: vocabularyActions('switch'),
        });
        await hub.engine.settled();
      }
    };

    const unknownThing = { ...HUMID_RULE, actions: [{ action: 'turn_on', thing: 'garage-fan' }] };
    await writeRuleFile(t, 'humid.yaml', unknownThing);
    assert.equal(notApplied().length, 1);
    // It never applied: no rule of it runs, and the log does not promise one.
    assert.deepEqual(
      lines.filter((l) => l.message.startsWith('rules file not applied')).map((l) => l.message),
      ['rules file not applied; none of its rules run'],
    );
    assert.match(notApplied()[0], /unknown thing "garage-fan"/);

    await changeThings(20);
    assert.equal(notApplied().length, 1, `the same problem logged again:\n${notApplied().join('\n')}`);
    // Still reported where the user looks for it.
    assert.equal(t.engine.fileProblems().length, 1);

    // A different problem is news.
    const unknownProperty = {
      ...HUMID_RULE,
      triggers: [{ ...HUMID_RULE.triggers[0], property: 'sensor.pressure' }],
    };
    await writeRuleFile(t, 'humid.yaml', unknownProperty);
    await changeThings(3);
    assert.equal(notApplied().length, 2);
    assert.match(notApplied()[1], /sensor\.pressure/);

    // Fixed, then broken the first way again: said again.
    await writeRuleFile(t, 'humid.yaml', HUMID_RULE);
    assert.equal(t.engine.fileProblems().length, 0);
    await writeRuleFile(t, 'humid.yaml', unknownThing);
    await changeThings(3);
    assert.equal(notApplied().length, 3);
    assert.match(notApplied()[2], /unknown thing "garage-fan"/);
  });
});
