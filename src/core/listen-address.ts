import { isIPv6 } from 'node:net';

/**
 * How a client on this machine names a server that listens on `host`, in a URL: a wildcard
 * (0.0.0.0, ::) is reached on loopback, an IPv6 address goes in brackets, a name as it is. A
 * server bound to one address (a LAN address, ::1) is not on 127.0.0.1, so the hub reaches its own
 * broker, and prints its own addresses, where they listen.
 */
export function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return isIPv6(host) ? `[${host}]` : host;
}
