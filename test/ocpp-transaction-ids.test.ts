import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { tempDir } from './helpers/hub-process.ts';
import { OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * Transaction ids must never repeat for a charge point, whatever the hub's clock does across a
 * restart (a Raspberry Pi without a real-time clock boots at the last saved time or in 1970, and
 * NTP moves it later): a repeated id lets a charge point's late StopTransaction or MeterValues of
 * an old transaction land on the new one. Real OCPP 1.6J frames over a real WebSocket, real hubs
 * started one after another on the same data directory.
 */

const PASSWORD = 'Transaction-Ids-0123456789';
const STARTED = Date.parse('2026-05-11T07:00:00Z');
const INT32_MAX = 2 ** 31 - 1;

describe('OCPP 1.6J: transaction ids stay unique across restarts with the clock set back', () => {
  let stopHub: (() => Promise<void>) | undefined;
  after(async () => {
    await stopHub?.();
  });

  it('a hub restarted with its clock moved back issues ids never issued before', async () => {
    const dataDir = await tempDir();
    const issued: number[] = [];
    const at = (clock: VirtualClock) => new Date(clock.now()).toISOString();
    const start = async (cp: OcppChargePoint, clock: VirtualClock, meterStart: number) => {
      const answer = await cp.call('StartTransaction', {
        connectorId: 1,
        idTag: 'B4A63CDF',
        meterStart,
        timestamp: at(clock),
      });
      const id = answer.transactionId as number;
      assert.ok(Number.isInteger(id) && id > 0 && id <= INT32_MAX, `a positive 32-bit integer: ${id}`);
      assert.ok(!issued.includes(id), `id ${id} was issued before (${issued.join(', ')})`);
      issued.push(id);
      return id;
    };

    // The first run: three transactions within the same second, the last one left running.
    const firstClock = new VirtualClock(STARTED);
    let ocpp = await startOcppHub(firstClock, [], { dataDir });
    stopHub = () => ocpp.hub.stop();
    const { id: thing, cp } = await ocpp.connect('CP-IDS', PASSWORD);
    for (const meter of [1_000, 2_000]) {
      const id = await start(cp, firstClock, meter);
      await cp.call('StopTransaction', { transactionId: id, meterStop: meter + 500, timestamp: at(firstClock) });
    }
    const interrupted = await start(cp, firstClock, 3_000);
    await ocpp.hub.stop();
    await cp.close();

    // Restarted twice: at the time of the first start, then in 1970 (no real-time clock).
    for (const clock of [new VirtualClock(STARTED), new VirtualClock(10_000)]) {
      ocpp = await startOcppHub(clock, [], { dataDir });
      const again = await OcppChargePoint.open(`${ocpp.wsUrl}/ocpp/CP-IDS`, 'CP-IDS', PASSWORD);
      try {
        await again.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
        const fresh = await start(again, clock, 4_000);
        // The charge point's late stop of the first run's transaction leaves the new one running.
        await again.call('StopTransaction', { transactionId: interrupted, meterStop: 3_900, timestamp: at(clock) });
        const state = (await ocpp.stateOf(thing)) as Record<string, unknown>;
        assert.equal(state['sensor.energy'], 4, "the old transaction's stop is not the new one's meter");
        await again.call('StopTransaction', { transactionId: fresh, meterStop: 4_100, timestamp: at(clock) });
      } finally {
        await ocpp.hub.stop();
        await again.close();
      }
    }
    stopHub = undefined;
  });
});
