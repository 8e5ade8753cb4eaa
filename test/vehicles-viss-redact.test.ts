import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { SystemClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger, type LogLine } from '../src/core/log.ts';
import { eventually } from './helpers/hub-process.ts';
import { type ApiAnswer, startVehicleHub } from './helpers/vehicle-hub.ts';

/**
 * A car gateway that wants a user name and password in its address (`ws://user:secret@host/`):
 * the hub logs in with them, and shows the address with the password as `***` in every answer
 * and log line, as README promises for every address it prints.
 */

const USER = 'gateway';
const PASSWORD = 'hunter2-secret';

/** A VISS gateway that refuses an upgrade without its Basic credentials, and knows no signal. */
async function startGuardedGateway(): Promise<{ port: number; logins: string[]; close(): Promise<void> }> {
  const logins: string[] = [];
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    handleProtocols: (offered) => [...offered][0],
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      const given = String(info.req.headers.authorization ?? '');
      logins.push(given);
      done(given === expected, 401);
    },
  });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (ws) => {
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      const error = { number: 404, reason: 'unavailable_data', message: 'not on this car' };
      ws.send(JSON.stringify({ action: m.action, requestId: m.requestId, error, ts: new Date().toISOString() }));
    });
  });
  return {
    port: (server.address() as { port: number }).port,
    logins,
    async close() {
      for (const client of server.clients) client.terminate();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('vehicles: a VISS address with a password', () => {
  let gateway: Awaited<ReturnType<typeof startGuardedGateway>>;
  let hub: Hub;
  let api: (path: string, init?: RequestInit) => Promise<ApiAnswer>;
  const lines: LogLine[] = [];
  let address = '';
  let shown = '';

  before(async () => {
    gateway = await startGuardedGateway();
    address = `ws://${USER}:${PASSWORD}@127.0.0.1:${gateway.port}/`;
    shown = `ws://${USER}:***@127.0.0.1:${gateway.port}/`;
    ({ hub, api } = await startVehicleHub({
      clock: new SystemClock(),
      viss: address,
      log: createLogger({ level: 'debug', sink: (line) => lines.push(line) }),
    }));
  });

  after(async () => {
    await hub?.stop();
    await gateway?.close();
  });

  it('logs in with the password it was given', async () => {
    await eventually(async () => (await api('/api/vehicles/car')).body.connected === true, {
      what: 'the car to be connected',
    });
    assert.ok(gateway.logins.length > 0);
  });

  it('shows the address with the password as *** in every answer', async () => {
    const one = await api('/api/vehicles/car');
    assert.equal(one.status, 200);
    assert.equal(one.body.viss, shown);
    const list = await fetch(`${hub.httpUrl}/api/vehicles`, { headers: { authorization: `Bearer ${hub.ownerToken}` } });
    const listed = (await list.json()) as Array<{ id: string; viss: string }>;
    assert.equal(listed.find((vehicle) => vehicle.id === 'car')?.viss, shown);
    const repointed = await api('/api/vehicles/car', { method: 'PATCH', body: JSON.stringify({ viss: address }) });
    assert.equal(repointed.status, 200);
    assert.equal(repointed.body.viss, shown);
    const attached = await api('/api/vehicles', {
      method: 'POST',
      body: JSON.stringify({ name: 'Second car', viss: address }),
    });
    assert.equal(attached.status, 201);
    assert.equal(attached.body.viss, shown);
    for (const answer of [one, repointed, attached]) assert.ok(!JSON.stringify(answer.body).includes(PASSWORD));
    assert.ok(!JSON.stringify(listed).includes(PASSWORD));
    // Re-pointed at the same address, it still logs in with the password (not with `***`).
    await eventually(async () => (await api('/api/vehicles/car')).body.connected === true, {
      what: 'the re-pointed car to be connected',
    });
  });

  it('does not echo the password of an address it refuses', async () => {
    const refused = await api('/api/vehicles', {
      method: 'POST',
      body: JSON.stringify({ name: 'Bad port', viss: `ws://${USER}:${PASSWORD}@127.0.0.1:99999/` }),
    });
    assert.equal(refused.status, 400);
    const message = String((refused.body.error as { message: string }).message);
    assert.ok(!message.includes(PASSWORD), message);
    assert.match(message, /gateway:\*\*\*@127\.0\.0\.1:99999/);
  });

  it('keeps the password out of the log', () => {
    const connected = lines.filter((line) => line.message === 'connected to vehicle');
    assert.ok(connected.length > 0, 'the connection is logged');
    assert.equal(connected[0].fields?.url, shown);
    const leaks = lines.filter((line) => JSON.stringify(line).includes(PASSWORD));
    assert.deepEqual(leaks, []);
  });
});
