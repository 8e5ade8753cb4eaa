import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { chooseSubprotocol } from '../src/adapters/viss/server.ts';
import { VirtualClock } from '../src/core/clock.ts';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * WebSocket upgrades as a charger or a VISS client makes them, with `ws` against a real hub: the
 * hub chooses the subprotocol it speaks from the client's offer, and an upgrade nobody serves is
 * refused with an HTTP answer rather than upgraded and closed.
 */

const PASSWORD = 'Sup3rSecretKey-0123456789';
const CHARGER = { authorization: `Basic ${Buffer.from(`CP-A:${PASSWORD}`).toString('base64')}` };

type Upgrade =
  | { opened: true; socket: WebSocket; protocol: string }
  | { opened: false; status: number; body: string; headers: Record<string, unknown> };

/** Opens `url` offering `protocols`: the open socket, or the HTTP answer that refused it. */
function upgrade(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers });
    socket.once('open', () => resolve({ opened: true, socket, protocol: socket.protocol }));
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      response.on('end', () =>
        resolve({ opened: false, status: response.statusCode ?? 0, body, headers: response.headers }),
      );
    });
    socket.once('error', reject);
  });
}

/** The first message a socket receives, or its close (code) if it closes first. */
function firstMessageOrClose(socket: WebSocket): Promise<string | number> {
  return new Promise((resolve) => {
    socket.once('message', (data) => resolve(String(data)));
    socket.once('close', (code) => resolve(code));
  });
}

describe('WebSocket upgrades', () => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 3, 12));
  let hub: Hub;
  let base: string;
  const opened: WebSocket[] = [];

  before(async () => {
    // The whole hub as users run it: the dashboard's catch-all is what took `/ocpp` and the like.
    hub = createTriad({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      clock,
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    base = hub.httpUrl.replace('http', 'ws');
    const res = await fetch(`${hub.httpUrl}/api/chargers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ chargePointId: 'CP-A', name: 'Driveway', password: PASSWORD }),
    });
    assert.equal(res.status, 201);
  });

  after(async () => {
    for (const socket of opened) socket.terminate();
    await hub.stop();
  });

  const open = async (url: string, protocols: string[], headers: Record<string, string> = {}) => {
    const result = await upgrade(url, protocols, headers);
    if (result.opened) opened.push(result.socket);
    return result;
  };

  it('speaks ocpp1.6 to a charger that offers OCPP 2.0.1 first', async () => {
    const result = await open(`${base}/ocpp/CP-A`, ['ocpp2.0.1', 'ocpp1.6'], CHARGER);
    assert.ok(result.opened, `refused: ${JSON.stringify(result)}`);
    assert.equal(result.protocol, 'ocpp1.6');
    // And keeps the connection: a Heartbeat is answered, not closed with 1002.
    result.socket.send('[2, "hb-1", "Heartbeat", {}]');
    const answer = await firstMessageOrClose(result.socket);
    assert.equal(typeof answer, 'string', `closed with ${answer}`);
    assert.deepEqual(JSON.parse(answer as string).slice(0, 2), [3, 'hb-1']);
  });

  it('refuses, before the upgrade, a charger that offers no OCPP it speaks', async () => {
    const result = await open(`${base}/ocpp/CP-A`, ['ocpp2.0.1'], CHARGER);
    assert.equal(result.opened, false);
    assert.ok(!result.opened);
    assert.equal(result.status, 400);
    const { error } = JSON.parse(result.body) as { error: { code: string; message: string } };
    assert.equal(error.code, 'unsupported_subprotocol');
    assert.match(error.message, /ocpp1\.6/);
  });

  it('picks VISSv3 over VISSv2 wherever the client offers them, as the simulated car does', async () => {
    for (const offer of [
      ['foo', 'VISSv2'],
      ['VISSv2', 'VISSv3'],
      ['VISSv3', 'VISSv2'],
    ]) {
      const result = await open(`${base}/viss/car`, offer);
      assert.ok(result.opened, `${offer}: refused: ${JSON.stringify(result)}`);
      assert.equal(result.protocol, chooseSubprotocol(new Set(offer)), String(offer));
      // A session runs: the socket is not closed with 1002 for its subprotocol.
      result.socket.send(JSON.stringify({ action: 'get', path: 'Vehicle.Speed', requestId: '1' }));
      const answer = await firstMessageOrClose(result.socket);
      assert.equal(typeof answer, 'string', `${offer}: closed with ${answer}`);
    }
  });

  it('still takes a VISS client that offers no subprotocol, and refuses one that offers only others', async () => {
    const plain = await open(`${base}/viss/car`, []);
    assert.ok(plain.opened);
    assert.equal(plain.protocol, '');
    const foreign = await open(`${base}/viss/car`, ['foo', 'VISSv4']);
    assert.ok(!foreign.opened);
    assert.equal(foreign.status, 400);
    assert.match(foreign.body, /VISSv3 or VISSv2/);
  });

  it('answers 404, naming the path, to an upgrade where no WebSocket is', async () => {
    for (const path of ['/ocpp', '/ocpp/', '/ocpp/CP-A/extra', '/nothing-here', '/viss/', '/api/health']) {
      const result = await open(`${base}${path}`, ['ocpp1.6']);
      assert.ok(!result.opened, `${path} was upgraded`);
      assert.equal(result.status, 404, path);
      const { error } = JSON.parse(result.body) as { error: { code: string; message: string } };
      assert.equal(error.code, 'not_found');
      assert.ok(error.message.includes(path), `${path}: ${error.message}`);
      assert.match(error.message, /\/ocpp\/\{chargePointId\}/);
    }
  });

  it('still opens the stream, which has no subprotocol of its own', async () => {
    const result = await open(`${base}/api/stream?token=${hub.ownerToken}`, []);
    assert.ok(result.opened, `refused: ${JSON.stringify(result)}`);
  });
});
