import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ocppMeta } from '../src/adapters/ocpp/central-system.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { startDemoTriad } from './helpers/demo-hub.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * The demo stopped while its charge point charges the car, and started again on the same data
 * folder: the charge point, whose power went with the demo, ends the transaction it had with
 * reason PowerLoss (as OCPP 1.6 has a real one do when it is back) before it starts a new one for
 * the car still on its cable; it did not end it, and the hub saw a second StartTransaction while
 * the first ran. The demo hub in this process, its real OCPP WebSocket and state file.
 */

/** 21:00 UTC: the demo car is home and plugged in (see demo-energy.test.ts). */
const START = Date.parse('2026-01-05T21:00:00Z');
const CHARGER = 'charger-sim-cp-1';

describe('the demo charge point across a restart', () => {
  let hub: Hub | null = null;
  after(async () => {
    await hub?.stop();
  });

  it('ends its interrupted transaction with PowerLoss before it starts a new one', async () => {
    const clock = new VirtualClock(START);
    const dataDir = await tempDir();
    const lines: LogLine[] = [];
    const log = createLogger({ level: 'info', sink: (line) => lines.push(line) });
    const running = () => {
      const thing = hub?.core.getThing(hub.householdId, CHARGER);
      return thing ? ocppMeta(thing)?.transaction?.id : undefined;
    };

    hub = await startDemoTriad({ clock, dataDir, log });
    const interrupted = await eventually(() => running(), { what: 'the demo charge point to start a transaction' });
    await hub.stop();
    hub = null;
    const saved = JSON.parse(await readFile(join(dataDir, 'demo-state.json'), 'utf8')) as {
      chargePoint?: { transaction?: { id: number; at: string } };
    };
    assert.equal(saved.chargePoint?.transaction?.id, interrupted, 'the running transaction is saved');
    assert.equal(saved.chargePoint?.transaction?.at, new Date(START).toISOString(), 'with when the demo stopped');

    await clock.advance(10 * 60_000);
    lines.length = 0;
    hub = await startDemoTriad({ clock, dataDir, log });
    const fresh = await eventually(
      () => {
        const id = running();
        return id !== undefined && id !== interrupted && id;
      },
      { what: 'a new transaction for the car still plugged in' },
    );
    // Ended before the new one started (the new one is running now), with the reason and the time.
    const ended = lines.filter((line) => line.message === 'charge point ended its transaction');
    assert.deepEqual(
      ended.map((line) => line.fields),
      [{ chargePoint: 'SIM-CP-1', transactionId: interrupted, reason: 'PowerLoss' }],
      `the hub's log after the restart: ${JSON.stringify(lines.map((line) => line.message))}`,
    );
    assert.ok(fresh > interrupted, `a fresh id: ${fresh} after ${interrupted}`);
    assert.deepEqual(
      lines.filter((line) => line.level === 'warn' && line.message.includes('not running')),
      [],
      'the hub knew the transaction it was told the end of',
    );
  });
});
