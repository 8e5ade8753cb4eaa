import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { eventually } from './helpers/hub-process.ts';
import { OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * The OCPP 1.6J central system over a real WebSocket. The charge point's frames are literal JSON
 * written from the specification's examples (OCPP-J 1.6 section 4 and the message definitions),
 * not produced by Triad's own code.
 */

const PASSWORD = 'Sup3rSecretKey-0123456789';

describe('OCPP 1.6J central system', () => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 3, 12));
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  let ocppUrl: string;
  let cp: OcppChargePoint;
  const state = () => ocpp.stateOf('charger-cp-0001');

  before(async () => {
    ocpp = await startOcppHub(clock);
    const res = await ocpp.api<{ id: string; ocpp: { path: string } }>('/api/chargers', 'POST', {
      chargePointId: 'CP-0001',
      name: 'Driveway',
      password: PASSWORD,
    });
    assert.equal(res.status, 201);
    assert.equal(res.body.id, 'charger-cp-0001');
    ocppUrl = ocpp.wsUrl + res.body.ocpp.path;
  });

  after(async () => {
    await cp?.close();
    await ocpp.hub.stop();
  });

  it('refuses an unknown charge point and a wrong password before the upgrade', async () => {
    const open = OcppChargePoint.open;
    await assert.rejects(open(`${ocpp.wsUrl}/ocpp/CP-9999`, 'CP-9999'), /HTTP 404/);
    await assert.rejects(open(`${ocpp.wsUrl}/ocpp/CP-9999`, 'CP-9999', PASSWORD), /HTTP 401/);
    await assert.rejects(open(ocppUrl, 'CP-0001', 'not-the-right-password'), /HTTP 401/);
    await assert.rejects(open(ocppUrl, 'CP-0001'), /HTTP 401/);
    await assert.rejects(open(ocppUrl, 'CP-0001', PASSWORD, ['ocpp2.0.1']), /HTTP 400/);
  });

  it('answers 409 for a registered charge point that is not connected, on the routes that must reach it', async () => {
    for (const [path, body] of [
      ['/api/chargers/charger-cp-0001/availability', { operative: false }],
      ['/api/chargers/charger-cp-0001/trigger', { message: 'Heartbeat' }],
    ] as const) {
      const res = await ocpp.api<{ error: { code: string; message: string } }>(path, 'POST', body);
      assert.equal(res.status, 409, path);
      const answer = res.body;
      assert.equal(answer.error.code, 'conflict');
      assert.match(answer.error.message, /CP-0001 is not connected/);
    }
  });

  it('boots, reports status and meter values, and obeys a charging profile', async () => {
    cp = await OcppChargePoint.open(ocppUrl, 'CP-0001', PASSWORD);
    assert.equal(cp.socket.protocol, 'ocpp1.6');

    const boot = await cp.raw(
      '[2, "19223201", "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}]',
    );
    assert.equal(boot[0], 3);
    const conf = boot[2] as { status: string; currentTime: string; interval: number };
    assert.equal(conf.status, 'Accepted');
    assert.equal(conf.currentTime, new Date(clock.now()).toISOString());
    assert.ok(Number.isInteger(conf.interval));

    assert.deepEqual(await cp.raw('[2, "19223202", "Heartbeat", {}]'), [
      3,
      '19223202',
      { currentTime: new Date(clock.now()).toISOString() },
    ]);
    assert.deepEqual(
      await cp.raw(
        '[2, "19223203", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": "2026-03-03T12:00:00Z"}]',
      ),
      [3, '19223203', {}],
    );
    const start = await cp.raw(
      '[2, "19223204", "StartTransaction", {"connectorId": 1, "idTag": "B4A63CDF", "meterStart": 1000, "timestamp": "2026-03-03T12:00:01Z"}]',
    );
    const started = start[2] as { transactionId: number; idTagInfo: { status: string } };
    assert.equal(started.idTagInfo.status, 'Accepted');
    await cp.raw(
      '[2, "19223205", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}]',
    );
    await cp.raw(
      `[2, "19223206", "MeterValues", {"connectorId": 1, "transactionId": ${started.transactionId}, "meterValue": [{"timestamp": "2026-03-03T12:00:05Z", "sampledValue": [{"value": "3500", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}, {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"}]}]}]`,
    );
    const now = await state();
    assert.equal(now['charging.connected'], true);
    assert.equal(now['charging.charging'], true);
    assert.equal(now['charging.status'], 'Charging');
    assert.equal(now['charging.power'], 7.36);
    assert.equal(now['sensor.energy'], 3.5);
    assert.equal(now['charging.energy'], 2.5);

    // A current limit asked through the API reaches the charge point as SetChargingProfile.
    const res = await ocpp.api<{ commandId: string }>('/api/things/charger-cp-0001/actions/set_current_limit', 'POST', {
      current: 10,
    });
    assert.equal(res.status, 202);
    const { commandId } = res.body;
    const profile = (await cp.answer('SetChargingProfile', { status: 'Accepted' })) as {
      connectorId: number;
      csChargingProfiles: {
        transactionId: number;
        chargingProfilePurpose: string;
        chargingSchedule: {
          chargingRateUnit: string;
          chargingSchedulePeriod: Array<{ startPeriod: number; limit: number }>;
        };
      };
    };
    assert.equal(profile.connectorId, 1);
    assert.equal(profile.csChargingProfiles.chargingProfilePurpose, 'TxProfile');
    assert.equal(profile.csChargingProfiles.transactionId, started.transactionId);
    assert.equal(profile.csChargingProfiles.chargingSchedule.chargingRateUnit, 'A');
    assert.deepEqual(profile.csChargingProfiles.chargingSchedule.chargingSchedulePeriod, [
      { startPeriod: 0, limit: 10 },
    ]);
    await eventually(async () => {
      const command = (await ocpp.api<{ status: string }>(`/api/commands/${commandId}`)).body;
      assert.equal(command.status, 'confirmed');
      return true;
    });
    assert.equal((await state())['charging.current_limit'], 10);

    const stop = await cp.raw(
      `[2, "19223207", "StopTransaction", {"transactionId": ${started.transactionId}, "meterStop": 9000, "timestamp": "2026-03-03T13:00:00Z", "reason": "EVDisconnected"}]`,
    );
    assert.equal(stop[0], 3);
    const stopped = await state();
    assert.equal(stopped['charging.energy'], 8);
    assert.equal(stopped['charging.charging'], false);
  });

  it('answers schema-invalid frames with the CALLERROR the specification names, changing nothing', async () => {
    const before = await state();
    const cases: Array<[string, string]> = [
      ['not json at all', 'FormationViolation'],
      ['{"not": "an array"}', 'FormationViolation'],
      [
        '[2, "e1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "colour": "red"}]',
        'FormationViolation',
      ],
      [
        '[2, "e2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"}]',
        'PropertyConstraintViolation',
      ],
      [
        '[2, "e3", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}]',
        'TypeConstraintViolation',
      ],
      ['[2, "e4", "StatusNotification", {"connectorId": 1, "status": "Available"}]', 'OccurenceConstraintViolation'],
      [
        '[2, "e5", "BootNotification", {"chargePointVendor": "AVendorNameLongerThanTwenty", "chargePointModel": "M"}]',
        'PropertyConstraintViolation',
      ],
      [
        '[2, "e6", "MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": "yesterday", "sampledValue": [{"value": "1"}]}]}]',
        'PropertyConstraintViolation',
      ],
      ['[2, "e7", "FlyToTheMoon", {}]', 'NotImplemented'],
    ];
    for (const [text, code] of cases) {
      const id = (() => {
        try {
          const parsed = JSON.parse(text) as unknown[];
          return Array.isArray(parsed) ? parsed[1] : '-1';
        } catch {
          return '-1';
        }
      })();
      const answer = await cp.raw(text, id);
      assert.equal(answer[0], 4, text);
      assert.equal(answer[2], code, text);
      assert.equal(typeof answer[3], 'string');
    }
    assert.deepEqual(await state(), before);
  });

  it('says in plain words that no car is plugged in when the charge point will not start charging', async () => {
    await cp.raw(
      '[2, "19223301", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}]',
    );
    assert.equal((await state())['charging.connected'], false);
    const res = await ocpp.api<{ commandId: string }>('/api/things/charger-cp-0001/actions/start', 'POST', {});
    // The command is accepted and then fails, as any command the device turns down does.
    assert.equal(res.status, 202);
    const { commandId } = res.body;
    // OCPP 1.6 gives a refusal no reason: the status is all the charge point says.
    await cp.answer('RemoteStartTransaction', { status: 'Rejected' });
    const failed = await eventually(async () => {
      const command = (await ocpp.api<{ status: string; error: string }>(`/api/commands/${commandId}`)).body;
      return command.status === 'failed' && command;
    });
    assert.equal(
      failed.error,
      'no car is plugged into Driveway: plug the cable into the car, then start charging again',
    );
  });

  it("reads the meter and the power from a charge point's per-phase samples: their sum alone, and the total when it also sends one", async () => {
    const res = await ocpp.api<{ id: string; ocpp: { path: string } }>('/api/chargers', 'POST', {
      chargePointId: 'CP-PHASES',
      name: 'Three-phase box',
      password: PASSWORD,
    });
    assert.equal(res.status, 201);
    const { id } = res.body;
    const phases = await OcppChargePoint.open(ocpp.wsUrl + res.body.ocpp.path, 'CP-PHASES', PASSWORD);
    const meterOf = async () => {
      const state = await ocpp.stateOf(id);
      const power = state['charging.power'];
      return {
        meter: state['sensor.energy'],
        charge: state['charging.energy'],
        power: typeof power === 'number' ? Math.round(power * 1000) / 1000 : power,
      };
    };
    try {
      await phases.raw(
        '[2, "p1", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"}]',
      );
      const start = await phases.raw(
        '[2, "p2", "StartTransaction", {"connectorId": 1, "idTag": "B4A63CDF", "meterStart": 30000, "timestamp": "2026-03-03T14:00:00Z"}]',
      );
      const { transactionId } = start[2] as { transactionId: number };
      // Only the phases' registers (kWh, phase to neutral): the meter is their sum, 31.0 kWh.
      await phases.raw(
        `[2, "p3", "MeterValues", {"connectorId": 1, "transactionId": ${transactionId}, "meterValue": [{"timestamp": "2026-03-03T14:10:00Z", "sampledValue": [{"value": "10.5", "measurand": "Energy.Active.Import.Register", "phase": "L1-N", "unit": "kWh"}, {"value": "10.25", "measurand": "Energy.Active.Import.Register", "phase": "L2-N", "unit": "kWh"}, {"value": "10.25", "measurand": "Energy.Active.Import.Register", "phase": "L3-N", "unit": "kWh"}, {"value": "3680", "measurand": "Power.Active.Import", "phase": "L1-N", "unit": "W"}, {"value": "3.7", "measurand": "Power.Active.Import", "phase": "L2-N", "unit": "kW"}, {"value": "3660", "measurand": "Power.Active.Import", "phase": "L3-N", "unit": "W"}]}]}]`,
      );
      // Power too: only the phases' (one in kW), so their sum, 11.04 kW.
      assert.deepEqual(await meterOf(), { meter: 31, charge: 1, power: 11.04 });
      // The total (Wh) with its phases (Wh, no unit said): the total is the meter, the phases are parts of it.
      await phases.raw(
        `[2, "p4", "MeterValues", {"connectorId": 1, "transactionId": ${transactionId}, "meterValue": [{"timestamp": "2026-03-03T14:20:00Z", "sampledValue": [{"value": "11000", "measurand": "Energy.Active.Import.Register", "phase": "L1"}, {"value": "32000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}, {"value": "10500", "measurand": "Energy.Active.Import.Register", "phase": "L2"}, {"value": "10500", "measurand": "Energy.Active.Import.Register", "phase": "L3"}, {"value": "3600", "measurand": "Power.Active.Import", "phase": "L1", "unit": "W"}, {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"}, {"value": "3600", "measurand": "Power.Active.Import", "phase": "L2", "unit": "W"}]}]}]`,
      );
      // The total power (7.2 kW, two phases' worth) with its phases: the total, never a phase's part.
      assert.deepEqual(await meterOf(), { meter: 32, charge: 2, power: 7.2 });
      // Phases in a MeterValue of their own again, now in Wh: 33.0 kWh, never back to one phase's part.
      await phases.raw(
        `[2, "p5", "MeterValues", {"connectorId": 1, "transactionId": ${transactionId}, "meterValue": [{"timestamp": "2026-03-03T14:30:00Z", "sampledValue": [{"value": "11500", "measurand": "Energy.Active.Import.Register", "phase": "L1", "unit": "Wh"}, {"value": "10750", "measurand": "Energy.Active.Import.Register", "phase": "L2", "unit": "Wh"}, {"value": "10750", "measurand": "Energy.Active.Import.Register", "phase": "L3", "unit": "Wh"}]}]}]`,
      );
      // No power in this MeterValue: the last stands.
      assert.deepEqual(await meterOf(), { meter: 33, charge: 3, power: 7.2 });
      // A phase named twice (L1 and L1-N) counts once, and a line-to-line value not at all: 34.0 kWh.
      await phases.raw(
        `[2, "p6", "MeterValues", {"connectorId": 1, "transactionId": ${transactionId}, "meterValue": [{"timestamp": "2026-03-03T14:40:00Z", "sampledValue": [{"value": "11.6", "measurand": "Energy.Active.Import.Register", "phase": "L1", "unit": "kWh"}, {"value": "11.6", "measurand": "Energy.Active.Import.Register", "phase": "L1-N", "unit": "kWh"}, {"value": "11.2", "measurand": "Energy.Active.Import.Register", "phase": "L2", "unit": "kWh"}, {"value": "11.2", "measurand": "Energy.Active.Import.Register", "phase": "L3-N", "unit": "kWh"}, {"value": "99", "measurand": "Energy.Active.Import.Register", "phase": "L1-L2", "unit": "kWh"}]}]}]`,
      );
      const last = await meterOf();
      assert.equal(Math.round((last.meter as number) * 1000) / 1000, 34);
    } finally {
      await phases.close();
    }
  });
});
