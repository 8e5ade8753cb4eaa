import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { VirtualClock } from '../src/core/clock.ts';
import { tempDir } from './helpers/hub-process.ts';
import { type OcppChargePoint, startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * A charge point that queued messages while offline sends them late, with its own timestamps: a
 * status from an hour ago must not replace the status it reported since, neither on the hub nor in
 * its history, nor after a restart. Real OCPP 1.6J frames over a real WebSocket, a real hub on
 * SQLite, stopped and started again on the same data folder.
 */

const PASSWORD = 'Stale-Reports-Key-0123456789';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A StatusNotification of connector 1, stamped `at`. */
const status = (cp: OcppChargePoint, status: string, at: number) =>
  cp.call('StatusNotification', {
    connectorId: 1,
    errorCode: 'NoError',
    status,
    timestamp: new Date(at).toISOString(),
  });

/** MeterValues with the power alone (W), stamped `at`. */
const powerW = (cp: OcppChargePoint, watts: number, at: number) =>
  cp.call('MeterValues', {
    connectorId: 1,
    meterValue: [
      {
        timestamp: new Date(at).toISOString(),
        sampledValue: [{ value: String(watts), measurand: 'Power.Active.Import', unit: 'W' }],
      },
    ],
  });

describe('OCPP: a message the charge point queued while offline, sent after a newer one', () => {
  const clock = new VirtualClock(Date.parse('2026-03-10T12:00:00Z'));
  let ocpp: Awaited<ReturnType<typeof startOcppHub>> | undefined;
  let cp: OcppChargePoint | undefined;

  const api = async (path: string) => {
    const { status, body } = await (ocpp as NonNullable<typeof ocpp>).api(path);
    assert.ok(status >= 200 && status < 300, `${path}: ${status} ${JSON.stringify(body)}`);
    return body;
  };
  const state = async () => (await api('/api/things/charger-cp-h')).state as Record<string, unknown>;
  const statusHistory = async () =>
    ((await api('/api/things/charger-cp-h/history?property=charging.status')).points as { value: unknown }[]).map(
      (p) => p.value,
    );

  after(async () => {
    await cp?.close();
    await ocpp?.hub.stop();
  });

  it('Available now, then Faulted stamped an hour ago: the hub, its history and a restarted hub say Available', async () => {
    const dataDir = await tempDir();
    ocpp = await startOcppHub(clock, [], { dataDir });
    ({ cp } = await ocpp.connect('CP-H', PASSWORD));
    const now = clock.now();
    await status(cp, 'Available', now - 2 * HOUR);
    assert.equal((await state())['charging.status'], 'Available');

    // Back online: its word now, then what it had queued from an hour ago.
    await status(cp, 'Available', now);
    await status(cp, 'Faulted', now - HOUR);
    await powerW(cp, 7000, now - 30 * MINUTE);
    const live = await state();
    assert.equal(live['charging.status'], 'Available', "the charge point's latest word");
    assert.equal(live['charging.power'], 0, 'no power while Available');

    // The history route commits what is buffered before it reads.
    assert.deepEqual(await statusHistory(), ['Available'], 'no Faulted row in the past');

    await cp.close();
    await ocpp.hub.stop();
    ocpp = await startOcppHub(clock, [], { dataDir });
    const restarted = await state();
    assert.equal(restarted['charging.status'], 'Available', 'after a restart too');
    assert.equal(restarted['charging.power'], 0);
    assert.deepEqual(await statusHistory(), ['Available']);
  });
});
