import { createRequire } from 'node:module';
import { dirname } from 'node:path';

type Logger = ((...args: unknown[]) => void) & { namespace: string; enabled: boolean; extend: unknown };
type CreateDebug = ((namespace: string) => Logger) & { enabled(namespace: string): boolean };

/**
 * MQTT's packet parser and writer log through the `debug` package dozens of times per packet. A
 * disabled `debug` logger still gathers its arguments into an array before it finds out it is
 * off: at a few thousand reports a second that was about a twentieth of all the hub allocated,
 * and so of its garbage-collection pauses. This hands the MQTT libraries a logger that does
 * nothing for every namespace `DEBUG` does not switch on when they load; one that is on is the
 * real thing. Call it before `mqtt` is first imported (bin/triad.js does); anywhere else it is
 * harmless and changes nothing.
 */
export function quietDisabledDebugLoggers(): void {
  try {
    const require = createRequire(import.meta.url);
    const mqttDir = dirname(require.resolve('mqtt/package.json'));
    const packetDir = dirname(require.resolve('mqtt-packet/package.json', { paths: [mqttDir] }));
    const path = require.resolve('debug', { paths: [packetDir] });
    const real = require(path) as CreateDebug;
    const cached = require.cache[path];
    if (!cached || (real as { quiet?: boolean }).quiet) return;
    const quiet = ((namespace: string): Logger => {
      if (real.enabled(namespace)) return real(namespace);
      const off = (() => {}) as unknown as Logger;
      off.namespace = namespace;
      off.enabled = false;
      off.extend = (sub: string, delimiter = ':') => quiet(`${namespace}${delimiter}${sub}`);
      return off;
    }) as CreateDebug;
    Object.assign(quiet, real, { quiet: true, default: quiet, debug: quiet });
    cached.exports = quiet;
  } catch {
    // A layout this does not know: the libraries keep the real logger, which only costs speed.
  }
}
