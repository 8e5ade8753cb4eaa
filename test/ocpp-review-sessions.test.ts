import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ocppMeta } from '../src/adapters/ocpp/central-system.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { type OcppChargePoint, startOcppHub, withChargePoint } from './helpers/ocpp-charge-point.ts';

/**
 * What a review found in the OCPP 1.6J central system, driven by a real charge point over a real
 * WebSocket: meter values of another transaction read as the running one's, a second socket's
 * transaction taken for the first's, a charger whose clock was reset silenced as "late", and
 * frames a hostile or buggy charge point sends. Every frame is the charge point's literal JSON.
 */

const PASSWORD = 'Review-Sessions-0123456789';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('OCPP 1.6J: whose readings a charge point sends, and when it says they were', () => {
  const clock = new VirtualClock(Date.parse('2026-04-07T09:00:00Z'));
  const warnings: string[] = [];
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  const at = (offset = 0) => new Date(clock.now() + offset).toISOString();
  const stateOf = (id: string) => ocpp.stateOf(id);
  const connect = (chargePointId: string) => ocpp.connect(chargePointId, PASSWORD);
  /** The transaction the hub holds as running on the charger's connector 1, as it keeps it. */
  const runningOf = (id: string) => {
    const thing = ocpp.hub.core.getThing(ocpp.hub.householdId, id);
    return thing ? ocppMeta(thing)?.transaction?.id : undefined;
  };
  const status = (cp: OcppChargePoint, status: string, timestamp = at(), connectorId = 1) =>
    cp.call('StatusNotification', { connectorId, errorCode: 'NoError', status, timestamp });
  const start = async (cp: OcppChargePoint, meterStart: number, connectorId = 1) =>
    cp.call('StartTransaction', { connectorId, idTag: 'B4A63CDF', meterStart, timestamp: at() });
  /** MeterValues with the register (Wh) and the power (W), stamped now. */
  const meter = (cp: OcppChargePoint, transactionId: number | undefined, wh: number, w: number, connectorId = 1) =>
    cp.call('MeterValues', {
      connectorId,
      ...(transactionId === undefined ? {} : { transactionId }),
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

  before(async () => {
    ocpp = await startOcppHub(clock, warnings);
  });

  after(async () => {
    await ocpp.hub.stop();
  });

  it('ignores meter values of a transaction other than the running one, confirming them, and logs them', () =>
    withChargePoint(connect('CP-MV'), async ({ id, cp }) => {
      await status(cp, 'Preparing');
      const { transactionId } = (await start(cp, 10_000)) as { transactionId: number };
      await status(cp, 'Charging');
      await clock.advance(MINUTE);
      await meter(cp, transactionId, 11_000, 7_000);
      const before = await stateOf(id);
      assert.equal(before['sensor.energy'], 11);
      assert.equal(before['charging.power'], 7);

      // A stale transaction's (or a second one's) readings, stamped later: not this session's.
      const stranger = transactionId + 17;
      await clock.advance(MINUTE);
      assert.deepEqual(await meter(cp, stranger, 90_000, 22_000), {}, 'a MeterValues.conf, as the spec asks');
      assert.deepEqual(await stateOf(id), before, "the running session's meter, energy and power stand");
      assert.equal(runningOf(id), transactionId, 'the running transaction is still the one that runs');
      assert.ok(
        warnings.some((w) => w.includes('MeterValues') && w.includes(String(stranger))),
        `a log line names it: ${warnings.join('\n')}`,
      );

      // Its own readings still count.
      await clock.advance(MINUTE);
      await meter(cp, transactionId, 12_000, 7_200);
      assert.equal((await stateOf(id))['charging.energy'], 2);
    }));

  it('does not take up a transaction again from its late meter values after it stopped', () =>
    withChargePoint(connect('CP-LATE-MV'), async ({ id, cp }) => {
      await status(cp, 'Preparing');
      const { transactionId } = (await start(cp, 1_000)) as { transactionId: number };
      await clock.advance(MINUTE);
      await cp.call('StopTransaction', { transactionId, meterStop: 3_000, timestamp: at(), reason: 'Local' });
      assert.equal(runningOf(id), undefined);
      // What the charge point had queued of it, sent after its StopTransaction.
      await clock.advance(MINUTE);
      await meter(cp, transactionId, 2_500, 7_000);
      assert.equal(runningOf(id), undefined, 'an ended transaction is not running again');
      const state = await stateOf(id);
      assert.equal(state['sensor.energy'], 3, 'the meter at its stop');
      assert.equal(state['charging.power'], 0);
    }));

  it("keeps a second socket's transaction, readings and status off connector 1, answering it as the spec asks", () =>
    withChargePoint(connect('CP-TWO'), async ({ id, cp }) => {
      await status(cp, 'Preparing');
      const mine = (await start(cp, 5_000)) as { transactionId: number };
      await status(cp, 'Charging');
      await clock.advance(MINUTE);
      await meter(cp, mine.transactionId, 6_000, 7_000);
      const before = await stateOf(id);

      // Someone plugs into the station's second socket.
      await status(cp, 'Preparing', at(), 2);
      const other = await start(cp, 40_000, 2);
      assert.equal(typeof other.transactionId, 'number', 'a transactionId, or the station asks again');
      assert.notEqual(other.transactionId, mine.transactionId);
      assert.deepEqual(other.idTagInfo, { status: 'Accepted' });
      await clock.advance(MINUTE);
      await meter(cp, other.transactionId as number, 41_000, 11_000, 2);
      await status(cp, 'Charging', at(), 2);
      assert.deepEqual(await stateOf(id), before, "connector 1's session is as it was");
      assert.equal(runningOf(id), mine.transactionId, 'connector 1 still runs its own transaction');

      // Its end changes nothing of connector 1 either, and connector 1 goes on.
      await clock.advance(MINUTE);
      const stopped = await cp.call('StopTransaction', {
        transactionId: other.transactionId,
        meterStop: 42_000,
        timestamp: at(),
      });
      assert.deepEqual(stopped, { idTagInfo: { status: 'Accepted' } });
      await status(cp, 'Available', at(), 2);
      assert.deepEqual(await stateOf(id), before);
      await clock.advance(MINUTE);
      await meter(cp, mine.transactionId, 7_000, 7_000);
      assert.equal((await stateOf(id))['charging.energy'], 2);
    }));

  it("does not take up a transaction on another connector as connector 1's when none runs there", () =>
    withChargePoint(connect('CP-TWO-IDLE'), async ({ id, cp }) => {
      await status(cp, 'Available');
      const before = await stateOf(id);
      const other = await start(cp, 40_000, 2);
      await clock.advance(MINUTE);
      await meter(cp, other.transactionId as number, 41_000, 11_000, 2);
      assert.equal(runningOf(id), undefined);
      assert.deepEqual(await stateOf(id), before);
    }));

  it('still hears a charger that rebooted with its clock back at 1970', () =>
    withChargePoint(connect('CP-1970'), async ({ id, cp }) => {
      await status(cp, 'Available');
      await clock.advance(MINUTE);
      // Power lost, and the clock with it: the charge point boots into 1970.
      await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
      const epoch = Date.parse('1970-01-01T00:00:07Z');
      await status(cp, 'Preparing', new Date(epoch).toISOString());
      assert.equal((await stateOf(id))['charging.status'], 'Preparing');
      await clock.advance(MINUTE);
      await cp.call('StartTransaction', {
        connectorId: 1,
        idTag: 'B4A63CDF',
        meterStart: 2_000,
        timestamp: new Date(epoch + MINUTE).toISOString(),
      });
      await status(cp, 'Charging', new Date(epoch + MINUTE).toISOString());
      await clock.advance(MINUTE);
      await cp.call('MeterValues', {
        connectorId: 1,
        meterValue: [
          {
            timestamp: new Date(epoch + 2 * MINUTE).toISOString(),
            sampledValue: [{ value: '2500', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
          },
        ],
      });
      const state = await stateOf(id);
      assert.equal(state['charging.status'], 'Charging');
      assert.equal(state['sensor.energy'], 2.5);
      assert.equal(state['charging.energy'], 0.5);
    }));

  it('follows a clock that jumped back hours without a reboot, from its next report on', () =>
    withChargePoint(connect('CP-JUMP'), async ({ id, cp }) => {
      await status(cp, 'Available');
      await clock.advance(MINUTE);
      // From here the charge point's clock is three hours behind (a bad NTP answer, say).
      await status(cp, 'Preparing', at(-3 * HOUR));
      await clock.advance(MINUTE);
      await status(cp, 'Charging', at(-3 * HOUR));
      assert.equal((await stateOf(id))['charging.status'], 'Charging');
      await clock.advance(MINUTE);
      await status(cp, 'SuspendedEV', at(-3 * HOUR));
      assert.equal((await stateOf(id))['charging.status'], 'SuspendedEV');
    }));

  it('follows a clock that ran ahead once it is put right', () =>
    withChargePoint(connect('CP-AHEAD'), async ({ id, cp }) => {
      await status(cp, 'Preparing', at(24 * HOUR));
      await clock.advance(MINUTE);
      // The hub's currentTime put its clock right; the message took a moment on its way.
      await status(cp, 'Charging', at(-2_000));
      assert.equal((await stateOf(id))['charging.status'], 'Charging');
    }));

  it('still passes over a message that is really late, before and after a reboot', () =>
    withChargePoint(connect('CP-LATE'), async ({ id, cp }) => {
      await status(cp, 'Charging');
      await status(cp, 'Faulted', at(-5_000));
      assert.equal((await stateOf(id))['charging.status'], 'Charging', 'a few seconds out of order');
      await clock.advance(MINUTE);
      await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
      await status(cp, 'Available');
      await clock.advance(MINUTE);
      await status(cp, 'Preparing');
      await status(cp, 'Faulted', at(-10_000));
      await status(cp, 'Finishing', at(-HOUR));
      assert.equal((await stateOf(id))['charging.status'], 'Preparing');
    }));

  it("answers a confirmation's name sent as an action as an action it does not know, changing nothing", () =>
    withChargePoint(connect('CP-NAMES'), async ({ id, cp }) => {
      await status(cp, 'Available');
      const before = await stateOf(id);
      // Payloads that fit the confirmation's schema, so only the name can refuse them.
      const frames: Array<[string, Record<string, unknown>]> = [
        ['BootNotificationResponse', { status: 'Accepted', currentTime: at(), interval: 300 }],
        ['StatusNotificationResponse', {}],
        ['StartTransactionResponse', { idTagInfo: { status: 'Accepted' }, transactionId: 1 }],
      ];
      for (const [action, payload] of frames) {
        const answer = await cp.send(action, payload);
        assert.equal(answer[0], 4, `${action} was answered ${JSON.stringify(answer)}`);
        assert.equal(answer[2], 'NotImplemented', `${action}: ${JSON.stringify(answer)}`);
      }
      assert.deepEqual(await stateOf(id), before);
    }));
});
