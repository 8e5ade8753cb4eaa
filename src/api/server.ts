import websocket from '@fastify/websocket';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Principal, TokenService } from '../auth/tokens.ts';
import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { CommandService } from '../core/commands.ts';
import type { HubCore } from '../core/core.ts';
import { HubError } from '../core/errors.ts';
import type { HistoryWriter } from '../core/history.ts';
import type { Logger } from '../core/log.ts';
import type { TwinRegistry } from '../core/twin.ts';
import type { Store } from '../store/store.ts';
import { buildOpenApi, type RouteDoc } from './openapi.ts';
import { registerStream } from './stream.ts';
import { registerThingRoutes } from './things.ts';

/** Everything the HTTP API reaches into; handed down from the composition root. */
export interface ApiContext {
  core: HubCore;
  twins: TwinRegistry;
  commands: CommandService;
  history: HistoryWriter;
  store: Store;
  tokens: TokenService;
  bus: Bus;
  clock: Clock;
  log: Logger;
  version: string;
}

/** A route module adds its routes to the server; later subsystems (automations, people…) add theirs. */
export type RouteModule = (app: FastifyInstance, ctx: ApiContext) => void | Promise<void>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  /** `public: true` on a route's config: it does its own authentication (OwnTracks Basic, webhooks). */
  interface FastifyContextConfig {
    public?: boolean;
  }
  /** OpenAPI words on route schemas; Fastify ignores them, /api/openapi.json reads them. */
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
    security?: unknown[];
  }
}

export interface ApiServerOptions {
  ctx: ApiContext;
  /** Extra route modules from other subsystems. */
  modules?: RouteModule[];
  bodyLimit?: number;
}

/** Paths anyone may call: the health probe and the API's own description. */
const PUBLIC_PATHS = new Set(['/api/health', '/api/openapi.json']);

/** The token from `Authorization: Bearer …`, or `?token=` (browsers cannot set WebSocket headers). */
export function presentedToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? match[1] : null;
  }
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.token === 'string' ? query.token : null;
}

/** The caller, who must be authenticated by the time a route runs. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new HubError(401, 'unauthorized', 'a valid bearer token is required');
  return request.principal;
}

export async function createApiServer(options: ApiServerOptions): Promise<FastifyInstance> {
  const { ctx } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    // Long query strings and deep JSON are hostile more often than useful.
    routerOptions: { maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });
  const docs: RouteDoc[] = [];
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api')) docs.push({ method: route.method, url: route.url, schema: route.schema });
  });
  app.decorateRequest('principal', null);
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    const path = request.url.split('?', 1)[0];
    if (!path.startsWith('/api') || PUBLIC_PATHS.has(path) || request.routeOptions.config?.public) return;
    request.principal = await ctx.tokens.verify(presentedToken(request));
    if (!request.principal) {
      throw new HubError(401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <token>)');
    }
  });

  app.setErrorHandler((error: FastifyError | HubError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const { status, code, message } = describeError(error);
    if (status >= 500) ctx.log.error('request failed', { method: request.method, url: request.url, error });
    void reply.status(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({
      error: { code: 'not_found', message: `no route for ${request.method} ${request.url.split('?', 1)[0]}` },
    });
  });

  app.get('/api/health', { schema: { summary: 'Liveness and version', security: [] } }, async () => ({
    status: 'ok',
    version: ctx.version,
    time: new Date(ctx.clock.now()).toISOString(),
    things: ctx.twins.size,
  }));

  registerThingRoutes(app, ctx);
  registerStream(app, ctx);
  for (const module of options.modules ?? []) await module(app, ctx);

  app.get('/api/openapi.json', { schema: { summary: 'This API as OpenAPI 3.1', security: [] } }, async () =>
    buildOpenApi(docs, ctx.version),
  );
  return app;
}

/** Maps any error to the public error shape; internal details never leave the process. */
function describeError(error: FastifyError | HubError | Error): { status: number; code: string; message: string } {
  if (error instanceof HubError) return { status: error.status, code: error.code, message: error.message };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    return { status: 400, code: 'invalid_request', message: fastifyError.message };
  }
  const status = fastifyError.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code =
      fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? 'body_too_large'
        : fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'unsupported_media_type'
          : fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
              fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
              error instanceof SyntaxError
            ? 'invalid_json'
            : 'bad_request';
    return { status, code, message: error.message };
  }
  return { status: 500, code: 'internal', message: 'internal error; see the hub log' };
}
