/** The checkout's root folder, with a trailing separator. */
export const ROOT: string;
/** Where `npm install` puts the bundle: dist/ in the checkout. */
export const BUNDLE_DIR: string;
/** The bundle's modules (file URLs) while it is newer than every source it holds; null otherwise. */
export function freshBundle(dir?: string): { cli: string; quietDebug: string } | null;
/** Bundles the command line into `dir`; resolves with the folder and the number of sources. */
export function buildBundle(dir?: string): Promise<{ dir: string; inputs: number }>;
