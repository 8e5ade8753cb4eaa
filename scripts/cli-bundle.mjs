// The command line as one bundled module in dist/, built by `npm install` (postinstall) and used by
// bin/triad.js only while no source file it was built from has changed since. Through tsx, each
// of the ~150 source modules is resolved and loaded by a loader on a thread of its own, which was
// about half of a hub's start-up (0.56 s of importing against 0.28 s bundled, on a two-core
// machine); an edited source simply makes bin/triad.js run the sources through tsx again, so there
// is still no build step to forget.
import { readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLE_DIR = join(ROOT, 'dist');

const ENTRIES = { cli: 'src/cli/main.ts', 'quiet-debug': 'src/adapters/mqtt/quiet-debug.ts' };

/**
 * The bundle's modules when every file it was built from is older than it; null when it is
 * missing, unreadable, or any of its sources changed (or went away) since.
 */
export function freshBundle(dir = BUNDLE_DIR) {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
    const built = statSync(join(dir, 'cli.mjs')).mtimeMs;
    for (const input of manifest.inputs) {
      if (statSync(join(dir, input)).mtimeMs > built) return null;
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
 * Bundles the command line into `dir`. Packages stay imports of node_modules. A source's
 * `import.meta.url` becomes its own file's address, worked out from the bundle's, so what it finds
 * beside itself (the writer thread's script, the OCPP schemas, web/dist, package.json) is found
 * the same from the bundle. The manifest, written last, lists every source the bundle holds.
 */
export async function buildBundle(dir = BUNDLE_DIR) {
  const { build } = await import('esbuild');
  await mkdir(dir, { recursive: true });
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
    logLevel: 'warning',
    plugins: [ownUrl],
  });
  // Relative to the bundle, like its addresses: a checkout moved elsewhere keeps a working bundle.
  const inputs = Object.keys(result.metafile.inputs).map((path) => relative(dir, join(process.cwd(), path)));
  const manifest = join(dir, 'inputs.json');
  await writeFile(`${manifest}.tmp`, JSON.stringify({ inputs }, null, 1));
  await rename(`${manifest}.tmp`, manifest);
  return { dir, inputs: inputs.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { dir, inputs } = await buildBundle();
  console.log(`triad: command line bundled into ${relative(process.cwd(), dir) || dir} (${inputs} sources)`);
}
