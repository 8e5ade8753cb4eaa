import { type WebSocket, WebSocketServer } from 'ws';
import type { Clock } from '../../src/core/clock.ts';

/**
 * A car as a test scripts it: a bare VISS server on a loopback port that answers `get`,
 * `subscribe` and `set` from a table of values the test changes, stamps what it says with the
 * test's clock, and lets the test send the events, errors and dropped connections a real car's
 * gateway sends. What the hub asked of it is kept for the test to look at.
 */
export interface ScriptedCar {
  /** `ws://127.0.0.1:<port>/`, for `POST /api/vehicles {"viss"}`. */
  readonly url: string;
  /** The car's signals as it answers a `get` (VISS values are text); a path not here answers 404. */
  readonly values: Record<string, string>;
  /** Every `set` the hub sent, in order. */
  readonly sets: Array<{ path: string; value: unknown }>;
  /** Every `subscribe` the car granted, with the id it gave and when (the test's clock). */
  readonly subscribes: Array<{ path: string; id: string; at: number }>;
  /** Connections the car took. */
  readonly connections: number;
  /** While false, the car's gateway drops every new connection at once (out of reach). */
  reachable: boolean;
  /** The connection the hub holds now, if any. */
  readonly socket: WebSocket | null;
  /** Sends a message to the hub, stamped with the clock's time. */
  send(body: Record<string, unknown>): void;
  /** The id the car gave the newest subscription to `path`. */
  subscriptionOf(path: string): string | undefined;
  /** Drops the hub's connection, as a car that goes out of reach does. */
  drop(): void;
  close(): Promise<void>;
}

export interface ScriptedCarOptions {
  clock: Clock;
  values: Record<string, string>;
  /**
   * The id a granted subscription gets (`n` counts from 1): a counter by default; a car may also
   * name it by its path, or give one id to all.
   */
  subscriptionId?: (path: string, n: number) => string;
  /** Whether a subscription to a signal the car does not have is refused (404), as a car does; or granted. */
  refuseUnknownSubscriptions?: boolean;
  /** Called once a subscription is granted (a car that ends it at once, say). */
  onSubscribe?: (path: string, id: string) => void;
}

export async function startScriptedCar(options: ScriptedCarOptions): Promise<ScriptedCar> {
  const { clock, values } = options;
  const iso = (ms: number) => new Date(ms).toISOString();
  const sets: ScriptedCar['sets'] = [];
  const subscribes: ScriptedCar['subscribes'] = [];
  let socket: WebSocket | null = null;
  let connections = 0;
  let reachable = true;
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (offered) => [...offered][0] });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (ws) => {
    if (!reachable) {
      ws.terminate();
      return;
    }
    socket = ws;
    connections++;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      const reply = (body: Record<string, unknown>) =>
        ws.send(JSON.stringify({ action: m.action, requestId: m.requestId, ...body, ts: iso(clock.now()) }));
      const unavailable = { error: { number: 404, reason: 'unavailable_data', message: 'not on this car' } };
      if (m.action === 'get') {
        reply(
          values[m.path] !== undefined
            ? { data: { path: m.path, dp: { value: values[m.path], ts: iso(clock.now()) } } }
            : unavailable,
        );
      } else if (m.action === 'subscribe') {
        if (values[m.path] === undefined && options.refuseUnknownSubscriptions !== false) {
          reply(unavailable);
          return;
        }
        const id = (options.subscriptionId ?? ((_path, n) => String(n)))(m.path, subscribes.length + 1);
        subscribes.push({ path: m.path, id, at: clock.now() });
        reply({ subscriptionId: id });
        options.onSubscribe?.(m.path, id);
      } else if (m.action === 'set') {
        sets.push({ path: m.path, value: m.value });
        reply({});
      } else reply({});
    });
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    values,
    sets,
    subscribes,
    get connections() {
      return connections;
    },
    get reachable() {
      return reachable;
    },
    set reachable(value: boolean) {
      reachable = value;
    },
    get socket() {
      return socket;
    },
    send(body) {
      socket?.send(JSON.stringify({ ...body, ts: iso(clock.now()) }));
    },
    subscriptionOf(path) {
      return subscribes.filter((s) => s.path === path).at(-1)?.id;
    },
    drop() {
      socket?.terminate();
      socket = null;
    },
    async close() {
      for (const client of server.clients) client.terminate();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The VSS 6.0 paths of the signals the trip and charging tests drive a scripted car through. */
export const CAR_SIGNALS = {
  speed: 'Vehicle.Speed',
  moving: 'Vehicle.IsMoving',
  odometer: 'Vehicle.TraveledDistance',
  latitude: 'Vehicle.CurrentLocation.Latitude',
  longitude: 'Vehicle.CurrentLocation.Longitude',
  level: 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current',
  capacity: 'Vehicle.Powertrain.TractionBattery.NetCapacity',
  consumed: 'Vehicle.Powertrain.TractionBattery.AccumulatedConsumedEnergy',
  charging: 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging',
  charged: 'Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy',
};

/** A car parked at 52.0, 5.0 with 1,000 km on the clock and its battery at `level` %. */
export function parkedCarValues(level: string): Record<string, string> {
  const P = CAR_SIGNALS;
  return {
    [P.speed]: '0',
    [P.moving]: 'false',
    [P.odometer]: '1000000',
    [P.latitude]: '52.0',
    [P.longitude]: '5.0',
    [P.level]: level,
    [P.capacity]: '60',
    [P.consumed]: '100',
    [P.charging]: 'false',
    [P.charged]: '50',
  };
}

/**
 * The car's signals change: each goes into `values` and out to the hub as an event of the
 * subscription named by its path (the car's `subscriptionId: (path) => path`), stamped by `clock`.
 */
export function driveCar(
  car: ScriptedCar,
  values: Record<string, string>,
  clock: Clock,
  changes: Record<string, string>,
): void {
  const ts = new Date(clock.now()).toISOString();
  for (const [path, value] of Object.entries(changes)) {
    values[path] = value;
    car.send({ action: 'subscription', subscriptionId: path, data: { path, dp: { value, ts } } });
  }
}
