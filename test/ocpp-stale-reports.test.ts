import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { EnergyService } from '../src/energy/index.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * A charge point that queued messages while offline sends them late, with its own timestamps: a
 * status from an hour ago must not replace the status it reported since, neither on the hub nor in
 * its history, nor after a restart. Real OCPP 1.6J frames over a real WebSocket, a real hub on
 * SQLite, stopped and started again on the same data folder.
 */

const PASSWORD = 'Stale-Reports-Key-0123456789';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The charge point's side: literal OCPP-J CALL frames, and the CALLRESULT each is answered with. */
class ChargePoint {
  private readonly received: unknown[][] = [];
  private next = 1;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => this.received.push(JSON.parse(String(data)) as unknown[]));
  }

  static async connect(url: string, id: string): Promise<ChargePoint> {
    const socket = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, ['ocpp1.6'], {
        headers: { authorization: `Basic ${Buffer.from(`${id}:${PASSWORD}`).toString('base64')}` },
      });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return new ChargePoint(socket);
  }

  async call(action: string, payload: Record<string, unknown>): Promise<unknown> {
    const id = `m${this.next++}`;
    this.socket.send(JSON.stringify([2, id, action, payload]));
    const answer = await eventually(() => this.received.find((f) => f[1] === id), { what: `the answer to ${action}` });
    assert.equal(answer[0], 3, `${action} was answered with ${JSON.stringify(answer)}`);
    return answer[2];
  }

  status(status: string, at: number) {
    const timestamp = new Date(at).toISOString();
    return this.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status, timestamp });
  }

  powerW(watts: number, at: number) {
    return this.call('MeterValues', {
      connectorId: 1,
      meterValue: [
        {
          timestamp: new Date(at).toISOString(),
          sampledValue: [{ value: String(watts), measurand: 'Power.Active.Import', unit: 'W' }],
        },
      ],
    });
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

describe('OCPP: a message the charge point queued while offline, sent after a newer one', () => {
  const clock = new VirtualClock(Date.parse('2026-03-10T12:00:00Z'));
  let hub: Hub | undefined;
  let cp: ChargePoint | undefined;

  const startHub = async (dataDir: string) => {
    const started = new Hub({
      dataDir,
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: 'silent' }),
    }).use(new EnergyService({ mqttChargers: false }));
    await started.start();
    return started;
  };
  const api = async (path: string, init: RequestInit = {}) => {
    const running = hub as Hub;
    const res = await fetch(running.httpUrl + path, {
      ...init,
      headers: {
        authorization: `Bearer ${running.ownerToken}`,
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.ok(res.ok, `${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const state = async () => (await api('/api/things/charger-cp-h')).state as Record<string, unknown>;
  const statusHistory = async () =>
    ((await api('/api/things/charger-cp-h/history?property=charging.status')).points as { value: unknown }[]).map(
      (p) => p.value,
    );

  after(async () => {
    await cp?.close();
    await hub?.stop();
  });

  it('Available now, then Faulted stamped an hour ago: the hub, its history and a restarted hub say Available', async () => {
    const dataDir = await tempDir();
    hub = await startHub(dataDir);
    const registered = await api('/api/chargers', {
      method: 'POST',
      body: JSON.stringify({ chargePointId: 'CP-H', name: 'Driveway', password: PASSWORD }),
    });
    const path = (registered.ocpp as { path: string }).path;
    cp = await ChargePoint.connect(hub.httpUrl.replace('http', 'ws') + path, 'CP-H');
    await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'SingleSocketCharger' });
    const now = clock.now();
    await cp.status('Available', now - 2 * HOUR);
    assert.equal((await state())['charging.status'], 'Available');

    // Back online: its word now, then what it had queued from an hour ago.
    await cp.status('Available', now);
    await cp.status('Faulted', now - HOUR);
    await cp.powerW(7000, now - 30 * MINUTE);
    const live = await state();
    assert.equal(live['charging.status'], 'Available', "the charge point's latest word");
    assert.equal(live['charging.power'], 0, 'no power while Available');

    // The history route commits what is buffered before it reads.
    assert.deepEqual(await statusHistory(), ['Available'], 'no Faulted row in the past');

    await cp.close();
    await hub.stop();
    hub = await startHub(dataDir);
    const restarted = await state();
    assert.equal(restarted['charging.status'], 'Available', 'after a restart too');
    assert.equal(restarted['charging.power'], 0);
    assert.deepEqual(await statusHistory(), ['Available']);
  });
});
