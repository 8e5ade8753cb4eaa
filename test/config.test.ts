import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigFile, resolveOptions } from '../src/cli/config.ts';
import { listenHost, mqttUrl } from '../src/cli/settings.ts';
import { hidePasswords } from '../src/core/redact.ts';
import { DEFAULT_STOP_GRACE_MS } from '../src/vehicles/trips.ts';
import { canListen, tempDir } from './helpers/hub-process.ts';

async function configFile(body: unknown): Promise<string> {
  const path = join(await tempDir(), 'triad.json');
  await writeFile(path, JSON.stringify(body));
  return path;
}

describe('config file: the store', () => {
  it('takes where SQLite writes (a thread of their own, or inline) and passes it to the hub', async () => {
    for (const writer of ['thread', 'inline'] as const) {
      const path = await configFile({ store: { kind: 'sqlite', writer } });
      assert.deepEqual((await loadConfigFile(path)).store, { kind: 'sqlite', writer });
      const options = await resolveOptions({ config: path, data: await tempDir() });
      assert.deepEqual(options.store, { kind: 'sqlite', writer });
    }
  });

  it('refuses an unknown writer or store kind with the field named', async () => {
    await assert.rejects(
      loadConfigFile(await configFile({ store: { kind: 'sqlite', writer: 'fast' } })),
      (error: unknown) => error instanceof ConfigError && /store\.writer must be thread or inline/.test(error.message),
    );
    await assert.rejects(
      loadConfigFile(await configFile({ store: { kind: 'mongo' } })),
      (error: unknown) => error instanceof ConfigError && /store\.kind/.test(error.message),
    );
  });
});

describe('the demo', () => {
  it("the car's errands stand longer than a stop that ends a trip, so they show as trips", async () => {
    const options = await resolveOptions({ demo: true, data: await tempDir() });
    const errands = options.demoCarErrands;
    assert.ok(errands, 'the demo car runs errands');
    // A stand of DEFAULT_STOP_GRACE_MS or less is a stop within one trip: every errand ran into
    // the next and the dashboard's "Today's trips" stayed empty.
    assert.ok(errands.parkMs > DEFAULT_STOP_GRACE_MS, `${errands.parkMs} ms against ${DEFAULT_STOP_GRACE_MS}`);
  });
});

/** Refused with a ConfigError whose message matches every pattern. */
async function refuses(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

describe('config file: every key is checked and named', () => {
  it('names the file and the key of a bad value, not the flag', async () => {
    const port = await configFile({ http: { port: 'abc' } });
    await refuses(
      resolveOptions({ config: port }),
      new RegExp(`config file ${port}`),
      /http\.port must be a port/,
      /"abc"/,
    );
    await assert.rejects(resolveOptions({ config: port }), (error: Error) => !/--http-port/.test(error.message));
    const level = await configFile({ logLevel: 'loud' });
    await refuses(loadConfigFile(level), new RegExp(`config file ${level}`), /logLevel must be one of debug, info/);
  });

  it('refuses an unknown key, naming the keys it knows and the one a typo meant', async () => {
    await refuses(loadConfigFile(await configFile({ bogus: 1 })), /unknown key bogus/, /data, http, mqtt, tls, store/);
    await refuses(
      loadConfigFile(await configFile({ mqtt: { prot: 1884 } })),
      /unknown key mqtt\.prot/,
      /did you mean mqtt\.port\?/,
      /under mqtt are url, port/,
    );
    await refuses(loadConfigFile(await configFile({ rateLimits: { api: { bust: 5 } } })), /rateLimits\.api\.bust/);
  });

  it('checks the range of every numeric setting', async () => {
    const bad: Array<[string, unknown]> = [
      ['http.port', { http: { port: 70_000 } }],
      ['mqtt.port', { mqtt: { port: -1 } }],
      ['mqtt.tlsPort', { mqtt: { tlsPort: 8883.5 } }],
      ['commandTimeoutMs', { commandTimeoutMs: -5 }],
      ['commandTimeoutMs', { commandTimeoutMs: 0 }],
      ['commandTimeoutMs', { commandTimeoutMs: 'soon' }],
      ['rateLimits.api.burst', { rateLimits: { api: { burst: 0, perSecond: 1 } } }],
      ['rateLimits.signIn.perSecond', { rateLimits: { signIn: { burst: 5, perSecond: -1 } } }],
    ];
    for (const [key, body] of bad)
      await refuses(loadConfigFile(await configFile(body)), new RegExp(`${key.replaceAll('.', '\\.')} must be`));
    await refuses(
      loadConfigFile(await configFile({ rateLimits: { api: { burst: 5 } } })),
      /rateLimits\.api needs both burst and perSecond/,
    );
  });

  it('checks types and combinations: booleans, addresses, the store kind against its keys', async () => {
    await refuses(loadConfigFile(await configFile({ demo: 'yes' })), /demo must be true or false/);
    await refuses(
      loadConfigFile(await configFile({ mqtt: { url: 'http://broker' } })),
      /mqtt\.url must be an mqtt:\/\//,
    );
    await refuses(
      loadConfigFile(await configFile({ store: { kind: 'sqlite', url: 'postgres://x' } })),
      /store\.url is for postgres/,
    );
    await refuses(loadConfigFile(await configFile({ store: { writer: 'inline' } })), /store\.kind is required/);
    await refuses(
      loadConfigFile(await configFile({ mqtt: { url: 'mqtt://127.0.0.1:1884', port: 1885 } })),
      /mqtt\.url .* exclude each other/,
    );
    await refuses(loadConfigFile(await configFile({ http: [8780] })), /http must be a mapping of port, host/);
  });

  it('takes a good file whole, with what it sets passed to the hub', async () => {
    const path = await configFile({
      data: await tempDir(),
      http: { port: 8781, host: '127.0.0.1' },
      mqtt: { port: 1884, allowAnonymous: true },
      household: { name: 'The Smiths' },
      commandTimeoutMs: 45_000,
      logLevel: 'warn',
      rateLimits: { api: { burst: 50, perSecond: 10 } },
    });
    const options = await resolveOptions({ config: path });
    assert.equal(options.http?.port, 8781);
    assert.equal(options.mqtt?.port, 1884);
    assert.equal(options.mqtt?.allowAnonymous, true);
    assert.equal(options.commandTimeoutMs, 45_000);
    assert.equal(options.logLevel, 'warn');
    assert.equal(options.householdName, 'The Smiths');
    assert.deepEqual(options.rateLimits, { api: { burst: 50, perSecond: 10 } });
    // A flag still wins over the file, and is named as the flag when it is wrong.
    assert.equal((await resolveOptions({ config: path, httpPort: '9000' })).http?.port, 9000);
    await refuses(resolveOptions({ config: path, httpPort: '9x' }), /^--http-port must be a port number/);
  });
});

describe('start flags', () => {
  it('refuses bad values naming the flag and what it allows', async () => {
    const data = await tempDir();
    await refuses(
      resolveOptions({ data, logLevel: 'loud' }),
      /^--log-level must be one of debug, info, warn, error or silent/,
    );
    await refuses(resolveOptions({ data, mqttPort: '' }), /^--mqtt-port must be a port number/);
    await refuses(resolveOptions({ data, pgUrl: 'mysql://db' }), /^--pg-url must be a postgres:\/\//);
    await refuses(resolveOptions({ data, mqttPort: '1884', mqttUrl: 'mqtt://127.0.0.1:1885' }), /exclude each other/);
    await refuses(
      resolveOptions({ data, tlsCert: join(data, 'none.pem'), tlsKey: join(data, 'none.key') }),
      /^--tls-cert: cannot read .*no such file/,
    );
    const file = join(data, 'a-file');
    await writeFile(file, '');
    await refuses(resolveOptions({ data: file }), /^--data: .* is a file, not a folder/);
  });
});

describe('where the hub listens', () => {
  it('takes IP addresses of both families and host names, and nothing Node would only try to resolve', () => {
    const good = [
      '127.0.0.1',
      '0.0.0.0',
      '::',
      '::1',
      'fe80::1%eth0',
      'localhost',
      'hub.example.com',
      'my_nas.lan',
      'vm.',
    ];
    for (const host of good) assert.equal(listenHost.read(host), host, host);
    const bad = [
      '',
      ' ',
      'not a host',
      '999.1.1.1',
      '1.2.3',
      'http://x',
      '127.0.0.1:8080',
      '[::1]',
      ' 127.0.0.1',
      '-x',
      'a..b',
      'ä.example',
      8780,
    ];
    for (const host of bad) assert.equal(listenHost.read(host), undefined, String(host));
  });

  it("reads an external broker's address whole: a host, and a port it can use", () => {
    for (const url of [
      'mqtt://127.0.0.1:1883',
      'mqtts://broker.lan',
      'ws://h:9001/mqtt',
      'tcp://[::1]:1883',
      'mqtt://u:p@h:1',
    ])
      assert.equal(mqttUrl.read(url), url, url);
    for (const url of [
      'mqtt://:1883',
      'mqtt://h:abc',
      'mqtt://h:99999',
      'mqtt://h:0',
      'mqtt:///x',
      'http://h',
      'mqtt://a b',
    ])
      assert.equal(mqttUrl.read(url), undefined, url);
  });

  it('takes good hosts from flags and the config file', async () => {
    const data = await tempDir();
    for (const httpHost of ['127.0.0.1', '0.0.0.0', 'localhost'])
      assert.equal((await resolveOptions({ data, httpHost, httpPort: '0' })).http?.host, httpHost);
    const path = await configFile({ http: { host: 'localhost', port: 0 }, mqtt: { host: '127.0.0.1', port: 0 } });
    const options = await resolveOptions({ config: path, data });
    assert.equal(options.http?.host, 'localhost');
    assert.equal(options.mqtt?.host, '127.0.0.1');
  });

  it('refuses an address that is not one of this machine, naming where it came from', async () => {
    const data = await tempDir();
    // 192.0.2.0/24 is for documentation (RFC 5737): no machine has it.
    await refuses(
      resolveOptions({ data, httpHost: '192.0.2.1' }),
      /^--http-host: 192\.0\.2\.1 is not an address of this machine/,
    );
    const path = await configFile({ mqtt: { host: '192.0.2.1' } });
    await refuses(
      resolveOptions({ config: path, data }),
      new RegExp(`^mqtt\\.host in config file ${path}: 192\\.0\\.2\\.1`),
    );
  });

  it('refuses two of its servers on one port, unless their addresses are apart', async () => {
    const data = await tempDir();
    await refuses(
      resolveOptions({ data, httpPort: '9000', mqttPort: '9000' }),
      /--http-port and --mqtt-port are both 9000/,
    );
    // The broker's default port, and a wildcard covering a given address.
    await refuses(
      resolveOptions({ data, httpPort: '1883', httpHost: '127.0.0.1' }),
      /--http-port is 1883, the port of the MQTT broker by default/,
    );
    await refuses(
      resolveOptions({ data, mqttPort: '8780' }),
      /--mqtt-port is 8780, the port of the HTTP server by default; .*--http-port/,
    );
    // Port 0 is a free port for each; an external broker takes no port here; 127.0.0.1 and ::1
    // are two sockets.
    await resolveOptions({ data, httpPort: '0', mqttPort: '0' });
    await resolveOptions({ data, httpPort: '1883', mqttUrl: 'mqtt://127.0.0.1:1883' });
    if (!(await canListen('::1'))) return; // no IPv6 loopback on this machine
    await resolveOptions({
      data,
      httpPort: '1883',
      httpHost: '::1',
      config: await configFile({ mqtt: { host: '127.0.0.1' } }),
    });
  });
});

describe('passwords in addresses', () => {
  it('are shown as *** wherever an address is printed back, to the last @ before the host', () => {
    assert.equal(hidePasswords('mqtt://hub:s3cret@127.0.0.1:1883'), 'mqtt://hub:***@127.0.0.1:1883');
    assert.equal(hidePasswords('postgres://u:p@ss@db.local/triad'), 'postgres://u:***@db.local/triad');
    assert.equal(
      hidePasswords('from http://a:x@h1/x to https://b:y@h2/?q=1'),
      'from http://a:***@h1/x to https://b:***@h2/?q=1',
    );
    // No password, nothing to hide.
    assert.equal(
      hidePasswords('http://user@host/x and mqtt://127.0.0.1:1883'),
      'http://user@host/x and mqtt://127.0.0.1:1883',
    );
  });
});
