import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ocppMeta } from '../src/adapters/ocpp/central-system.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { tempDir } from './helpers/hub-process.ts';
import { OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * A hub restarted while a charge point still has messages queued for transactions that are not
 * connector 1's running one (one that ended, another socket's): after the restart they must still
 * be told apart from the running one, as before it. Real OCPP 1.6J frames over a real WebSocket,
 * a real hub stopped and started again on the same data directory.
 */

const PASSWORD = 'Review3-Restart-0123456789';
const MINUTE = 60_000;

describe('OCPP 1.6J: other transactions are still known after a hub restart', () => {
  const clock = new VirtualClock(Date.parse('2026-05-11T07:00:00Z'));
  const warnings: string[] = [];
  let dataDir: string;
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  const at = () => new Date(clock.now()).toISOString();
  const runningOf = (id: string) => {
    const thing = ocpp.hub.core.getThing(ocpp.hub.householdId, id);
    return thing ? ocppMeta(thing)?.transaction?.id : undefined;
  };
  const status = (cp: OcppChargePoint, status: string, connectorId = 1) =>
    cp.call('StatusNotification', { connectorId, errorCode: 'NoError', status, timestamp: at() });
  const start = async (cp: OcppChargePoint, meterStart: number, connectorId = 1) =>
    (await cp.call('StartTransaction', { connectorId, idTag: 'B4A63CDF', meterStart, timestamp: at() }))
      .transactionId as number;
  const meter = (cp: OcppChargePoint, connectorId: number, transactionId: number, wh: number, w: number) =>
    cp.call('MeterValues', {
      connectorId,
      transactionId,
      meterValue: [
        {
          timestamp: at(),
          sampledValue: [
            { value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' },
            { value: String(w), measurand: 'Power.Active.Import', unit: 'W' },
          ],
        },
      ],
    });
  /** Stops the hub and starts it again on the same data; the charge point reconnects. */
  const restart = async (cp: OcppChargePoint, chargePointId: string) => {
    await ocpp.hub.stop();
    await cp.close();
    await clock.advance(MINUTE);
    ocpp = await startOcppHub(clock, warnings, { dataDir });
    return OcppChargePoint.open(`${ocpp.wsUrl}/ocpp/${chargePointId}`, chargePointId, PASSWORD);
  };

  before(async () => {
    dataDir = await tempDir();
    ocpp = await startOcppHub(clock, warnings, { dataDir });
  });
  after(async () => {
    await ocpp.hub.stop();
  });

  it("a late reading of connector 1's ended transaction does not make it run again after a restart", async () => {
    const { id, cp } = await ocpp.connect('CP-R1', PASSWORD);
    await status(cp, 'Preparing');
    const ended = await start(cp, 10_000);
    await status(cp, 'Charging');
    await cp.call('StopTransaction', { transactionId: ended, meterStop: 14_000, timestamp: at(), reason: 'Local' });
    await status(cp, 'Available');
    const before = await ocpp.stateOf(id);
    assert.equal(before['sensor.energy'], 14);

    const again = await restart(cp, 'CP-R1');
    try {
      // The charge point sends what it had queued of the ended transaction, stamped before its end.
      await meter(again, 1, ended, 13_000, 7_000);
      assert.equal(runningOf(id), undefined, 'no transaction runs: the ended one does not run again');
      const after = await ocpp.stateOf(id);
      assert.equal(after['sensor.energy'], 14, 'the meter stays at its last reading');
      assert.equal(after['charging.power'], 0, 'the ended transaction draws nothing');
    } finally {
      await again.close();
    }
  });

  it("another socket's transaction is not taken for connector 1's after a restart", async () => {
    const { id, cp } = await ocpp.connect('CP-R2', PASSWORD);
    const other = await start(cp, 50_000, 2);
    await status(cp, 'Charging', 2);

    const again = await restart(cp, 'CP-R2');
    try {
      // A station that reads its one meter on connector 0 for the transaction of socket 2.
      await meter(again, 0, other, 61_000, 11_000);
      assert.equal(runningOf(id), undefined, "socket 2's transaction is not connector 1's");
      assert.notEqual((await ocpp.stateOf(id))['charging.power'], 11, "socket 2's power is not connector 1's");

      // Connector 1 starts its own; socket 2's stop after that changes nothing of connector 1's session.
      await status(again, 'Preparing');
      const mine = await start(again, 20_000);
      await status(again, 'Charging');
      await meter(again, 1, mine, 21_000, 7_000);
      const running = await ocpp.stateOf(id);
      await again.call('StopTransaction', {
        transactionId: other,
        meterStop: 70_000,
        timestamp: at(),
        reason: 'Local',
      });
      assert.equal(runningOf(id), mine);
      assert.deepEqual(await ocpp.stateOf(id), running);
      assert.ok(
        !warnings.some((w) => w.includes('not running') && w.includes(String(other))),
        `the hub knew socket 2's transaction and did not warn of it: ${warnings.join('\n')}`,
      );
    } finally {
      await again.close();
    }
  });
});
