import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadConfigFile, resolveOptions } from '../src/cli/config.ts';
import { tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

/**
 * Ports and counts are plain decimal whole numbers wherever a user gives them: a flag's text and a
 * config file's value are read by one parser, so `--http-port 1e4` is refused as `0x4000` is, and a
 * quoted number in the config file (`port: "18796"`) is refused as a quoted `demo: "yes"` is, each
 * with one line naming the flag or the key. (`?limit=` of the API: test/history-query-edges.test.ts.)
 */
describe('numbers on the command line and in the config file', () => {
  let dir: string;
  const FROM_SOURCE = { env: { TRIAD_FROM_SOURCE: '1' } };

  before(async () => {
    dir = await tempDir('triad-cli-numbers-');
  });

  const config = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  it('refuses a flag that is not plain decimal digits, naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['start', '--http-port', '1e4'], /^triad: --http-port must be a port number \(0–65535\), got "1e4"$/],
      [['start', '--http-port', '0x4000'], /^triad: --http-port must be a port number \(0–65535\), got "0x4000"$/],
      [['start', '--mqtt-port', '1884.0'], /^triad: --mqtt-port must be a port number \(0–65535\), got "1884\.0"$/],
      [['start', '--mqtts-port', '+8883'], /^triad: --mqtts-port must be a port number \(0–65535\), got "\+8883"$/],
      [['sim', 'car', '--viss-port', '8e3'], /^triad: --viss-port must be a port number \(0–65535\), got "8e3"$/],
      [['sim', 'car', '--viss-port', '0', '--speedup', '1e2'], /^triad: --speedup must be a number above 0/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runTriad([...args, ...(args[0] === 'start' ? ['--data', join(dir, 'd')] : [])], {
        cwd: dir,
        ...FROM_SOURCE,
      });
      assertOneLineError(run, pattern, args.join(' '));
      assert.equal(run.code, 2, args.join(' '));
    }
  });

  it('refuses a quoted or non-decimal number in the config file, naming the key', async () => {
    const cases: Array<[string, RegExp]> = [
      ['http:\n  port: "18796"\n', /http\.port must be a port number \(0–65535\), got "18796"$/],
      ['{"http": {"port": "18796"}}', /http\.port must be a port number \(0–65535\), got "18796"$/],
      ['http:\n  port: 0x4000\n', /http\.port must be a port number \(0–65535\), got "0x4000"$/],
      ['mqtt:\n  port: 1e4\n', /mqtt\.port must be a port number \(0–65535\), got "1e4"$/],
      ['commandTimeoutMs: "45000"\n', /commandTimeoutMs must be a whole number from 1,000 to 86,400,000, got "45000"$/],
      [
        'rateLimits:\n  api:\n    burst: 0o17\n    perSecond: 2\n',
        /rateLimits\.api\.burst must be a whole number from 1 to 1,000,000,000, got "0o17"$/,
      ],
    ];
    for (const [i, [text, pattern]] of cases.entries()) {
      const path = await config(`bad-${i}.yaml`, text);
      const run = await runTriad(['start', '--data', join(dir, 'd'), '--config', path], { cwd: dir, ...FROM_SOURCE });
      assertOneLineError(run, new RegExp(`^triad: config file .*bad-${i}\\.yaml: ${pattern.source}`), text);
      assert.equal(run.code, 2, text);
    }
  });

  it('takes plain decimal numbers from both, the flag over the file', async () => {
    const path = await config(
      'good.yaml',
      'http:\n  port: 18796\nmqtt:\n  port: 18797\ncommandTimeoutMs: 45000\nrateLimits:\n  api:\n    burst: 20\n    perSecond: 2.5\n',
    );
    const file = await loadConfigFile(path);
    assert.equal(file.http?.port, 18796);
    assert.deepEqual(file.rateLimits, { api: { burst: 20, perSecond: 2.5 } });
    const options = await resolveOptions({ config: path, data: join(dir, 'd'), httpPort: '10000' });
    assert.equal(options.http?.port, 10000);
    assert.equal(options.mqtt?.port, 18797);
    assert.equal(options.commandTimeoutMs, 45_000);
  });
});
