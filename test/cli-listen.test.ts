import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { canListen, freePort, startHubProcess, tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

/**
 * Where `triad start` listens (its hosts, its ports, an external broker's address) is checked
 * before the hub starts: a bad value is one line naming the flag or config key, a non-zero exit,
 * and no data folder, so no lock and no store are left behind. Before, a bad --http-host with
 * --http-port 0 (or from the config file) was found only when the HTTP server bound, after the
 * hub had written its store and owner token.
 */
describe('triad start: where it listens is checked before anything starts', () => {
  let dir: string;
  const FROM_SOURCE = { env: { TRIAD_FROM_SOURCE: '1' } };
  const HOST_MUST_BE = /must be an IP address \(such as 0\.0\.0\.0, 127\.0\.0\.1, :: or ::1\) or a host name/;
  const URL_MUST_BE = /^triad: --mqtt-url must be an mqtt:\/\/, .* address with a host/;

  before(async () => {
    dir = await tempDir('triad-cli-listen-');
    // Empty files: the listener checks below come before the TLS files are parsed, so these refusals
    // are about the listeners, not the files (test/cli-start-checks.test.ts covers bad files).
    await writeFile(join(dir, 'cert.pem'), '');
    await writeFile(join(dir, 'key.pem'), '');
  });

  /** Runs `triad start` on a data folder of its own, and checks the refusal left it unmade. */
  async function refused(args: string[], pattern: RegExp, configYaml?: string): Promise<void> {
    const data = join(dir, `data-${Math.random().toString(36).slice(2)}`);
    const config: string[] = [];
    if (configYaml !== undefined) {
      const file = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
      await writeFile(file, configYaml);
      config.push('--config', file);
    }
    const what = `triad start ${[...args, ...config].join(' ')}${configYaml ? ` (${configYaml.trim()})` : ''}`;
    const run = await runTriad(['start', '--data', data, '--log-level', 'warn', ...args, ...config], {
      cwd: dir,
      ...FROM_SOURCE,
    });
    assertOneLineError(run, pattern, what);
    assert.equal(run.code, 2, `${what}: exit 2, a value Triad refused`);
    assert.equal(existsSync(data), false, `${what}: the data folder was made, so the hub had started`);
  }

  /** Each case: the arguments (free ports, so only the value at fault can stop the hub), the line. */
  const badFlags = (): Array<[string[], RegExp]> => {
    const free = ['--http-port', '0', '--mqtt-port', '0'];
    return [
      // Not addresses at all: refused as written, before any lookup.
      [[...free, '--http-host', 'not a host'], HOST_MUST_BE],
      [[...free, '--http-host', '999.1.1.1'], /--http-host must be .*, got "999\.1\.1\.1"$/],
      [[...free, '--http-host', 'http://x'], /--http-host must be .*without a scheme or port, got "http:\/\/x"$/],
      [[...free, '--http-host', ''], /--http-host must be .*, got ""$/],
      [[...free, '--http-host', '127.0.0.1:8080'], /--http-host must be .*, got "127\.0\.0\.1:8080"$/],
      [[...free, '--http-host', '[::1]'], HOST_MUST_BE],
      [[...free, '--http-host', ' 127.0.0.1'], /got " 127\.0\.0\.1"$/],
      // Well formed, but nothing this machine can listen on: found by trying, still before the hub.
      [[...free, '--http-host', 'nohost.invalid'], /^triad: --http-host: nohost\.invalid does not resolve/],
      // 192.0.2.0/24 is for documentation (RFC 5737): no machine has it.
      [[...free, '--http-host', '192.0.2.1'], /^triad: --http-host: 192\.0\.2\.1 is not an address of this machine/],
      // Two of the hub's own servers on one port: the second to bind would fail late.
      [['--http-port', '18761', '--mqtt-port', '18761'], /--http-port and --mqtt-port are both 18761: the HTTP server/],
      [['--http-port', '1883'], /--http-port is 1883, the port of the MQTT broker by default; .*--mqtt-port/],
      [
        [
          '--http-port',
          '0',
          '--mqtt-port',
          '18762',
          '--mqtts-port',
          '18762',
          '--tls-cert',
          'cert.pem',
          '--tls-key',
          'key.pem',
        ],
        /--mqtt-port and --mqtts-port are both 18762/,
      ],
      [[...free, '--mqtts-port', '0'], /^triad: --mqtts-port needs --tls-cert and --tls-key/],
      // An external broker's address, whole: the MQTT client would read these as something else.
      [['--http-port', '0', '--mqtt-url', 'mqtt://127.0.0.1:abc'], URL_MUST_BE],
      [['--http-port', '0', '--mqtt-url', 'mqtt://127.0.0.1:99999'], URL_MUST_BE],
      [['--http-port', '0', '--mqtt-url', 'mqtt://:1883'], URL_MUST_BE],
      [['--http-port', '0', '--mqtt-url', 'mqtt://127.0.0.1:0'], URL_MUST_BE],
      [['--http-port', '0', '--mqtt-url', 'http://127.0.0.1:1883'], URL_MUST_BE],
      // A password in a refused address is not printed back: the line lands in terminals and logs.
      [
        ['--http-port', '0', '--mqtt-url', 'mqtt://hub:s3cret@127.0.0.1:abc'],
        /got "mqtt:\/\/hub:\*\*\*@127\.0\.0\.1:abc"$/,
      ],
      // Ports as before: the flag and what it allows.
      [['--http-port', '-1'], /^triad: --http-port must be a port number \(0–65535\), got "-1"$/],
      [['--http-port', '0', '--mqtt-port', '65536'], /^triad: --mqtt-port must be a port number/],
      [['--http-port', '0', '--mqtt-port', '0', '--mqtts-port', 'x'], /^triad: --mqtts-port must be a port number/],
    ];
  };

  it('refuses a bad flag in one line, and makes no data folder', async () => {
    // Two at a time: each is a Node process loading the sources.
    const all = badFlags();
    for (let i = 0; i < all.length; i += 2)
      await Promise.all(all.slice(i, i + 2).map(([args, pattern]) => refused(args, pattern)));
  });

  it('refuses the same in the config file, naming the file and the key', async () => {
    await refused(
      [],
      /config file .*\.yaml: http\.host must be an IP address/,
      'http: {host: "not a host", port: 0}\n',
    );
    await refused(
      [],
      /^triad: mqtt\.host in config file .*\.yaml: nohost\.invalid does not resolve/,
      'http: {port: 0}\nmqtt: {port: 0, host: nohost.invalid}\n',
    );
    await refused(
      [],
      /http\.port and mqtt\.port in config file .*\.yaml are both 18763/,
      'http: {port: 18763}\nmqtt: {port: 18763}\n',
    );
    await refused(
      [],
      /mqtt\.tlsPort in config file .*\.yaml needs --tls-cert/,
      'http: {port: 0}\nmqtt: {port: 0, tlsPort: 0}\n',
    );
    await refused(
      [],
      /config file .*\.yaml: mqtt\.url must be an mqtt:\/\//,
      'http: {port: 0}\nmqtt: {url: "mqtt://:1883"}\n',
    );
    // A flag still wins over the file, and is the one named.
    await refused(['--http-host', 'http://x'], /^triad: --http-host must be/, 'http: {host: 127.0.0.1, port: 0}\n');
  });
});

describe('triad start: good addresses still start the hub', () => {
  // localhost and the loopback and wildcard literals of both families; a DNS name that resolves
  // here is covered by localhost, the one every machine has.
  const hosts: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '127.0.0.1'],
    ['localhost', 'localhost'],
    ['::1', '[::1]'],
    ['::', '[::1]'],
  ];

  for (const [host, reach] of hosts) {
    it(`--http-host ${host}: the hub starts and answers there`, async (t) => {
      if (host.includes(':') && !(await canListen('::1'))) {
        t.skip('this machine has no IPv6 loopback');
        return;
      }
      const httpPort = await freePort();
      // Given after the helper's own --http-host 127.0.0.1: the last one counts.
      const hub = await startHubProcess({
        httpPort,
        args: ['--http-host', host, '--mqtt-port', '0', '--log-level', 'warn'],
        env: { TRIAD_FROM_SOURCE: '1' },
      });
      try {
        const health = await fetch(`http://${reach}:${httpPort}/api/health`);
        assert.equal(health.status, 200, hub.output());
      } finally {
        assert.equal(await hub.stop(), 0, hub.output());
      }
    });
  }
});

describe('triad start: a hub that listens on one address is reached there', () => {
  // Linux answers on all of 127.0.0.0/8, so 127.0.0.2 is an address of this machine that is not
  // 127.0.0.1: a hub that took 127.0.0.1 for granted could not reach its own broker there.
  it('connects to its own broker on mqtt.host, and prints the addresses it listens on', async (t) => {
    if (!(await canListen('127.0.0.2'))) {
      t.skip('this machine does not answer on 127.0.0.2');
      return;
    }
    const dir = await tempDir('triad-cli-listen-');
    const config = join(dir, 'config.yaml');
    await writeFile(config, 'mqtt: {host: 127.0.0.2, port: 0}\n');
    const httpPort = await freePort();
    const hub = await startHubProcess({
      httpPort,
      dataDir: join(dir, 'data'),
      args: ['--http-host', '127.0.0.2', '--config', config, '--log-level', 'warn'],
      env: { TRIAD_FROM_SOURCE: '1' },
    });
    try {
      assert.match(hub.output(), new RegExp(`API: +http://127\\.0\\.0\\.2:${httpPort}/api`), hub.output());
      const mqtt = /MQTT: +(mqtt:\/\/\S+)/.exec(hub.output())?.[1] ?? '';
      assert.match(mqtt, /^mqtt:\/\/127\.0\.0\.2:\d+$/, hub.output());
      const health = await fetch(`http://127.0.0.2:${httpPort}/api/health`);
      assert.equal(health.status, 200);
      // The hub's own link to the broker is up: health says so.
      const body = (await health.json()) as Record<string, unknown>;
      assert.notEqual(JSON.stringify(body).includes('"mqtt":false'), true, JSON.stringify(body));
    } finally {
      assert.equal(await hub.stop(), 0, hub.output());
    }
  });

  it('prints an IPv6 address in brackets, as a URL needs it', async (t) => {
    if (!(await canListen('::1'))) {
      t.skip('this machine has no IPv6 loopback');
      return;
    }
    const httpPort = await freePort();
    const hub = await startHubProcess({
      httpPort,
      args: ['--http-host', '::1', '--mqtt-port', '0', '--log-level', 'warn'],
      env: { TRIAD_FROM_SOURCE: '1' },
    });
    try {
      assert.match(hub.output(), new RegExp(`API: +http://\\[::1\\]:${httpPort}/api`), hub.output());
      assert.equal((await fetch(`http://[::1]:${httpPort}/api/health`)).status, 200);
    } finally {
      assert.equal(await hub.stop(), 0, hub.output());
    }
  });
});

describe('triad start: an external broker that cannot be reached', () => {
  it('names it without its password', async () => {
    const dir = await tempDir('triad-cli-listen-');
    const port = await freePort();
    const run = await runTriad(
      ['start', '--data', join(dir, 'data'), '--http-port', '0', '--mqtt-url', `mqtt://hub:s3cret@127.0.0.1:${port}`],
      { cwd: dir, env: { TRIAD_FROM_SOURCE: '1' } },
    );
    assertOneLineError(
      run,
      /^triad: cannot connect to MQTT broker at mqtt:\/\/hub:\*\*\*@127\.0\.0\.1:/,
      'unreachable broker',
    );
    assert.doesNotMatch(run.stderr + run.stdout, /s3cret/);
  });
});
