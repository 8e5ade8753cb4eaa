/** The checkout's root folder, with a trailing separator. */
export const ROOT: string;
/** Where `npm install` puts the bundle: dist/ in the checkout. */
export const BUNDLE_DIR: string;
/** The bundle's modules (file URLs) while it is newer than every source it holds; null otherwise. */
export function freshBundle(dir?: string): { cli: string; quietDebug: string } | null;
/** A build of the command line: its two modules, as file URLs. */
export interface Build {
  kind: 'bundle' | 'sources';
  cli: string;
  quietDebug: string;
}
/** The bundle in `dir` while fresh and TRIAD_FROM_SOURCE is unset; the sources through tsx otherwise. */
export function chooseBuild(env?: Record<string, string | undefined>, dir?: string): Build;
/** Runs the command line from a build `chooseBuild` picked. */
export function runCommandLine(build: Build, argv: string[]): Promise<void>;
/** Bundles the command line into `dir`; resolves with the folder and the number of sources. */
export function buildBundle(dir?: string): Promise<{ dir: string; inputs: number }>;
