import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteModule } from './server.ts';

/** Content types of what `vite build` writes; anything else goes out as bytes. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Vite names built assets by their content's hash, so a name never changes meaning: cache for a year. */
const HASHED_ASSET = /^\/assets\//;

/**
 * The page may load only its own scripts and styles and talk only to this hub (its API and
 * stream), so injected markup cannot pull code from elsewhere. The API server sends it with every
 * response outside `/api`.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export interface DashboardOptions {
  /** The built app; `web/dist` in this checkout by default. */
  root?: string;
}

/**
 * Serves the dashboard at `/`: the files of `web/dist`, and `index.html` for any other path
 * outside `/api`, so the app's own addresses survive a reload. Paths under `/api` that no route
 * took keep the API's JSON 404.
 */
export function dashboardRoutes(options: DashboardOptions = {}): RouteModule {
  const root = resolve(options.root ?? fileURLToPath(new URL('../../web/dist/', import.meta.url)));
  return (app: FastifyInstance) => {
    app.get('/*', (request, reply) => serve(root, request, reply));
  };
}

async function serve(root: string, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const rawPath = request.url.split('?', 1)[0];
  // Not the dashboard's: the API's own answer for a path no route took (404, or 405 where the
  // path's routes take other methods).
  if (rawPath === '/api' || rawPath.startsWith('/api/')) return reply.callNotFound();
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return reply.status(400).send({ error: { code: 'bad_request', message: 'the path is not valid URL encoding' } });
  }
  // Resolving inside the root and checking the result refuses `..`, encoded or not, and absolute paths.
  const file = resolve(root, `.${path}`);
  if (path.includes('\0') || (file !== root && !file.startsWith(root + sep))) {
    return reply.status(404).send({ error: { code: 'not_found', message: 'no such file' } });
  }
  const found = await fileAt(file);
  if (found) return sendFile(request, reply, file, found, HASHED_ASSET.test(path));
  // A missing file with an extension is a broken link, not an app address: a 404, not the page.
  if (extname(path) !== '') return reply.status(404).type('text/plain; charset=utf-8').send('Not found');
  const index = resolve(root, 'index.html');
  const page = await fileAt(index);
  if (!page) {
    return reply
      .status(503)
      .type('text/plain; charset=utf-8')
      .send('The dashboard has not been built. Run `npm run build` (or `npm install`) and reload.');
  }
  return sendFile(request, reply, index, page, false);
}

async function fileAt(file: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const info = await stat(file);
    return info.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : null;
  } catch {
    return null;
  }
}

function sendFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: string,
  info: { size: number; mtimeMs: number },
  hashed: boolean,
): FastifyReply {
  const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const etag = `"${info.size.toString(36)}-${Math.floor(info.mtimeMs).toString(36)}"`;
  // index.html must be checked each time, or a rebuilt app would keep loading yesterday's assets.
  void reply.header('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
  void reply.header('etag', etag);
  if (request.headers['if-none-match'] === etag) return reply.status(304).send();
  void reply.type(type);
  void reply.header('content-length', info.size);
  return reply.send(createReadStream(file));
}
