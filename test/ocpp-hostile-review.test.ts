import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ocppMeta } from '../src/adapters/ocpp/central-system.ts';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService } from '../src/energy/index.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * What a hostile reviewer found driving the OCPP 1.6J central system with a real charge point
 * over a real WebSocket: meter values that are no numbers, a StopTransaction for another
 * transaction, a charge that could not be stopped after a restart, a status for a connector the
 * charger does not have, 31 February, and a vendor string full of control and bidi characters.
 * Every frame is the charge point's literal JSON; the answers are read off the socket.
 */

const PASSWORD = 'Hostile-Review-0123456789';
const MINUTE = 60_000;

/** A registered charge point's end of one WebSocket. */
class ChargePoint {
  private readonly inbox: unknown[][] = [];
  private sent = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => this.inbox.push(JSON.parse(String(data)) as unknown[]));
  }

  static open(url: string, id: string): Promise<ChargePoint> {
    const auth = Buffer.from(`${id}:${PASSWORD}`).toString('base64');
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, ['ocpp1.6'], { headers: { authorization: `Basic ${auth}` } });
      socket.once('open', () => resolve(new ChargePoint(socket)));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }

  /** Sends a CALL; answers the whole frame that answers it (a CALLRESULT or a CALLERROR). */
  async send(action: string, payload: Record<string, unknown>): Promise<unknown[]> {
    const id = `hr${++this.sent}`;
    this.socket.send(JSON.stringify([2, id, action, payload]));
    return this.take((frame) => (frame[0] === 3 || frame[0] === 4) && frame[1] === id, `the answer to ${action}`);
  }

  /** Sends a CALL that must be answered with a CALLRESULT; answers its payload. */
  async call(action: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    const answer = await this.send(action, payload);
    assert.equal(answer[0], 3, `${action} was answered ${JSON.stringify(answer)}`);
    return answer[2] as Record<string, unknown>;
  }

  /**
   * Waits for a CALL from the hub (the one `which` picks) and answers it with `answer`; resolves
   * with its payload. The energy service's own calls (current limits on its ticks) stay unanswered.
   */
  async answer(
    action: string,
    answer: Record<string, unknown>,
    which: (payload: Record<string, unknown>) => boolean = () => true,
  ): Promise<Record<string, unknown>> {
    const call = await this.take(
      (frame) => frame[0] === 2 && frame[2] === action && which(frame[3] as Record<string, unknown>),
      `a ${action} from the hub`,
    );
    this.socket.send(JSON.stringify([3, call[1], answer]));
    return call[3] as Record<string, unknown>;
  }

  private take(match: (frame: unknown[]) => boolean, what: string): Promise<unknown[]> {
    return eventually(
      () => {
        const index = this.inbox.findIndex(match);
        return index >= 0 && this.inbox.splice(index, 1)[0];
      },
      { what },
    );
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

/** Picks the SetChargingProfile that limits the current to `amps`. */
const limitOf = (amps: number) => (payload: Record<string, unknown>) =>
  JSON.stringify(payload).includes(`"chargingSchedulePeriod":[{"startPeriod":0,"limit":${amps}}]`);

describe('OCPP 1.6J defects a hostile reviewer found', () => {
  const clock = new VirtualClock(Date.parse('2026-03-05T08:00:00Z'));
  const warnings: string[] = [];
  let dataDir: string;
  let hub: Hub;
  const at = () => new Date(clock.now()).toISOString();

  const startHub = async () => {
    hub = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({
        level: 'warn',
        sink: (line) => warnings.push(`${line.message} ${JSON.stringify(line.fields ?? {})}`),
      }),
    }).use(new EnergyService({ mqttChargers: false }));
    await hub.start();
  };
  const api = async <T = Record<string, unknown>>(path: string, method = 'GET', body?: unknown) => {
    const res = await fetch(hub.httpUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${hub.ownerToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as T };
  };
  const stateOf = async (id: string) => (await api<{ state: Record<string, unknown> }>(`/api/things/${id}`)).body.state;
  /** The charger's one charging session, once it has ended. */
  const endedSession = (charger: string) =>
    eventually(async () => {
      const { body } = await api<Array<{ charger: string; energyKwh: number; open: boolean }>>('/api/energy/sessions');
      const list = body.filter((s) => s.charger === charger);
      return list.length === 1 && !list[0].open && list[0];
    });
  const status = (cp: ChargePoint, status: string, connectorId = 1) =>
    cp.call('StatusNotification', { connectorId, errorCode: 'NoError', status, timestamp: at() });
  /** Registers a charge point and connects it, as a charger with a car plugged in. */
  const plugIn = async (chargePointId: string): Promise<{ id: string; cp: ChargePoint }> => {
    const created = await api<{ id: string; ocpp: { path: string } }>('/api/chargers', 'POST', {
      chargePointId,
      name: chargePointId,
      password: PASSWORD,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const cp = await ChargePoint.open(hub.httpUrl.replace('http', 'ws') + created.body.ocpp.path, chargePointId);
    await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
    await status(cp, 'Preparing');
    return { id: created.body.id, cp };
  };
  const start = async (cp: ChargePoint, meterStart: number) =>
    (await cp.call('StartTransaction', { connectorId: 1, idTag: 'B4A63CDF', meterStart, timestamp: at() }))
      .transactionId as number;
  const energy = (cp: ChargePoint, transactionId: number, value: string) =>
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
  const unplug = async (cp: ChargePoint, transactionId: number, meterStop: number) => {
    await cp.call('StopTransaction', { transactionId, meterStop, timestamp: at(), reason: 'EVDisconnected' });
    await status(cp, 'Available');
  };

  before(async () => {
    dataDir = await tempDir();
    await startHub();
  });

  after(async () => {
    await hub.stop();
  });

  it('passes over a meter value that is not a decimal number, rather than reading it as 0 or as hex', async () => {
    const { id, cp } = await plugIn('CP-A');
    try {
      const transactionId = await start(cp, 10_000);
      for (const value of ['12000', '', '0x3000', '1e4', ' 12100', '12500']) {
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
    } finally {
      await cp.close();
    }
  });

  it('confirms a StopTransaction for a transaction that is not running, and changes nothing of the one that is', async () => {
    const { id, cp } = await plugIn('CP-B');
    try {
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
    } finally {
      await cp.close();
    }
  });

  it('ignores the status of a connector the charger does not have, answering it and logging why', async () => {
    const { id, cp } = await plugIn('CP-D');
    try {
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
      // Connector 0, the whole charge point, still counts.
      await status(cp, 'Faulted', 0);
      assert.equal((await stateOf(id))['charging.status'], 'Faulted');
    } finally {
      await cp.close();
    }
  });

  it('refuses a date the calendar does not have with a PropertyConstraintViolation, storing nothing', async () => {
    const { id, cp } = await plugIn('CP-E');
    try {
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
    } finally {
      await cp.close();
    }
  });

  it('cleans control and hidden characters out of what a charge point tells about itself', async () => {
    const { id, cp } = await plugIn('CP-F');
    try {
      await cp.call('BootNotification', {
        chargePointVendor: '\u202eEvil\u0000<b>',
        chargePointModel: 'M\u200b',
        firmwareVersion: '\u001b[31m1.2\u2066',
      });
      const chargers = (await api<Array<{ id: string; vendor: string; model: string }>>('/api/chargers')).body;
      const charger = chargers.find((c) => c.id === id);
      assert.equal(charger?.vendor, 'Evil <b>');
      assert.equal(charger?.model, 'M');
      const thing = hub.core.getThing(hub.householdId, id);
      // A terminal escape loses its ESC, so it can no longer recolour the log.
      assert.equal(thing && ocppMeta(thing)?.firmware, '[31m1.2');
    } finally {
      await cp.close();
    }
  });

  it('stops and limits a charge that was running when the hub restarted, before any MeterValues', async () => {
    const { id, cp } = await plugIn('CP-C');
    const transactionId = await start(cp, 1_000);
    await status(cp, 'Charging');
    await hub.stop();
    await cp.close();

    await clock.advance(2 * MINUTE);
    await startHub();
    // The charge point comes back and says only that it is charging, as after a network outage.
    const again = await ChargePoint.open(`${hub.httpUrl.replace('http', 'ws')}/ocpp/CP-C`, 'CP-C');
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
