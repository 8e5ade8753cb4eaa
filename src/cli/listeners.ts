/**
 * Where `triad start` will listen, tried before the hub starts. The hub's own checks come too
 * late for these: it tries its HTTP and MQTT ports (and so their hosts) before it takes the data
 * folder, but not a port of 0, and each port alone, so a bad host on port 0 or two of its servers
 * on one port were found only when the server bound, after its store and owner token were written.
 */

import { createServer, isIPv4 } from 'node:net';
import { ConfigError } from './settings.ts';

/** One server of the hub, as the user set it (or by its default), for checkPortsApart. */
export interface Listener {
  /** What listens, as an error names it: "the HTTP server". */
  what: string;
  /** The flag or config key that set its port; undefined when it listens on its default. */
  portFrom?: string;
  /** The flag that moves it, named when it is its default port that is in the way. */
  flag: string;
  port: number;
  /** The address it binds, as checkListenAddress found it (0.0.0.0 when none was given). */
  address: string;
}

const NOT_RESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME']);

/**
 * Binds a throwaway server to `host` on a free port, as the hub will bind it (a name looked up the
 * same way), and returns the address it got, so a name that does not resolve or an address of
 * another machine is refused naming `from` (the flag or config key). The port is not tried here:
 * the hub says which port is taken, and still takes a free one when its default MQTT port is.
 */
export async function checkListenAddress(host: string, from: string): Promise<string> {
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(0, host, resolve);
    });
    const bound = probe.address();
    return typeof bound === 'object' && bound ? bound.address : host;
  } catch (error) {
    throw new ConfigError(`${from}: ${whyNotHere(host, error as NodeJS.ErrnoException)}`);
  } finally {
    if (probe.listening) await new Promise((resolve) => probe.close(resolve));
  }
}

function whyNotHere(host: string, error: NodeJS.ErrnoException): string {
  const code = error.code ?? error.message;
  if (NOT_RESOLVED.has(code)) return `${host} does not resolve to an address (${code})`;
  if (code === 'EADDRNOTAVAIL')
    return `${host} is not an address of this machine (${code}); 0.0.0.0 listens on all of them`;
  return `cannot listen on ${host} (${code})`;
}

/** Refuses two of the hub's servers on one port (0 is a free port each) when their addresses clash. */
export function checkPortsApart(listeners: Listener[]): void {
  for (const [i, a] of listeners.entries()) {
    for (const b of listeners.slice(i + 1)) {
      if (a.port !== 0 && a.port === b.port && clash(a.address, b.address)) throw new ConfigError(samePort(a, b));
    }
  }
}

/**
 * Whether two binds of one port take the same socket: the same address, or a wildcard that
 * covers the other (:: takes IPv4 as well, as Node binds it; 0.0.0.0 every IPv4 address).
 */
function clash(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  return (a === '0.0.0.0' && isIPv4(b)) || (b === '0.0.0.0' && isIPv4(a));
}

function samePort(a: Listener, b: Listener): string {
  if (a.portFrom && b.portFrom)
    return `${both(a.portFrom, b.portFrom)} are both ${a.port}: ${a.what} and ${b.what} need a port each`;
  // The two defaults differ, so one of the two was given.
  const [given, byDefault] = a.portFrom ? [a, b] : [b, a];
  return (
    `${given.portFrom} is ${a.port}, the port of ${byDefault.what} by default; ` +
    `choose another, or move ${byDefault.what} with ${byDefault.flag}`
  );
}

/** Two settings' names, with the config file named once when both come from it. */
function both(a: string, b: string): string {
  const inFile = / in config file .*$/.exec(a)?.[0];
  return inFile && b.endsWith(inFile) ? `${a.slice(0, -inFile.length)} and ${b}` : `${a} and ${b}`;
}
