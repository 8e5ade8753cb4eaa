import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import WebSocket from 'ws';
import { trustedProxies } from '../src/cli/settings.ts';
import { freePort, type HubProcess, startHubProcess, tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

const FROM_SOURCE = { env: { TRIAD_FROM_SOURCE: '1' } };

/**
 * Behind a reverse proxy that ends TLS (Caddy, nginx, Traefik) the hub sees the proxy's plain HTTP
 * connection: the dashboard's stream was refused (its Origin is https://, the hub compared with
 * http://), session cookies lacked Secure, and every sign-in came from the proxy's address, so one
 * stranger's failures locked out the household. `--trust-proxy` (config `http.trustProxy`) names
 * the proxies whose X-Forwarded-* headers say the client's scheme, host and address; anyone else's
 * are ignored, as every request's were before. Real hubs, started as a user starts them, and real
 * HTTP and WebSocket clients; the test itself plays the proxy, from 127.0.0.1.
 */

/** What a proxy in front of https://home.example.com adds to what it passes on. */
const FORWARDED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'home.example.com' };
const PAGE = 'https://home.example.com';

async function startHub(args: string[]): Promise<HubProcess> {
  const mqttPort = await freePort();
  return startHubProcess({
    args: ['--mqtt-port', String(mqttPort), '--mqtt-host', '127.0.0.1', '--log-level', 'warn', ...args],
    ...FROM_SOURCE,
  });
}

/** The upgrade's answer: opened (after a subscription was confirmed) or the status it was refused with. */
async function streamAnswer(hub: HubProcess, headers: Record<string, string>): Promise<'opened' | number> {
  const socket = new WebSocket(`${hub.url.replace('http', 'ws')}/api/stream`, { headers });
  return new Promise((resolve, reject) => {
    socket.once('open', () => socket.send(JSON.stringify({ type: 'subscribe', things: ['*'] })));
    socket.once('message', (data) => {
      socket.close();
      const message = JSON.parse(String(data)) as { type?: string };
      if (message.type === 'subscribed') resolve('opened');
      else reject(new Error(`unexpected first message ${String(data)}`));
    });
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    socket.once('error', reject);
  });
}

async function signIn(hub: HubProcess, name: string, password: string, headers: Record<string, string> = {}) {
  return fetch(`${hub.url}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ name, password }),
  });
}

const ownerPassword = async (hub: HubProcess) => (await readFile(join(hub.dataDir, 'owner.password'), 'utf8')).trim();

/** The owner's session as the Cookie header a browser sends back. */
async function sessionCookie(hub: HubProcess): Promise<string> {
  const answer = await signIn(hub, 'owner', await ownerPassword(hub));
  assert.equal(answer.status, 200, await answer.text());
  return answer.headers
    .getSetCookie()
    .map((cookie) => cookie.split(';')[0])
    .join('; ');
}

/**
 * Failed sign-ins, each under another name (so only the per-address limit counts them), sent as
 * coming from `client` (X-Forwarded-For), until the hub answers 429. How many it took.
 */
async function lockOut(hub: HubProcess, client: string): Promise<number> {
  for (let attempt = 1; attempt <= 40; attempt++) {
    const answer = await signIn(hub, `guess-${attempt}`, 'wrong', { 'x-forwarded-for': client });
    await answer.body?.cancel();
    if (answer.status === 429) return attempt;
    assert.equal(answer.status, 401, `attempt ${attempt}`);
  }
  assert.fail(`40 failed sign-ins from ${client} and still no 429`);
}

describe('triad start --trust-proxy: a reverse proxy that ends TLS', () => {
  /** `--trust-proxy loopback`: the test, on 127.0.0.1, is the proxy. */
  let trusting: HubProcess;
  /** The same from the config file, as a list. */
  let trustingByConfig: HubProcess;
  /** No setting: the hub as it always was. */
  let plain: HubProcess;
  /** A proxy elsewhere is trusted, not 127.0.0.1. */
  let trustingOthers: HubProcess;

  before(async () => {
    const dir = await tempDir('triad-trust-proxy-');
    const config = join(dir, 'config.yaml');
    await writeFile(config, 'http: { trustProxy: [127.0.0.1, "::1"] }\n');
    [trusting, trustingByConfig, plain, trustingOthers] = await Promise.all([
      startHub(['--trust-proxy', 'loopback']),
      startHub(['--config', config]),
      startHub([]),
      startHub(['--trust-proxy', '10.9.9.9, 192.168.0.0/16']),
    ]);
  });

  after(async () => {
    for (const hub of [trusting, trustingByConfig, plain, trustingOthers]) await hub?.stop();
  });

  it('opens the signed-in dashboard stream from the page the proxy serves', async () => {
    for (const hub of [trusting, trustingByConfig]) {
      const cookie = await sessionCookie(hub);
      assert.equal(await streamAnswer(hub, { cookie, origin: PAGE, ...FORWARDED }), 'opened', hub.url);
      // Still the page the proxy forwards to, and no other.
      assert.equal(await streamAnswer(hub, { cookie, origin: 'https://evil.example', ...FORWARDED }), 403);
      assert.equal(await streamAnswer(hub, { cookie, origin: 'http://home.example.com', ...FORWARDED }), 403);
      // Without the forwarded headers the request is judged by its own connection, as before.
      assert.equal(await streamAnswer(hub, { cookie, origin: PAGE }), 403);
      assert.equal(await streamAnswer(hub, { cookie, origin: new URL(hub.url).origin }), 'opened');
    }
  });

  it('ignores the forwarded headers without the setting, or from an address it does not name', async () => {
    for (const hub of [plain, trustingOthers]) {
      const cookie = await sessionCookie(hub);
      assert.equal(await streamAnswer(hub, { cookie, origin: PAGE, ...FORWARDED }), 403, hub.url);
      // The hub's own page still opens it, whatever those headers say.
      assert.equal(await streamAnswer(hub, { cookie, origin: new URL(hub.url).origin, ...FORWARDED }), 'opened');
    }
  });

  it('sets the session cookies Secure when the proxy says the browser used https', async () => {
    const secure = (answer: Response) => answer.headers.getSetCookie().map((c) => /;\s*Secure\b/i.test(c));
    const password = await ownerPassword(trusting);
    const proxied = await signIn(trusting, 'owner', password, { 'x-forwarded-proto': 'https' });
    assert.equal(proxied.status, 200);
    assert.deepEqual(secure(proxied), [true, true], proxied.headers.getSetCookie().join(' | '));

    // Signing out through the proxy clears them with Secure too, or the browser would keep them.
    const { csrfToken } = (await proxied.json()) as { csrfToken: string };
    const cookie = proxied.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const out = await fetch(`${trusting.url}/api/session`, {
      method: 'DELETE',
      headers: { cookie, 'x-csrf-token': csrfToken, ...FORWARDED },
    });
    assert.equal(out.status, 204, await out.text());
    assert.deepEqual(secure(out), [true, true], out.headers.getSetCookie().join(' | '));

    // Plain HTTP to the hub itself, or the header from anyone else: not Secure, as before.
    const direct = await signIn(trusting, 'owner', password);
    assert.deepEqual(secure(direct), [false, false]);
    for (const hub of [plain, trustingOthers]) {
      const spoofed = await signIn(hub, 'owner', await ownerPassword(hub), { 'x-forwarded-proto': 'https' });
      assert.equal(spoofed.status, 200);
      assert.deepEqual(secure(spoofed), [false, false], hub.url);
    }
  });

  it("limits failed sign-ins per client behind the proxy: one client's failures do not lock out another", async () => {
    const attempts = await lockOut(trusting, '203.0.113.7');
    assert.ok(attempts > 5, `the per-address limit, not the per-name one, after ${attempts}`);
    const password = await ownerPassword(trusting);
    // Right away: the locked-out client's bucket refills in two seconds.
    const [same, other] = await Promise.all(
      ['203.0.113.7', '203.0.113.8'].map((client) =>
        signIn(trusting, 'owner', password, { 'x-forwarded-for': client }),
      ),
    );
    assert.equal(same.status, 429, `the locked-out client, even with the right password: ${await same.text()}`);
    assert.equal(other.status, 200, await other.text());
  });

  it('does not let a client escape the limit by writing its own X-Forwarded-For', async () => {
    for (const hub of [plain, trustingOthers]) {
      await lockOut(hub, '203.0.113.7');
      const otherClient = await signIn(hub, 'owner', await ownerPassword(hub), { 'x-forwarded-for': '203.0.113.8' });
      assert.equal(otherClient.status, 429, `${hub.url}: ${await otherClient.text()}`);
    }
  });
});

describe('--trust-proxy values', () => {
  it('takes what Fastify trustProxy takes, and refuses what it would throw on', () => {
    const good = [
      'loopback',
      'linklocal, uniquelocal',
      '10.9.9.9',
      '10.0.0.0/8,fd00::/8',
      '192.168.0.0/255.255.0.0',
      '::1',
      '::ffff:10.0.0.1',
    ];
    for (const value of good) {
      const list = trustedProxies.read(value);
      assert.ok(list, value);
      assert.doesNotThrow(() => Fastify({ trustProxy: list }), value);
    }
    assert.deepEqual(trustedProxies.read(['loopback', ' 10.0.0.0/8 ']), ['loopback', '10.0.0.0/8']);
    const bad = ['0.0.0.0/0', '10.0.0.0/33', '10.0.0.0/255.0.255.0', '10.0.0.1:8080', 'home.example.com', 'Loopback'];
    for (const value of bad) {
      assert.equal(trustedProxies.read(value), undefined, value);
      assert.throws(() => Fastify({ trustProxy: [value] }), value);
    }
    for (const value of ['', 'loopback,', ',', [], [42], true]) assert.equal(trustedProxies.read(value), undefined);
  });

  it('refuses a bad one at start: one line naming the flag or key, exit 2, nothing started', async () => {
    const dir = await tempDir('triad-trust-proxy-cli-');
    const config = join(dir, 'bad.yaml');
    await writeFile(config, 'http: { trustProxy: [loopback, proxy.lan] }\n');
    for (const [args, pattern] of [
      [
        ['--trust-proxy', 'proxy.lan'],
        /^triad: --trust-proxy must be IP addresses, CIDR ranges \(such as 10\.0\.0\.0\/8\) or loopback, linklocal, uniquelocal, separated by commas, got "proxy\.lan"$/,
      ],
      [['--trust-proxy', '10.0.0.0/33'], /^triad: --trust-proxy must be .*, got "10\.0\.0\.0\/33"$/],
      [['--trust-proxy', '0.0.0.0/0'], /^triad: --trust-proxy must be .*, got "0\.0\.0\.0\/0"$/],
      [['--trust-proxy', ''], /^triad: --trust-proxy must be .*, got ""$/],
      [
        ['--config', config],
        /^triad: config file .*bad\.yaml: http\.trustProxy must be IP addresses, .*, got \["loopback","proxy\.lan"\]$/,
      ],
    ] as Array<[string[], RegExp]>) {
      const data = join(dir, `data-${Math.random().toString(36).slice(2)}`);
      const run = await runTriad(['start', '--data', data, '--http-port', '0', '--mqtt-port', '0', ...args], {
        cwd: dir,
        ...FROM_SOURCE,
      });
      assertOneLineError(run, pattern, args.join(' '));
      assert.equal(run.code, 2, args.join(' '));
      assert.equal(existsSync(data), false, `${args.join(' ')}: the hub had started`);
    }
  });
});
