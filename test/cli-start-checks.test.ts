import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { selfSignedCertificate } from './helpers/certificate.ts';
import { freePort, startHubProcess, tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

const FROM_SOURCE = { env: { TRIAD_FROM_SOURCE: '1' } };

/**
 * README: every flag is "checked before anything starts", a bad one is one line that "names the
 * flag", exit 2. A TLS file that could be read but was no certificate (or a key of another one)
 * used to stop the hub only after MQTT, people and energy were up, with OpenSSL's words and exit 1.
 */
describe('triad start: the TLS files are parsed before anything starts', () => {
  let dir: string;
  let one: { certFile: string; keyFile: string };
  let other: { certFile: string; keyFile: string };
  before(async () => {
    dir = await tempDir('triad-cli-tls-');
    [one, other] = await Promise.all([selfSignedCertificate(), selfSignedCertificate()]);
    await writeFile(join(dir, 'not-pem.txt'), 'just a host name\n');
  });

  async function refused(args: string[], pattern: RegExp, what: string): Promise<void> {
    const data = join(dir, `data-${Math.random().toString(36).slice(2)}`);
    const run = await runTriad(
      ['start', '--data', data, '--http-port', '0', '--mqtt-port', '0', '--log-level', 'info', ...args],
      { cwd: dir, ...FROM_SOURCE },
    );
    assertOneLineError(run, pattern, what);
    assert.equal(run.code, 2, `${what}: exit 2, a value Triad refused`);
    assert.doesNotMatch(run.stdout, /ready/, `${what}: nothing started`);
    assert.equal(existsSync(data), false, `${what}: the data folder was made, so the hub had started`);
  }

  it('a file that is not PEM, for either flag, is refused naming the flag', async () => {
    await refused(
      ['--tls-cert', 'not-pem.txt', '--tls-key', one.keyFile],
      /^triad: --tls-cert: .*not-pem\.txt is not a PEM certificate/,
      'not a certificate',
    );
    await refused(
      ['--tls-cert', one.certFile, '--tls-key', 'not-pem.txt'],
      /^triad: --tls-key: .*not-pem\.txt is not an unencrypted PEM private key/,
      'not a key',
    );
    // The reviewer's case: the same file (no PEM at all) for both.
    await refused(
      ['--tls-cert', 'not-pem.txt', '--tls-key', 'not-pem.txt'],
      /^triad: --tls-cert: .*not a PEM certificate/,
      'both not PEM',
    );
    // A certificate given as the key, and a key given as the certificate.
    await refused(
      ['--tls-cert', one.keyFile, '--tls-key', one.certFile],
      /^triad: --tls-cert: .*is not a PEM certificate/,
      'swapped',
    );
  });

  it("a key that is not the certificate's is refused naming --tls-key", async () => {
    await refused(
      ['--tls-cert', one.certFile, '--tls-key', other.keyFile],
      /^triad: --tls-key: .* is not the private key of the certificate in .*cert\.pem$/,
      'mismatched',
    );
  });

  it('the same from the config file names the key', async () => {
    const config = join(dir, 'tls.yaml');
    await writeFile(config, `tls: { cert: ${one.certFile}, key: ${other.keyFile} }\n`);
    await refused(['--config', config], /^triad: tls\.key in config file .*tls\.yaml: /, 'config file');
  });

  it('a matching pair still starts the hub', async () => {
    const hub = await startHubProcess({
      args: ['--mqtt-port', '0', '--tls-cert', one.certFile, '--tls-key', one.keyFile, '--log-level', 'warn'],
      ...FROM_SOURCE,
    });
    assert.equal(await hub.stop(), 0, hub.output());
  });
});

/**
 * `--http-host` is the HTTP server's address only; the embedded broker listened on 0.0.0.0 unless
 * the config file's mqtt.host said otherwise. `--mqtt-host` is that key as a flag.
 */
describe('triad start --mqtt-host', () => {
  const reachable = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });

  it('binds the embedded broker there, and nowhere else', async () => {
    const mqttPort = await freePort();
    const hub = await startHubProcess({
      args: ['--mqtt-port', String(mqttPort), '--mqtt-host', '127.0.0.1', '--log-level', 'warn'],
      ...FROM_SOURCE,
    });
    try {
      assert.equal(await reachable('127.0.0.1', mqttPort), true, 'on 127.0.0.1');
      // Linux answers on all of 127.0.0.0/8: a broker on 0.0.0.0 would take this too.
      assert.equal(await reachable('127.0.0.2', mqttPort), false, 'not on 127.0.0.2');
    } finally {
      assert.equal(await hub.stop(), 0, hub.output());
    }
  });

  it('is checked as --http-host is, and not with an external broker', async () => {
    const dir = await tempDir('triad-cli-mqtt-host-');
    for (const [args, pattern] of [
      [['--mqtt-host', 'http://x'], /^triad: --mqtt-host must be an IP address .*, got "http:\/\/x"$/],
      [['--mqtt-host', '192.0.2.1'], /^triad: --mqtt-host: 192\.0\.2\.1 is not an address of this machine/],
      [
        ['--mqtt-url', 'mqtt://127.0.0.1:1883', '--mqtt-host', '127.0.0.1'],
        /^triad: --mqtt-host is where the embedded broker listens; it does not go with an external --mqtt-url$/,
      ],
    ] as Array<[string[], RegExp]>) {
      const data = join(dir, `data-${Math.random().toString(36).slice(2)}`);
      const run = await runTriad(['start', '--data', data, '--http-port', '0', ...args], { cwd: dir, ...FROM_SOURCE });
      assertOneLineError(run, pattern, args.join(' '));
      assert.equal(run.code, 2, args.join(' '));
      assert.equal(existsSync(data), false);
    }
  });
});

/** The command line's times are the API's: `--start` and replay's `--from`/`--to`. */
describe('command-line times are strict ISO 8601', () => {
  it('refuses an impossible date or a time without its zone, naming the flag', async () => {
    const dir = await tempDir('triad-cli-times-');
    await writeFile(join(dir, 'rule.yaml'), 'id: r\ntriggers: []\nactions: []\n');
    for (const [args, pattern] of [
      [
        ['sim', 'car', '--viss-port', '0', '--start', '2027-02-31T08:00:00Z'],
        /^triad: --start must be an ISO 8601 time \(a date and time with its zone, .*\), got "2027-02-31T08:00:00Z"$/,
      ],
      [
        ['replay', 'rule.yaml', '--from', '2026-11-01T00:00', '--to', '2026-11-08T00:00:00Z'],
        /^triad: --from and --to must be ISO 8601 times \(each a date and time with its zone, .*\); --from is "2026-11-01T00:00"$/,
      ],
      [
        ['replay', 'rule.yaml', '--from', '2026-11-01T00:00:00Z', '--to', '2026-02-30T00:00:00Z'],
        /^triad: --from and --to must be ISO 8601 times .*; --to is "2026-02-30T00:00:00Z"$/,
      ],
    ] as Array<[string[], RegExp]>) {
      const run = await runTriad(args, { cwd: dir, ...FROM_SOURCE });
      assertOneLineError(run, pattern, args.join(' '));
      assert.equal(run.code, 2, args.join(' '));
    }
  });
});
