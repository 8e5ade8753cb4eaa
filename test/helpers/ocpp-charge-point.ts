import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { VirtualClock } from '../../src/core/clock.ts';
import { Hub, type HubOptions } from '../../src/core/hub.ts';
import { createLogger } from '../../src/core/log.ts';
import { EnergyService, type EnergyServiceOptions } from '../../src/energy/index.ts';
import { eventually, tempDir } from './hub-process.ts';
import { ownerFetch } from './owner-api.ts';

/**
 * A registered OCPP 1.6J charge point's end of one WebSocket, for tests: it sends literal OCPP-J
 * CALL frames and reads the hub's answers off the socket, so nothing of Triad's own OCPP code
 * takes part on this side.
 */
export class OcppChargePoint {
  private readonly inbox: unknown[][] = [];
  private sent = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => this.inbox.push(JSON.parse(String(data)) as unknown[]));
  }

  /** Connects as `id`, with HTTP Basic when a password is given, offering `protocols`. */
  static open(url: string, id: string, password?: string, protocols = ['ocpp1.6']): Promise<OcppChargePoint> {
    const headers =
      password === undefined ? {} : { authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` };
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, protocols, { headers });
      socket.once('open', () => resolve(new OcppChargePoint(socket)));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }

  /**
   * Sends a text frame as it is and answers the frame that answers `id` (a CALLRESULT or a
   * CALLERROR); `id` is the frame's own unique id unless given.
   */
  async raw(text: string, id = (JSON.parse(text) as unknown[])[1], what = 'the answer'): Promise<unknown[]> {
    this.socket.send(text);
    return this.take((frame) => (frame[0] === 3 || frame[0] === 4) && frame[1] === id, what);
  }

  /** Sends a CALL; answers the whole frame that answers it. */
  send(action: string, payload: Record<string, unknown>): Promise<unknown[]> {
    const id = `cp${++this.sent}`;
    return this.raw(JSON.stringify([2, id, action, payload]), id, `the answer to ${action}`);
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

/**
 * A hub for OCPP tests: on `clock`, with the energy service (sessions, modes; `energy` adds to its
 * options), its warnings and errors kept in `warnings`; in `dataDir` (a new one unless given, so a
 * test can start a hub again on the same), with `rateLimits` if given; with the API calls such
 * tests make and a way to put a registered, booted charge point on it.
 */
export async function startOcppHub(
  clock: VirtualClock,
  warnings: string[] = [],
  options: { dataDir?: string; rateLimits?: HubOptions['rateLimits']; energy?: EnergyServiceOptions } = {},
) {
  const hub = new Hub({
    dataDir: options.dataDir ?? (await tempDir()),
    http: { port: 0, host: '127.0.0.1' },
    mqtt: { port: 0, host: '127.0.0.1' },
    clock,
    log: createLogger({
      level: 'warn',
      sink: (line) => warnings.push(`${line.message} ${JSON.stringify(line.fields ?? {})}`),
    }),
    rateLimits: options.rateLimits,
  }).use(new EnergyService({ mqttChargers: false, ...options.energy }));
  await hub.start();
  const api = async <T = Record<string, unknown>>(path: string, method = 'GET', body?: unknown) => {
    const res = await ownerFetch(hub, path, method, body);
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as T };
  };
  return {
    hub,
    api,
    /** The hub's OCPP WebSocket address, up to the path. */
    wsUrl: hub.httpUrl.replace('http', 'ws'),
    stateOf: async (id: string) => (await api<{ state: Record<string, unknown> }>(`/api/things/${id}`)).body.state,
    /** Registers a charge point with a password, connects it and sends its BootNotification. */
    async connect(chargePointId: string, password: string): Promise<{ id: string; cp: OcppChargePoint }> {
      const created = await api<{ id: string; ocpp: { path: string } }>('/api/chargers', 'POST', {
        chargePointId,
        name: chargePointId,
        password,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const url = hub.httpUrl.replace('http', 'ws') + created.body.ocpp.path;
      const cp = await OcppChargePoint.open(url, chargePointId, password);
      await cp.call('BootNotification', { chargePointVendor: 'VendorX', chargePointModel: 'Wallbox' });
      return { id: created.body.id, cp };
    },
  };
}

/**
 * Runs `test` with a charge point that `connect` puts on the hub, and closes its socket however
 * the test ends.
 */
export async function withChargePoint<T extends { cp: OcppChargePoint }>(
  connect: Promise<T>,
  test: (connected: T) => Promise<void>,
): Promise<void> {
  const connected = await connect;
  try {
    await test(connected);
  } finally {
    await connected.cp.close();
  }
}
