import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { tempDir } from './helpers/hub-process.ts';
import { OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * Transaction ids must never repeat within a hub's data, whatever was removed: a charge point that
 * held the highest id, removed and registered again under its own id, still has the late
 * StopTransaction and MeterValues of its old transactions queued, and a new transaction given one
 * of their ids would be ended or metered by them. Real OCPP 1.6J frames over a real WebSocket,
 * real hubs started one after another on the same data directory, the clock set back between them
 * (a Raspberry Pi without a real-time clock).
 */

const PASSWORD = 'Removed-Transaction-Ids-01';
const STARTED = Date.parse('2026-05-11T07:00:00Z');

describe('OCPP 1.6J: transaction ids stay unique after chargers are removed', () => {
  let stopHub: (() => Promise<void>) | undefined;
  const sockets: OcppChargePoint[] = [];
  after(async () => {
    for (const socket of sockets) await socket.close();
    await stopHub?.();
  });

  it('a charger removed with the highest id, then a restart with the clock set back, repeats no id', async () => {
    const dataDir = await tempDir();
    const issued: number[] = [];
    const at = (clock: VirtualClock) => new Date(clock.now()).toISOString();
    const run = async (clock: VirtualClock) => {
      const ocpp = await startOcppHub(clock, [], { dataDir });
      stopHub = () => ocpp.hub.stop();
      const connect = async (chargePointId: string) => {
        const connected = await ocpp.connect(chargePointId, PASSWORD);
        sockets.push(connected.cp);
        return connected;
      };
      const charge = async (cp: OcppChargePoint) => {
        const answer = await cp.call('StartTransaction', {
          connectorId: 1,
          idTag: 'B4A63CDF',
          meterStart: 1_000,
          timestamp: at(clock),
        });
        const id = answer.transactionId as number;
        assert.ok(Number.isInteger(id) && id > 0, `a positive integer: ${id}`);
        assert.ok(!issued.includes(id), `id ${id} was handed out before (${issued.join(', ')})`);
        issued.push(id);
        await cp.call('StopTransaction', { transactionId: id, meterStop: 1_500, timestamp: at(clock) });
        return id;
      };
      const remove = async (thing: string) => {
        const removed = await ocpp.api(`/api/chargers/${thing}`, 'DELETE');
        assert.equal(removed.status, 204, JSON.stringify(removed.body));
      };
      return { ocpp, connect, charge, remove };
    };

    // The first run: a charger that stays takes the first id; the one removed later the highest.
    let hub = await run(new VirtualClock(STARTED));
    const kept = await hub.connect('CP-KEPT');
    await hub.charge(kept.cp);
    const gone = await hub.connect('CP-GONE');
    for (let n = 0; n < 3; n++) await hub.charge(gone.cp);
    await hub.remove(gone.id);
    await hub.ocpp.hub.stop();

    // Restarted in 1970: the charger that stayed and the removed one registered again go on above.
    hub = await run(new VirtualClock(10_000));
    const keptAgain = await OcppChargePoint.open(`${hub.ocpp.wsUrl}/ocpp/CP-KEPT`, 'CP-KEPT', PASSWORD);
    sockets.push(keptAgain);
    await keptAgain.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
    await hub.charge(keptAgain);
    const back = await hub.connect('CP-GONE');
    await hub.charge(back.cp);
    // Every charger removed: nothing of theirs is left to learn the last id from.
    await hub.remove(kept.id);
    await hub.remove(back.id);
    await hub.ocpp.hub.stop();

    hub = await run(new VirtualClock(STARTED - 3_600_000));
    const fresh = await hub.connect('CP-GONE');
    const last = await hub.charge(fresh.cp);
    assert.ok(
      issued.slice(0, -1).every((id) => id < last),
      `ids follow on from all before: ${issued.join(', ')}`,
    );
    await hub.ocpp.hub.stop();
    stopHub = undefined;
  });

  it('ids a charger was given before the hub kept its own mark are not handed out again once it goes', async () => {
    const dataDir = await tempDir();
    const clock = new VirtualClock(STARTED);
    const at = () => new Date(clock.now()).toISOString();
    let ocpp = await startOcppHub(clock, [], { dataDir });
    stopHub = () => ocpp.hub.stop();
    const { id: thing, cp } = await ocpp.connect('CP-OLDER', PASSWORD);
    sockets.push(cp);
    let last = 0;
    for (let n = 0; n < 3; n++) {
      last = (await cp.call('StartTransaction', { connectorId: 1, idTag: 'B4A63CDF', meterStart: 0, timestamp: at() }))
        .transactionId as number;
      await cp.call('StopTransaction', { transactionId: last, meterStop: 100, timestamp: at() });
    }
    // As a hub from before the mark left its data: the ids only in the charge point's own meta.
    await ocpp.hub.services.store.deleteTimer('ocpp-transaction-ids');
    assert.equal((await ocpp.api(`/api/chargers/${thing}`, 'DELETE')).status, 204);
    await ocpp.hub.stop();

    ocpp = await startOcppHub(new VirtualClock(10_000), [], { dataDir });
    const again = await ocpp.connect('CP-OLDER', PASSWORD);
    sockets.push(again.cp);
    const answer = await again.cp.call('StartTransaction', {
      connectorId: 1,
      idTag: 'B4A63CDF',
      meterStart: 0,
      timestamp: new Date(10_000).toISOString(),
    });
    assert.ok((answer.transactionId as number) > last, `${answer.transactionId} follows on from ${last}`);
    await ocpp.hub.stop();
    stopHub = undefined;
  });

  it("a transaction adopted from a charge point's MeterValues raises the mark at once, and after a restart", async () => {
    const dataDir = await tempDir();
    const clock = new VirtualClock(STARTED);
    const at = () => new Date(clock.now()).toISOString();
    let ocpp = await startOcppHub(clock, [], { dataDir });
    stopHub = () => ocpp.hub.stop();
    const { id: thing, cp } = await ocpp.connect('CP-ADOPTS', PASSWORD);
    sockets.push(cp);
    // A transaction an earlier hub started (before it kept them), still running on the charge point.
    const adopted = 7_000;
    await cp.call('MeterValues', {
      connectorId: 1,
      transactionId: adopted,
      meterValue: [
        { timestamp: at(), sampledValue: [{ value: '1200', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }] },
      ],
    });
    await cp.call('StopTransaction', { transactionId: adopted, meterStop: 1_500, timestamp: at() });
    const next = (
      await cp.call('StartTransaction', { connectorId: 1, idTag: 'B4A63CDF', meterStart: 1_500, timestamp: at() })
    ).transactionId as number;
    assert.ok(next > adopted, `${next} follows on from the adopted ${adopted}`);
    await cp.call('StopTransaction', { transactionId: next, meterStop: 1_600, timestamp: at() });
    // The charge point removed and the hub restarted: the adopted id is still below the next one.
    assert.equal((await ocpp.api(`/api/chargers/${thing}`, 'DELETE')).status, 204);
    await ocpp.hub.stop();
    ocpp = await startOcppHub(new VirtualClock(10_000), [], { dataDir });
    const again = await ocpp.connect('CP-ADOPTS', PASSWORD);
    sockets.push(again.cp);
    const after = (
      await again.cp.call('StartTransaction', {
        connectorId: 1,
        idTag: 'B4A63CDF',
        meterStart: 0,
        timestamp: new Date(10_000).toISOString(),
      })
    ).transactionId as number;
    assert.ok(after > next, `${after} follows on from ${next}`);
    await ocpp.hub.stop();
    stopHub = undefined;
  });
});
