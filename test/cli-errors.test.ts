import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, tempDir } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

/**
 * Every subcommand, given a bad flag or unable to start, says so in one line that names the flag
 * (or the config key) and what it allows, and exits non-zero: never a stack trace. Run from the
 * sources here; test/cli-bundle.test.ts runs a few of them from the bundle.
 */
describe('the command line refuses what it cannot use, in one line', () => {
  let dir: string;
  let busy: Server;
  let busyPort: number;
  const FROM_SOURCE = { env: { TRIAD_FROM_SOURCE: '1' } };
  const RANGE = ['--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'];

  before(async () => {
    dir = await tempDir('triad-cli-');
    await writeFile(join(dir, 'rule.yaml'), 'id: r\ntriggers: []\nactions: []\n');
    await writeFile(join(dir, 'a-file'), '');
    await mkdir(join(dir, 'empty'));
    busy = createServer();
    busyPort = await freePort();
    await new Promise<void>((resolve) => busy.listen(busyPort, '127.0.0.1', resolve));
  });

  after(() => {
    busy?.close();
  });

  /** Each case: the arguments, and what its one line must say. */
  const cases = (): Array<[string[], RegExp]> => [
    // replay
    [['replay', 'rule.yaml', ...RANGE], /default data folder .*triad-data does not exist; .*--data/],
    [
      ['replay', 'rule.yaml', ...RANGE, '--data', 'nowhere'],
      /data folder .*nowhere does not exist; point at .* --data DIR/,
    ],
    [
      ['replay', 'rule.yaml', ...RANGE, '--data', 'empty'],
      /empty holds no recorded history \(no triad\.db\); .*--data/,
    ],
    [['replay', 'rule.yaml', ...RANGE, '--data', 'a-file'], /a-file is a file, not a data folder/],
    [['replay', 'rule.yaml', '--from', 'monday', '--to', 'friday'], /--from and --to must be ISO 8601 times/],
    // A misspelled flag is named as such, with the one meant, not taken for the right one missing.
    [
      ['replay', 'rule.yaml', '--form', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'],
      /^triad: unknown option '--form' \(Did you mean --from\?\)$/,
    ],
    [['replay', 'rule.yaml', '--to', '2026-01-02T00:00:00Z'], /^triad replay: --from is required/],
    [['start', '--bogus'], /^triad: unknown option '--bogus'$/],
    [['bogus'], /^triad: unknown command 'bogus'$/],
    [['replay', 'rule.yaml', ...RANGE, '--pg-url', 'postgres://127.0.0.1:1/triad'], /PostgreSQL \(--pg-url\)/],
    // sim car
    [['sim', 'car', '--viss-port', 'abc'], /^triad: --viss-port must be a port number \(0–65535\), got "abc"$/],
    [
      ['sim', 'car', '--viss-port', String(busyPort)],
      new RegExp(`VISS port ${busyPort} is already in use; .*--viss-port`),
    ],
    [['sim', 'car', '--viss-port', '0', '--speedup', '-3'], /--speedup must be a number above 0/],
    [['sim', 'car', '--viss-port', '0', '--speedup', 'fast'], /--speedup must be a number above 0/],
    [['sim', 'car', '--viss-port', '0', '--start', 'nonsense'], /--start must be an ISO 8601 time/],
    [['sim', 'car'], /required option '--viss-port <n>'/],
    // start
    [['start', '--data', 'd1', '--http-port', 'abc'], /^triad: --http-port must be a port number/],
    [['start', '--data', 'd1', '--mqtt-port', '70000'], /^triad: --mqtt-port must be a port number/],
    [['start', '--data', 'd1', '--log-level', 'loud'], /--log-level must be one of debug, info, warn, error or silent/],
    [['start', '--data', 'a-file', '--http-port', '0', '--mqtt-port', '0'], /--data: .*a-file is a file, not a folder/],
    [['start', '--data', 'd1', '--tls-cert', 'no.pem', '--tls-key', 'no.key'], /--tls-cert: cannot read .*no\.pem/],
    [
      ['start', '--data', 'd1', '--http-port', String(busyPort)],
      new RegExp(`port ${busyPort} is already in use; .*--http-port`),
    ],
    [
      [
        'start',
        '--data',
        'd2',
        '--http-port',
        '0',
        '--mqtt-port',
        '0',
        '--pg-url',
        'postgres://127.0.0.1:1/triad',
        '--log-level',
        'silent',
      ],
      /cannot open PostgreSQL at postgres:\/\/127\.0\.0\.1:1\/triad \(--pg-url or store\.url\)/,
    ],
    [['start', '--data', 'd1', '--config', 'missing.yaml'], /cannot read config file missing\.yaml/],
  ];

  it('shows the help, and nothing else, for a missing command', async () => {
    for (const args of [[], ['sim']]) {
      const run = await runTriad(args, { cwd: dir, ...FROM_SOURCE });
      assert.match(run.stdout + run.stderr, /^Usage: triad/m, `triad ${args.join(' ')}`);
      assert.doesNotMatch(run.stdout + run.stderr, /outputHelp|^triad: /m, `triad ${args.join(' ')}`);
      assert.equal(run.code, 1);
    }
  });

  it('for every subcommand: replay, sim car, start', async () => {
    // Two at a time: each is a Node process loading the sources.
    const all = cases();
    for (let i = 0; i < all.length; i += 2) {
      await Promise.all(
        all.slice(i, i + 2).map(async ([args, pattern]) => {
          const run = await runTriad(args, { cwd: dir, ...FROM_SOURCE });
          assertOneLineError(run, pattern, `triad ${args.join(' ')}`);
        }),
      );
    }
  });

  it('leaves no data folder behind that a failed start created, and keeps one that was there', async () => {
    const pg = [
      '--http-port',
      '0',
      '--mqtt-port',
      '0',
      '--pg-url',
      'postgres://127.0.0.1:1/triad',
      '--log-level',
      'silent',
    ];
    const created = await runTriad(['start', '--data', 'new/nested/data', ...pg], { cwd: dir, ...FROM_SOURCE });
    assertOneLineError(created, /cannot open PostgreSQL/, 'start with a new data folder');
    assert.ok(!(await readdir(dir)).includes('new'), 'the folders the failed start made are gone');
    await mkdir(join(dir, 'kept'));
    const kept = await runTriad(['start', '--data', 'kept/data', ...pg], { cwd: dir, ...FROM_SOURCE });
    assertOneLineError(kept, /cannot open PostgreSQL/, 'start inside an existing folder');
    assert.deepEqual(await readdir(join(dir, 'kept')), [], 'only what the start made is removed');
  });

  it('for a config file: its name and the key, not a flag', async () => {
    const config = join(dir, 'triad.yaml');
    const check = async (yaml: string, pattern: RegExp) => {
      await writeFile(config, yaml);
      const run = await runTriad(['start', '--data', 'd1', '--config', config], { cwd: dir, ...FROM_SOURCE });
      assertOneLineError(run, pattern, yaml);
    };
    await check('http: {port: "abc"}\n', /config file .*triad\.yaml: http\.port must be a port number .*"abc"/);
    await check('mqtt: {prot: 1884}\n', /unknown key mqtt\.prot \(did you mean mqtt\.port\?\)/);
    await check('commandTimeoutMs: -5\n', /commandTimeoutMs must be a whole number from 1,000 to 86,400,000, got -5/);
  });
});
