import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ocppMeta } from '../src/adapters/ocpp/central-system.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';
import { OcppChargePoint, startOcppHub, withChargePoint } from './helpers/ocpp-charge-point.ts';

/**
 * What a hostile reviewer found driving the OCPP 1.6J central system with a real charge point
 * over a real WebSocket: meter values that are no numbers, a StopTransaction for another
 * transaction, a charge that could not be stopped after a restart, a status for a connector the
 * charger does not have, 31 February, and a vendor string full of control and bidi characters.
 * Every frame is the charge point's literal JSON; the answers are read off the socket.
 */

const PASSWORD = 'Hostile-Review-0123456789';
const MINUTE = 60_000;

/** Picks the SetChargingProfile that limits the current to `amps`. */
const limitOf = (amps: number) => (payload: Record<string, unknown>) =>
  JSON.stringify(payload).includes(`"chargingSchedulePeriod":[{"startPeriod":0,"limit":${amps}}]`);

describe('OCPP 1.6J defects a hostile reviewer found', () => {
  const clock = new VirtualClock(Date.parse('2026-03-05T08:00:00Z'));
  const warnings: string[] = [];
  let dataDir: string;
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  const at = () => new Date(clock.now()).toISOString();

  const startHub = async () => {
    ocpp = await startOcppHub(clock, warnings, { dataDir });
  };
  const api: typeof ocpp.api = (...args) => ocpp.api(...args);
  const stateOf = (id: string) => ocpp.stateOf(id);
  /** The charger's one charging session, once it has ended. */
  const endedSession = (charger: string) =>
    eventually(async () => {
      const { body } = await api<Array<{ charger: string; energyKwh: number; open: boolean }>>('/api/energy/sessions');
      const list = body.filter((s) => s.charger === charger);
      return list.length === 1 && !list[0].open && list[0];
    });
  const status = (cp: OcppChargePoint, status: string, connectorId = 1) =>
    cp.call('StatusNotification', { connectorId, errorCode: 'NoError', status, timestamp: at() });
  /** Registers a charge point and connects it, as a charger with a car plugged in. */
  const plugIn = async (chargePointId: string): Promise<{ id: string; cp: OcppChargePoint }> => {
    const connected = await ocpp.connect(chargePointId, PASSWORD);
    await status(connected.cp, 'Preparing');
    return connected;
  };
  const start = async (cp: OcppChargePoint, meterStart: number) =>
    (await cp.call('StartTransaction', { connectorId: 1, idTag: 'B4A63CDF', meterStart, timestamp: at() }))
      .transactionId as number;
  const energy = (cp: OcppChargePoint, transactionId: number, value: string) =>
    cp.call('MeterValues', {
      connectorId: 1,
      transactionId,
      meterValue: [
        {
          timestamp: at(),
          sampledValue: [{ value, measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
        },
      ],
    });
  const unplug = async (cp: OcppChargePoint, transactionId: number, meterStop: number) => {
    await cp.call('StopTransaction', { transactionId, meterStop, timestamp: at(), reason: 'EVDisconnected' });
    await status(cp, 'Available');
  };

  before(async () => {
    dataDir = await tempDir();
    await startHub();
  });

  after(async () => {
    await ocpp.hub.stop();
  });

  it('passes over a meter value that is not a decimal number or is a negative register, rather than reading it as 0, as hex or as a meter gone back', () =>
    withChargePoint(plugIn('CP-A'), async ({ id, cp }) => {
      const transactionId = await start(cp, 10_000);
      for (const value of ['12000', '', '0x3000', '1e4', ' 12100', '-5000', '12500']) {
        await clock.advance(5 * MINUTE);
        await energy(cp, transactionId, value);
        const meter = (await stateOf(id))['sensor.energy'];
        assert.equal(meter, value === '12500' ? 12.5 : 12, `after the value ${JSON.stringify(value)}`);
      }
      await clock.advance(5 * MINUTE);
      await unplug(cp, transactionId, 13_000);
      const session = await endedSession(id);
      assert.equal(session.energyKwh, 3, 'the meter’s 10.0 → 13.0 kWh');
      assert.equal((await stateOf(id))['charging.energy'], 3);
    }));

  it('confirms a StopTransaction for a transaction that is not running, and changes nothing of the one that is', () =>
    withChargePoint(plugIn('CP-B'), async ({ id, cp }) => {
      const transactionId = await start(cp, 30_000);
      await status(cp, 'Charging');
      await clock.advance(5 * MINUTE);
      await energy(cp, transactionId, '31000');
      const before = await stateOf(id);
      const stranger = transactionId === 999 ? 998 : 999;
      await clock.advance(MINUTE);
      // OCPP gives a StopTransaction no refusal: the answer is a confirmation with idTagInfo.
      const answer = await cp.call('StopTransaction', { transactionId: stranger, meterStop: 5_000, timestamp: at() });
      assert.deepEqual(answer, { idTagInfo: { status: 'Accepted' } });
      assert.deepEqual(await stateOf(id), before, 'the running transaction’s meter, charge and status stand');
      assert.ok(
        warnings.some((w) => w.includes('not running') && w.includes(String(stranger))),
        `a log line names it: ${warnings.join('\n')}`,
      );
      await clock.advance(5 * MINUTE);
      await energy(cp, transactionId, '32000');
      await clock.advance(5 * MINUTE);
      await unplug(cp, transactionId, 33_000);
      const session = await endedSession(id);
      assert.equal(session.energyKwh, 3, 'the meter’s 30.0 → 33.0 kWh, never down to 5');
    }));

  it('ignores the status of a connector the charger does not have, answering it and warning of it once', () =>
    withChargePoint(plugIn('CP-D'), async ({ id, cp }) => {
      await status(cp, 'Available');
      const before = await stateOf(id);
      assert.equal(before['charging.connected'], false);
      const answer = await cp.send('StatusNotification', {
        connectorId: 7,
        errorCode: 'NoError',
        status: 'Charging',
        timestamp: at(),
      });
      assert.deepEqual(answer.slice(0, 3), [3, answer[1], {}], 'a StatusNotification.conf, as the spec asks');
      assert.deepEqual(await stateOf(id), before);
      assert.ok(
        warnings.some((w) => w.includes('connector') && w.includes('"connectorId":7')),
        `a log line says connector 7 was ignored: ${warnings.join('\n')}`,
      );
      // Its next statuses are ignored as quietly: a two-socket station sends them at every change.
      await status(cp, 'Finishing', 7);
      await status(cp, 'Available', 7);
      assert.deepEqual(await stateOf(id), before);
      assert.equal(
        warnings.filter((w) => w.includes('"connectorId":7')).length,
        1,
        `warned once of connector 7: ${warnings.join('\n')}`,
      );
      // Connector 0, the whole charge point, still counts.
      await status(cp, 'Faulted', 0);
      assert.equal((await stateOf(id))['charging.status'], 'Faulted');
    }));

  it('refuses a date the calendar does not have with a PropertyConstraintViolation, storing nothing', () =>
    withChargePoint(plugIn('CP-E'), async ({ id, cp }) => {
      const before = await stateOf(id);
      const frames: Array<[string, Record<string, unknown>]> = [
        [
          'StatusNotification',
          { connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: '2026-02-31T10:00:00Z' },
        ],
        ['StartTransaction', { connectorId: 1, idTag: 'B4A63CDF', meterStart: 1, timestamp: '2026-04-31T10:00:00Z' }],
        [
          'MeterValues',
          {
            connectorId: 1,
            meterValue: [{ timestamp: '2026-03-05T24:00:00Z', sampledValue: [{ value: '99000' }] }],
          },
        ],
      ];
      for (const [action, payload] of frames) {
        const answer = await cp.send(action, payload);
        assert.equal(answer[0], 4, `${action} was answered ${JSON.stringify(answer)}`);
        assert.equal(answer[2], 'PropertyConstraintViolation');
        assert.match(String(answer[3]), /date-time/);
      }
      assert.deepEqual(await stateOf(id), before);
      // A real date is still taken.
      assert.deepEqual(
        await cp.call('StatusNotification', {
          connectorId: 1,
          errorCode: 'NoError',
          status: 'Available',
          timestamp: '2028-02-29T10:00:00+01:00',
        }),
        {},
      );
    }));

  it('cleans control and hidden characters out of what a charge point tells about itself', () =>
    withChargePoint(plugIn('CP-F'), async ({ id, cp }) => {
      await cp.call('BootNotification', {
        chargePointVendor: '\u202eEvil\u0000<b>',
        chargePointModel: 'M\u200b',
        firmwareVersion: '\u001b[31m1.2\u2066',
      });
      const chargers = (await api<Array<{ id: string; vendor: string; model: string }>>('/api/chargers')).body;
      const charger = chargers.find((c) => c.id === id);
      assert.equal(charger?.vendor, 'Evil <b>');
      assert.equal(charger?.model, 'M');
      const thing = ocpp.hub.core.getThing(ocpp.hub.householdId, id);
      // A terminal escape loses its ESC, so it can no longer recolour the log.
      assert.equal(thing && ocppMeta(thing)?.firmware, '[31m1.2');
    }));

  it('stops and limits a charge that was running when the hub restarted, before any MeterValues', async () => {
    const { id, cp } = await plugIn('CP-C');
    const transactionId = await start(cp, 1_000);
    await status(cp, 'Charging');
    await ocpp.hub.stop();
    await cp.close();

    await clock.advance(2 * MINUTE);
    await startHub();
    // The charge point comes back and says only that it is charging, as after a network outage.
    const again = await OcppChargePoint.open(`${ocpp.wsUrl}/ocpp/CP-C`, 'CP-C', PASSWORD);
    try {
      await status(again, 'Charging');
      const limit = await api('/api/things/charger-cp-c/actions/set_current_limit', 'POST', { current: 10 });
      assert.equal(limit.status, 202, JSON.stringify(limit.body));
      const profile = (await again.answer('SetChargingProfile', { status: 'Accepted' }, limitOf(10))) as {
        csChargingProfiles: { chargingProfilePurpose: string; transactionId?: number };
      };
      assert.equal(profile.csChargingProfiles.chargingProfilePurpose, 'TxProfile');
      assert.equal(profile.csChargingProfiles.transactionId, transactionId);

      const stop = await api<{ commandId: string }>('/api/things/charger-cp-c/actions/stop', 'POST', {});
      assert.equal(stop.status, 202, JSON.stringify(stop.body));
      const remote = await again.answer('RemoteStopTransaction', { status: 'Accepted' });
      assert.deepEqual(remote, { transactionId });
      const command = await eventually(async () => {
        const { body } = await api<{ status: string; error?: string }>(`/api/commands/${stop.body.commandId}`);
        return body.status !== 'pending' && body;
      });
      assert.notEqual(command.status, 'failed', JSON.stringify(command));

      // The stop it asked for counts from the meter at the transaction's start, from before the restart.
      await clock.advance(MINUTE);
      await unplug(again, transactionId, 4_000);
      assert.equal((await stateOf(id))['charging.energy'], 3);
      // Ended: a current limit now is for the next transaction.
      await api('/api/things/charger-cp-c/actions/set_current_limit', 'POST', { current: 8 });
      const next = (await again.answer('SetChargingProfile', { status: 'Accepted' }, limitOf(8))) as {
        csChargingProfiles: { chargingProfilePurpose: string };
      };
      assert.equal(next.csChargingProfiles.chargingProfilePurpose, 'TxDefaultProfile');
    } finally {
      await again.close();
    }
  });
});
