import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { selfSignedCertificate } from './helpers/certificate.ts';
import { tempDir } from './helpers/hub-process.ts';

/**
 * Behind a reverse proxy that ends TLS, the browser's connection is https though the hub's own is
 * plain http: the hub sent Strict-Transport-Security only with its own certificate, so a
 * household behind Caddy or nginx never got it. It now sends the same header when a proxy it
 * trusts (`--trust-proxy`) says the request came over https, and still never on plain http, nor
 * for an X-Forwarded-Proto from a peer it does not trust. Real in-process hubs and real HTTP(S)
 * clients; the test plays the proxy, from 127.0.0.1.
 */
describe('HSTS behind a trusted TLS-terminating proxy', () => {
  const hubs: Hub[] = [];
  let tlsHeader: string;

  const startHub = async (options: Partial<ConstructorParameters<typeof Hub>[0]> = {}) => {
    const hub = new Hub({
      dataDir: await tempDir('triad-hsts-'),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
      ...options,
    });
    hubs.push(hub);
    await hub.start();
    return hub;
  };

  /** The Strict-Transport-Security header of each path's answer, with `headers` sent. */
  const hsts = async (hub: Hub, headers: Record<string, string>) => {
    const found: Record<string, string | null> = {};
    for (const path of ['/api/things', '/api/health', '/']) {
      const res = await fetch(hub.httpUrl + path, {
        headers: { authorization: `Bearer ${hub.ownerToken}`, ...headers },
      });
      await res.arrayBuffer();
      found[path] = res.headers.get('strict-transport-security');
    }
    return found;
  };
  const everywhere = (value: string | null) => ({ '/api/things': value, '/api/health': value, '/': value });

  before(async () => {
    // What the hub sends with its own certificate: the header the proxied hub must send as well.
    const { certFile, keyFile } = await selfSignedCertificate();
    const tlsHub = await startHub({ tls: { cert: certFile, key: keyFile } });
    const ca = await readFile(certFile);
    tlsHeader = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(`${tlsHub.httpUrl}/api/health`, { ca }, (res) => {
        res.resume();
        resolve(String(res.headers['strict-transport-security']));
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(tlsHeader, /^max-age=\d+/);
  });

  after(async () => {
    for (const hub of hubs) await hub.stop();
  });

  it("sends it when a trusted proxy forwards https, and not on the proxy's plain http", async () => {
    const hub = await startHub({ http: { port: 0, host: '127.0.0.1', trustProxy: ['127.0.0.1'] } });
    assert.deepEqual(await hsts(hub, { 'x-forwarded-proto': 'https' }), everywhere(tlsHeader));
    assert.deepEqual(await hsts(hub, { 'x-forwarded-proto': 'http' }), everywhere(null));
    assert.deepEqual(await hsts(hub, {}), everywhere(null), 'no forwarded scheme: the connection is http');
  });

  it('never sends it for an X-Forwarded-Proto from a peer the hub does not trust', async () => {
    const stranger = await startHub({ http: { port: 0, host: '127.0.0.1', trustProxy: ['10.9.8.7'] } });
    assert.deepEqual(await hsts(stranger, { 'x-forwarded-proto': 'https' }), everywhere(null));
    const noProxies = await startHub();
    assert.deepEqual(await hsts(noProxies, { 'x-forwarded-proto': 'https' }), everywhere(null));
  });
});
