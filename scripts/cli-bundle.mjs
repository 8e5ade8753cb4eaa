// The command line as one bundled module in dist/, built by `npm install` (postinstall) and used by
// bin/triad.js only while no source file it was built from has changed since. Through tsx, each
// of the ~150 source modules is resolved and loaded by a loader on a thread of its own, which was
// about half of a hub's start-up (0.56 s of importing against 0.28 s bundled, on a two-core
// machine); an edited source simply makes bin/triad.js run the sources through tsx again, so there
// is still no build step to forget.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLE_DIR = join(ROOT, 'dist');

const ENTRIES = { cli: 'src/cli/main.ts', 'quiet-debug': 'src/adapters/mqtt/quiet-debug.ts' };

/**
 * The bundle's modules when every file it was built from is older than the moment its build
 * started (a source saved while esbuild ran counts as newer); null when it is missing, half
 * written (the manifest is removed before a build and written last), or any of its sources
 * changed or went away since.
 */
export function freshBundle(dir = BUNDLE_DIR) {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
    if (typeof manifest.startedAt !== 'number' || !Array.isArray(manifest.inputs)) return null;
    for (const output of Object.keys(ENTRIES)) statSync(join(dir, `${output}.mjs`));
    for (const input of manifest.inputs) {
      if (statSync(join(dir, input)).mtimeMs >= manifest.startedAt) return null;
    }
    return {
      cli: pathToFileURL(join(dir, 'cli.mjs')).href,
      quietDebug: pathToFileURL(join(dir, 'quiet-debug.mjs')).href,
    };
  } catch {
    return null;
  }
}

/**
 * The build `triad` runs: the bundle in `dir` while it is fresh, unless TRIAD_FROM_SOURCE is set
 * (any value but '' or 0); otherwise the TypeScript sources, through tsx. bin/triad.js runs what
 * this picks, and the benchmark asks it to say which build it measured.
 */
export function chooseBuild(env = process.env, dir = BUNDLE_DIR) {
  const fromSource = !['', '0', undefined].includes(env.TRIAD_FROM_SOURCE);
  const bundle = fromSource ? null : freshBundle(dir);
  if (bundle) return { kind: 'bundle', ...bundle };
  const source = (name) => pathToFileURL(join(ROOT, ENTRIES[name])).href;
  return { kind: 'sources', cli: source('cli'), quietDebug: source('quiet-debug') };
}

/** Runs the command line from a build `chooseBuild` picked, with the process's arguments. */
export async function runCommandLine(build, argv) {
  if (build.kind === 'sources') {
    const { register } = await import('tsx/esm/api');
    register();
  }
  // Before anything loads MQTT: its disabled loggers otherwise allocate on every packet.
  const { quietDisabledDebugLoggers } = await import(build.quietDebug);
  quietDisabledDebugLoggers();
  const { main } = await import(build.cli);
  await main(argv);
}

/**
 * Bundles the command line into `dir`. Packages stay imports of node_modules. A source's
 * `import.meta.url` (in a .ts source: the only kind bundled) becomes its own file's address,
 * worked out from the bundle's, so what it finds beside itself (the writer thread's script, the
 * OCPP schemas, web/dist, package.json) is found the same from the bundle. The old manifest goes
 * first and the new one comes last, each output is written under a name of its own and renamed
 * into place, so a hub started during a build, or a second build at the same time, never runs a
 * half-written bundle: it runs the sources. The manifest lists every source the bundle holds,
 * with the build options' files (tsconfig.json, this script).
 */
export async function buildBundle(dir = BUNDLE_DIR) {
  const { build } = await import('esbuild');
  await mkdir(dir, { recursive: true });
  await rm(join(dir, 'inputs.json'), { force: true });
  const startedAt = Date.now();
  const ownUrl = {
    name: 'own-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes('import.meta.url')) return { contents: source, loader: 'ts' };
        const fromBundle = relative(dir, args.path).split('\\').join('/');
        const own = `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`;
        return { contents: source.replaceAll('import.meta.url', own), loader: 'ts', resolveDir: dirname(args.path) };
      });
    },
  };
  const result = await build({
    entryPoints: Object.entries(ENTRIES).map(([name, path]) => ({ in: join(ROOT, path), out: name })),
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // Names as written, for stack traces and profiles; a map for NODE_OPTIONS=--enable-source-maps.
    keepNames: true,
    sourcemap: 'linked',
    metafile: true,
    write: false,
    logLevel: 'warning',
    plugins: [ownUrl],
  });
  const unique = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  for (const file of result.outputFiles) {
    await writeFile(`${file.path}.${unique}.tmp`, file.contents);
    await rename(`${file.path}.${unique}.tmp`, file.path);
  }
  // Relative to the bundle, like its addresses: a checkout moved elsewhere keeps a working bundle.
  const sources = Object.keys(result.metafile.inputs).map((path) => join(process.cwd(), path));
  const inputs = [...sources, join(ROOT, 'tsconfig.json'), fileURLToPath(import.meta.url)]
    .filter((path) => existsSync(path))
    .map((path) => relative(dir, path));
  const manifest = join(dir, 'inputs.json');
  await writeFile(`${manifest}.${unique}.tmp`, JSON.stringify({ startedAt, inputs }, null, 1));
  await rename(`${manifest}.${unique}.tmp`, manifest);
  return { dir, inputs: sources.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { dir, inputs } = await buildBundle();
  console.log(`triad: command line bundled into ${relative(process.cwd(), dir) || dir} (${inputs} sources)`);
}
