import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildBundle, chooseBuild, freshBundle, ROOT } from '../scripts/cli-bundle.mjs';
import { eventually, type HubProcess, startHubProcess } from './helpers/hub-process.ts';
import { assertOneLineError, runTriad } from './helpers/run-cli.ts';

/**
 * The command line bundled by `npm install` (scripts/cli-bundle.mjs): bin/triad.js runs it only
 * while it is newer than every source it was built from, and a hub run from it finds what its
 * sources find beside themselves (package.json, the OCPP schemas, the writer thread's script,
 * the dashboard). Built here into a folder of the test's own, so the checkout's dist/ is left as
 * it is for the other tests' hubs.
 */
describe('the bundled command line', () => {
  let dir: string;
  /** Runs the test's bundle the way bin/triad.js runs one (the same two calls). */
  let launcher: string;
  before(async () => {
    // Inside the checkout (in its git-ignored .tmp/), where the bundle's imports find node_modules.
    await mkdir(join(ROOT, '.tmp'), { recursive: true });
    dir = await mkdtemp(join(ROOT, '.tmp', 'bundle-'));
    await buildBundle(dir);
    launcher = join(dir, 'launch.mjs');
    const bundler = pathToFileURL(join(ROOT, 'scripts/cli-bundle.mjs')).href;
    await writeFile(
      launcher,
      [
        `const { chooseBuild, runCommandLine } = await import(${JSON.stringify(bundler)});`,
        `const build = chooseBuild({}, ${JSON.stringify(dir)});`,
        "if (build.kind !== 'bundle') throw new Error('the test bundle is not fresh');",
        'await runCommandLine(build, process.argv);',
      ].join('\n'),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is fresh when built, and lists the sources it holds', async () => {
    const fresh = freshBundle(dir);
    assert.ok(fresh, 'a bundle just built is fresh');
    const { inputs } = JSON.parse(await readFile(join(dir, 'inputs.json'), 'utf8')) as { inputs: string[] };
    for (const source of ['src/cli/main.ts', 'src/core/hub.ts', 'src/store/sqlite-writer.ts', 'tsconfig.json'])
      assert.ok(
        inputs.some((input) => join(dir, input) === join(ROOT, source)),
        `${source} is in the manifest`,
      );
  });

  it('is the build chosen while fresh, unless TRIAD_FROM_SOURCE asks for the sources', () => {
    assert.equal(chooseBuild({}, dir).kind, 'bundle');
    assert.equal(chooseBuild({ TRIAD_FROM_SOURCE: '0' }, dir).kind, 'bundle');
    const sources = chooseBuild({ TRIAD_FROM_SOURCE: '1' }, dir);
    assert.equal(sources.kind, 'sources');
    assert.equal(sources.cli, pathToFileURL(join(ROOT, 'src/cli/main.ts')).href);
    assert.equal(chooseBuild({}, join(dir, 'no-such-folder')).kind, 'sources');
  });

  it('is not used once a source it holds is newer, missing, or its manifest is gone', async () => {
    const manifestPath = join(dir, 'inputs.json');
    const manifest = await readFile(manifestPath, 'utf8');
    const { inputs, startedAt } = JSON.parse(manifest) as { inputs: string[]; startedAt: number };
    const withInputs = (list: string[]) => writeFile(manifestPath, JSON.stringify({ startedAt, inputs: list }));
    const edited = join(dir, 'edited.ts');
    try {
      await writeFile(edited, 'export {};');
      // Saved while the build ran: older than the bundle's files, but not than the build's start.
      const during = new Date(startedAt + 1);
      await utimes(edited, during, during);
      await withInputs([...inputs, 'edited.ts']);
      assert.equal(freshBundle(dir), null, 'a source saved during the build');
      const later = new Date(Date.now() + 60_000);
      await utimes(edited, later, later);
      assert.equal(freshBundle(dir), null, 'a source edited after the build');
      const before = new Date(startedAt - 60_000);
      await utimes(edited, before, before);
      assert.ok(freshBundle(dir), 'the same source, older than the build');
      await withInputs([...inputs, 'gone.ts']);
      assert.equal(freshBundle(dir), null, 'a source that went away');
      await rm(manifestPath);
      assert.equal(freshBundle(dir), null, 'no manifest (a build under way)');
      await writeFile(manifestPath, '{"inputs": ');
      assert.equal(freshBundle(dir), null, 'a broken manifest');
    } finally {
      await writeFile(manifestPath, manifest);
      await rm(edited, { force: true });
    }
    assert.ok(freshBundle(dir), 'fresh again with its own manifest');
  });

  it('says what is wrong with a flag or a data folder in one line, with no stack trace', async () => {
    const cwd = await mkdtemp(join(ROOT, '.tmp', 'cli-'));
    try {
      const range = ['--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'];
      await writeFile(join(cwd, 'r.yaml'), 'id: r\ntriggers: [{ trigger: time, at: "03:00" }]\nactions: []\n');
      const cases: Array<[string[], RegExp]> = [
        [['replay', 'r.yaml', ...range], /default data folder .*triad-data does not exist; .*--data DIR/],
        [['replay', 'missing.yaml', ...range], /^triad replay: file not found: missing\.yaml$/],
        [['sim', 'car', '--viss-port', 'abc'], /--viss-port must be a port number \(0–65535\), got "abc"/],
        [['sim', 'car', '--viss-port', '0', '--speedup', '-3'], /--speedup must be a number above 0/],
        [['start', '--http-port', 'abc'], /--http-port must be a port number/],
      ];
      for (const [args, pattern] of cases)
        assertOneLineError(await runTriad(args, { entry: launcher, cwd }), pattern, `triad ${args.join(' ')}`);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  describe('a hub run from it', () => {
    let hub: HubProcess;
    before(async () => {
      // Started the way bin/triad.js starts it, from the test's own copy.
      hub = await startHubProcess({ entry: launcher, args: ['--mqtt-port', '0', '--demo'] });
    });
    after(async () => {
      await hub?.stop();
      if (hub) await rm(hub.dataDir, { recursive: true, force: true });
    });

    it("reports the package's version", async () => {
      const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      const health = (await (await hub.api('/api/health')).json()) as { version: string };
      assert.equal(health.version, pkg.version);
    });

    it('talks OCPP to the demo charge point (its schemas are found)', async () => {
      const chargers = await eventually(
        async () => {
          const list = (await (await hub.api('/api/chargers')).json()) as Array<{ protocol: string }>;
          return list.length ? list : null;
        },
        { timeoutMs: 20_000, what: 'the demo charge point to boot' },
      );
      assert.equal(chargers[0].protocol, 'ocpp1.6');
    });

    it('writes history through its writer thread', async () => {
      const hall = await eventually(
        async () => {
          const things = (await (await hub.api('/api/things')).json()) as Array<{ id: string; name: string }>;
          return things.find((t) => t.name === 'Hall light');
        },
        { timeoutMs: 20_000, what: 'the demo hall light to be discovered' },
      );
      const command = await hub.api(`/api/things/${hall.id}/actions/turn_on`, { method: 'POST', body: '{}' });
      assert.ok(command.status < 300, `turn_on answered ${command.status}`);
      const rows = await eventually(
        async () => {
          const history = (await (await hub.api(`/api/things/${hall.id}/history`)).json()) as { points: unknown[] };
          return history.points.length ? history.points : null;
        },
        { timeoutMs: 10_000, what: 'history rows for the hall light' },
      );
      assert.ok(rows.length > 0);
    });

    it('serves the dashboard where it is built', async (t) => {
      if (!existsSync(join(ROOT, 'web/dist/index.html'))) return t.skip('web/dist is not built here');
      const page = await hub.api('/');
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
    });
  });
});
