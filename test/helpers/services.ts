import { createConnection } from 'node:net';

/**
 * The machine's services, for tests that need the real thing. With CI=true a missing service is a
 * failure; elsewhere the test is skipped with a message naming the service.
 */
export const services = {
  pg: process.env.TRIAD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mqtt: process.env.TRIAD_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
  nats: process.env.TRIAD_TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
};

const probes = new Map<string, Promise<boolean>>();

function reachable(url: string): Promise<boolean> {
  const parsed = new URL(url);
  const port = Number(parsed.port);
  const host = parsed.hostname || '127.0.0.1';
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Resolves to `false` (run the test) when the service answers, or to a skip message when it
 * does not and CI is not set. Throws under CI, so a missing service fails the run.
 */
export async function needService(name: keyof typeof services): Promise<false | string> {
  const url = services[name];
  let probe = probes.get(url);
  if (!probe) {
    probe = reachable(url);
    probes.set(url, probe);
  }
  if (await probe) return false;
  const message = `${name} is not reachable at ${url}`;
  if (process.env.CI === 'true') throw new Error(`${message} (required when CI=true)`);
  return `skipped: ${message}`;
}
