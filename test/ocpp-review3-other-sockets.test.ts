import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { eventually } from './helpers/hub-process.ts';
import { startOcppHub, withChargePoint } from './helpers/ocpp-charge-point.ts';

/**
 * A two-socket station: the household's fuse limit is shared out to socket 1, so a car on socket 2
 * must not draw on top of it. The hub holds socket 2's transaction at 0 A with a charging profile
 * and says so in its log. Real OCPP 1.6J frames over a real WebSocket.
 */

const PASSWORD = 'Review3-Sockets-0123456789';

describe('OCPP 1.6J: a second socket stays within the fuse limit', () => {
  const clock = new VirtualClock(Date.parse('2026-05-12T17:00:00Z'));
  const warnings: string[] = [];
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  const at = () => new Date(clock.now()).toISOString();

  before(async () => {
    ocpp = await startOcppHub(clock, warnings);
  });
  after(async () => {
    await ocpp.hub.stop();
  });

  it("holds socket 2's transaction at 0 A, and warns that it does", () =>
    withChargePoint(ocpp.connect('CP-TWIN', PASSWORD), async ({ cp }) => {
      await cp.call('StatusNotification', {
        connectorId: 2,
        errorCode: 'NoError',
        status: 'Preparing',
        timestamp: at(),
      });
      const { transactionId } = await cp.call('StartTransaction', {
        connectorId: 2,
        idTag: 'B4A63CDF',
        meterStart: 0,
        timestamp: at(),
      });
      assert.equal(typeof transactionId, 'number');
      const profile = (await cp.answer('SetChargingProfile', { status: 'Accepted' })) as {
        connectorId: number;
        csChargingProfiles: Record<string, unknown> & {
          chargingSchedule: { chargingSchedulePeriod: Array<{ limit: number }> };
        };
      };
      assert.equal(profile.connectorId, 2);
      assert.equal(profile.csChargingProfiles.chargingProfilePurpose, 'TxProfile');
      assert.equal(profile.csChargingProfiles.transactionId, transactionId);
      assert.deepEqual(profile.csChargingProfiles.chargingSchedule.chargingSchedulePeriod, [
        { startPeriod: 0, limit: 0 },
      ]);
      await eventually(() => warnings.some((w) => w.includes('held at 0 A') && w.includes('"connectorId":2')), {
        what: 'a warning naming socket 2',
      });
    }));

  it('a charge point that refuses the hold is logged as an error, and the hub goes on', () =>
    withChargePoint(ocpp.connect('CP-TWIN-B', PASSWORD), async ({ cp }) => {
      await cp.call('StartTransaction', { connectorId: 2, idTag: 'B4A63CDF', meterStart: 0, timestamp: at() });
      await cp.answer('SetChargingProfile', { status: 'Rejected' });
      await eventually(() => warnings.some((w) => w.includes('would not hold') && w.includes('CP-TWIN-B')), {
        what: 'an error naming the charge point',
      });
      assert.deepEqual(await cp.call('Heartbeat', {}).then((p) => Object.keys(p)), ['currentTime']);
    }));
});
