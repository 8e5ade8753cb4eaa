import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import AjvCompiler from '@fastify/ajv-compiler';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HTTPMethods,
} from 'fastify';
import { passIdOf, SESSION_SCOPE } from '../auth/permissions.ts';
import { type Security, TooManyUnknownTokens, verifyCounting } from '../auth/security.ts';
import { CSRF_HEADER, csrfMatches, parseCookies, SESSION_COOKIE } from '../auth/sessions.ts';
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
import { DASHBOARD_CSP } from './dashboard.ts';
import { buildOpenApi, type RouteDoc } from './openapi.ts';
import { registerStream } from './stream.ts';
import { registerThingRoutes } from './things.ts';
import { decimalQuery, integerQueryNames, type SchemaError, validationMessage } from './validation.ts';
import { noRouteFor } from './views.ts';

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
  /**
   * Roles, grants, sessions, rate limits and the audit trail. The hub always sets it; without it
   * (a bare API in a unit test) every valid token may call every route.
   */
  security?: Security;
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
    /**
     * A WebSocket route's subprotocols, best first. The hub picks the best the client offered (a
     * charger that speaks both OCPP 2.0.1 and 1.6 offers the newer first) and refuses, before the
     * upgrade, a client that offered only others; one that offered none is left to the route.
     */
    subprotocols?: readonly string[];
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
  /** Serve HTTPS (and WSS) with these PEM contents instead of plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /**
   * Reverse proxies (addresses, CIDR ranges, `loopback`…) whose X-Forwarded-For, -Proto and -Host
   * make request.ip, request.protocol and request.host: the client's address (sign-in limits), the
   * scheme it used (the cookie's Secure) and the host it asked for (the stream's Origin check).
   * Unset, those headers are anybody's to write and are not read.
   */
  trustProxy?: string[];
}

/** Strict-Transport-Security: a year, for the hub's own TLS and a trusted proxy's alike. */
const HSTS = 'max-age=31536000';

/** Paths anyone may call: the health probe and the API's own description. */
const PUBLIC_PATHS = new Set(['/api/health', '/api/openapi.json']);
/** Routes whose successful POST, PUT or DELETE is written to the audit trail: rule changes and webhooks. */
const AUDITED_CHANGES = /^\/api\/automations(\/:id(\/(enable|disable))?|\/webhooks\/:id)?$/;
const AUDITED_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The longest part of a path a route parameter takes; a longer one is a 414. */
const MAX_PARAM_LENGTH = 200;

/**
 * The API answers JSON only: no scripts, no framing. The dashboard has its own (DASHBOARD_CSP).
 */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * The token from `Authorization: Bearer …`, or, when the request opens a WebSocket, `?token=`:
 * browsers cannot set headers on a WebSocket. Anywhere else a token in the URL is refused rather
 * than read, since URLs end up in logs, proxies and browser history.
 */
export function presentedToken(request: FastifyRequest, opensSocket: boolean): string | null {
  const query = request.query as Record<string, unknown> | undefined;
  const inUrl = query !== undefined && query !== null && Object.hasOwn(query, 'token');
  if (inUrl && !opensSocket) {
    throw new HubError(
      401,
      'unauthorized',
      '?token= is accepted only when opening a WebSocket (URLs end up in logs); send the token in the Authorization header (Authorization: Bearer <token>)',
    );
  }
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? match[1] : null;
  }
  return inUrl && typeof query.token === 'string' ? query.token : null;
}

/** The caller, who must be authenticated by the time a route runs. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new HubError(401, 'unauthorized', 'a valid bearer token is required');
  return request.principal;
}

/**
 * Validators that read a query string, path or header as text made into the schema's numbers and
 * booleans (`?limit=10`), but take a JSON body as it was sent: coercing a body turned
 * `{"latitude":"52.1","longitude":true}` into a household at longitude 1, `{"name":["Alex"]}`
 * into a person called Alex and `{"things":"hall-light"}` into a grant, where a client that sent
 * the wrong type should hear so (400) and nothing should change.
 */
function bodiesAsSent() {
  // verbose: an error carries the schema it failed and the value, so the 400 can say what is
  // allowed (validationMessage); it costs nothing on a request that passes.
  const options = { removeAdditional: false, allErrors: false, verbose: true } as const;
  const asSent = AjvCompiler();
  const asText = AjvCompiler();
  type External = Parameters<typeof asSent>[0];
  type Route = Parameters<ReturnType<typeof asSent>>[0];
  return (external: External) => {
    const body = asSent(external, { customOptions: { ...options, coerceTypes: false } });
    const rest = asText(external, { customOptions: { ...options, coerceTypes: 'array' } });
    return (route: Route) => (route.httpPart === 'body' ? body : rest)(route);
  };
}

/** True when a route's named parameter matched nothing (the dashboard's `*` may be empty: that is `/`). */
function hasEmptyParameter(params: unknown): boolean {
  if (params === null || typeof params !== 'object') return false;
  for (const [name, value] of Object.entries(params)) if (name !== '*' && value === '') return true;
  return false;
}

export async function createApiServer(options: ApiServerOptions): Promise<FastifyInstance> {
  const { ctx } = options;
  const app = Fastify({
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    ...(options.trustProxy?.length ? { trustProxy: options.trustProxy } : {}),
    logger: false,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    // Long query strings and deep JSON are hostile more often than useful.
    // `/api/things/` is `/api/things`, as most clients and proxies expect: a trailing slash used to
    // be a 404 beside a 200, or an empty id ("thing \"\" not found") on a route with one.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH, ignoreTrailingSlash: true },
    schemaController: { compilersFactory: { buildValidator: bodiesAsSent() } },
    // What Fastify answers before any route or error handler (a URL it cannot decode, a request
    // that is not HTTP) speaks the hub's error format too.
    frameworkErrors: (error, _request, reply) => {
      const { status, code, message } = describeError(error);
      void (reply as FastifyReply).status(status).send({ error: { code, message } });
    },
    clientErrorHandler: answerClientError,
  });
  const docs: RouteDoc[] = [];
  /** Routes that open a WebSocket: the only ones a token may reach in the query string. */
  const socketRoutes = new Set<string>();
  /** Every method some route answers: what a 405's Allow header is chosen from. */
  const routeMethods = new Set<HTTPMethods>();
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api')) docs.push({ method: route.method, url: route.url, schema: route.schema });
    // Every integer query parameter (`limit`, …) is read as decimal digits, on every route alike.
    const integers = integerQueryNames(route.schema);
    if (integers.length > 0) route.preValidation = [decimalQuery(integers), ...[route.preValidation ?? []].flat()];
    if (route.websocket) socketRoutes.add(route.url);
    for (const method of [route.method].flat()) routeMethods.add(method);
  });
  /**
   * A 405 for a path whose routes take other methods than the request's (null when none does), with
   * the Allow header set: a wrong method is told what to use rather than that nothing is there. The
   * dashboard's catch-all (`GET /*`) takes every path: outside `/api` that is right (every such
   * path is the app's, and a `POST /` is told it takes GET), while under `/api` it hands the path
   * back to the API (see dashboardRoutes), so there a match through it does not count and a path
   * no API route takes keeps its 404. Nor does a path with a part too long for any parameter: the
   * router finds its own 414 answer for it under every method that has routes.
   */
  const methodNotAllowed = (request: FastifyRequest, reply: FastifyReply): HubError | null => {
    const path = request.url.split('?', 1)[0];
    if (path.split('/').some((part) => part.length > MAX_PARAM_LENGTH)) return null;
    const api = path === '/api' || path.startsWith('/api/');
    const allowed = [...routeMethods]
      .filter((method) => {
        const found = app.findRoute({ method, url: path }) as { params: Record<string, unknown> } | null;
        return found !== null && !(api && Object.hasOwn(found.params, '*')) && !hasEmptyParameter(found.params);
      })
      .sort();
    if (allowed.length === 0) return null;
    void reply.header('allow', allowed.join(', '));
    return new HubError(
      405,
      'method_not_allowed',
      `${noRouteFor(request.method, request.url)}; it takes ${allowed.join(', ')}`,
    );
  };
  const opensSocket = (request: FastifyRequest) =>
    request.ws && request.routeOptions.url !== undefined && socketRoutes.has(request.routeOptions.url);
  app.decorateRequest('principal', null);
  /** The subprotocol chosen for each upgrade before it happens (see subprotocols), by its raw request. */
  const chosenProtocols = new WeakMap<IncomingMessage, string>();
  await app.register(websocket, {
    options: {
      maxPayload: 64 * 1024,
      // A route without a list of its own (the stream) gets what ws did before: the first offered.
      handleProtocols: (offered, raw) => chosenProtocols.get(raw) ?? offered.values().next().value ?? false,
    },
  });
  // An empty body sent as JSON is no body: clients (fetch wrappers, curl -H) send the header on a
  // DELETE or an enable with nothing in it, and Fastify refused those outright. Anything else is
  // Fastify's own parser, with its guard against __proto__ and constructor keys.
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body);
    if (text === '') done(null, undefined);
    else void json(request, text, (error, value) => (error ? done(whyNotJson(text, error)) : done(null, value)));
  });

  const trustsProxy = Boolean(options.trustProxy?.length);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0];
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('content-security-policy', path.startsWith('/api') ? API_CSP : DASHBOARD_CSP);
    // Behind a proxy that ends TLS (`--trust-proxy`), the browser's connection is https though
    // the hub's own is plain: request.protocol reads X-Forwarded-Proto only from a trusted peer,
    // so a client that writes the header itself, or a request over plain http, never gets it.
    if (options.tls || (trustsProxy && request.protocol === 'https')) {
      reply.header('strict-transport-security', HSTS);
    }
    // An empty part (`/api/things//history`) is no id: the router would hand the route an empty
    // one, and the answer was that thing "" does not exist. It is a path no route takes.
    if (hasEmptyParameter(request.params))
      throw new HubError(404, 'not_found', noRouteFor(request.method, request.url));
    const route = request.routeOptions.url;
    // An upgrade no WebSocket route takes (the dashboard's catch-all took `/ocpp`) was upgraded
    // and closed without a word; a charger set up without its id is told where to connect instead.
    if (request.ws && (route === undefined || !socketRoutes.has(route))) {
      const routes = [...socketRoutes].map((url) => url.replace(/:(\w+)/g, '{$1}')).join(', ');
      throw new HubError(404, 'not_found', `${noRouteFor('WebSocket', request.url)}; WebSockets are at ${routes}`);
    }
    const subprotocols = request.routeOptions.config?.subprotocols;
    if (request.ws && subprotocols) {
      const offered = String(request.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((protocol) => protocol.trim())
        .filter(Boolean);
      const best = subprotocols.find((protocol) => offered.includes(protocol));
      if (best) chosenProtocols.set(request.raw, best);
      else if (offered.length > 0) {
        throw new HubError(
          400,
          'unsupported_subprotocol',
          `offered WebSocket subprotocols ${offered.join(', ').slice(0, 200)}; ${path} speaks ${subprotocols.join(' or ')}`,
        );
      }
    }
    // The route the router matched as well as the raw path: the router decodes the path first,
    // so `/%61pi/households` is `/api/households` to it, and was served without asking who called.
    if (
      !(path.startsWith('/api') || route?.startsWith('/api')) ||
      (route !== undefined && PUBLIC_PATHS.has(route)) ||
      request.routeOptions.config?.public
    )
      return;
    request.principal = await authenticate(request, reply, ctx, opensSocket(request));
    const security = ctx.security;
    if (!security) return;
    const wait = security.apiLimiter.take(request.principal.tokenId);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new HubError(429, 'too_many_requests', `too many requests; try again in ${wait} s`);
    }
    // A guest pass outside its window (or revoked) opens nothing, reads included.
    const refusal =
      security.permissions.passWindowRefusal(request.principal) ??
      (route ? security.permissions.routeRefusal(request.principal, request.method, route) : null);
    if (refusal) {
      security.audit.record({
        householdId: request.principal.householdId,
        actor: security.actorOf(request.principal),
        via: 'http',
        action: `${request.method} ${route}`,
        result: 'denied',
        reason: refusal,
      });
      throw new HubError(403, 'forbidden', refusal);
    }
  });

  // A plain HTTP request to a WebSocket route got an empty 404 from the WebSocket plugin. It runs
  // after authentication and each route's own checks (OCPP says what it speaks).
  app.addHook('preHandler', async (request) => {
    const route = request.routeOptions.url;
    if (route === undefined || !socketRoutes.has(route) || request.ws) return;
    throw new HubError(
      426,
      'upgrade_required',
      `${request.url.split('?', 1)[0]} is a WebSocket: connect with a WebSocket client`,
    );
  });

  // What sets the hub acting on its own (creating or changing a rule, firing a webhook rule) is
  // audited like a command: a rule's commands are not audited one by one, so this line is what
  // ties them to a person. The line names the rule or webhook.
  app.addHook('onResponse', async (request, reply) => {
    const security = ctx.security;
    const route = request.routeOptions.url;
    if (!security || !request.principal || !route || reply.statusCode >= 300) return;
    if (!AUDITED_METHODS.has(request.method) || !AUDITED_CHANGES.test(route)) return;
    const params = request.params as { id?: unknown } | undefined;
    const body = request.body as { id?: unknown } | undefined;
    const id = params?.id ?? (body !== null && typeof body === 'object' ? body.id : undefined);
    security.audit.record({
      householdId: request.principal.householdId,
      actor: security.actorOf(request.principal),
      via: 'http',
      action: `${request.method} ${route}${typeof id === 'string' ? ` ${id}` : ''}`,
      result: 'accepted',
      reason: null,
    });
  });

  app.setErrorHandler((error: FastifyError | HubError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const { status, code, message } = describeError(error, request);
    if (status >= 500) ctx.log.error('request failed', { method: request.method, url: request.url, error });
    void reply.status(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    const wrongMethod = methodNotAllowed(request, reply);
    if (wrongMethod) {
      void reply.status(wrongMethod.status).send({ error: { code: wrongMethod.code, message: wrongMethod.message } });
      return;
    }
    void reply.status(404).send({
      error: {
        code: 'not_found',
        message: noRouteFor(request.method, request.url),
      },
    });
  });

  // Public, so it says only that the hub is up: how many things a household has is not for anyone
  // who can reach the port.
  app.get('/api/health', { schema: { summary: 'Liveness and version', security: [] } }, async () => ({
    status: 'ok',
    version: ctx.version,
    time: new Date(ctx.clock.now()).toISOString(),
  }));

  registerThingRoutes(app, ctx);
  registerStream(app, ctx);
  for (const module of options.modules ?? []) await module(app, ctx);

  app.get('/api/openapi.json', { schema: { summary: 'This API as OpenAPI 3.1', security: [] } }, async () =>
    buildOpenApi(docs, ctx.version),
  );
  return app;
}

/**
 * The caller: a bearer token (scripts, apps; no CSRF risk since browsers never add it on their
 * own) or the dashboard's session cookie, which on unsafe methods must come with the session's
 * CSRF token in `X-CSRF-Token`.
 */
async function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: ApiContext,
  opensSocket: boolean,
): Promise<Principal> {
  const bearer = presentedToken(request, opensSocket);
  if (bearer) {
    // A guest pass past its window is refused as such (403, audited: see the onRequest hook).
    const keepExpired = ctx.security ? (scopes: string[]) => passIdOf({ scopes }) !== null : undefined;
    const principal = await verifyFrom(request, reply, ctx, bearer, { keepExpired });
    if (principal) return principal;
    throw new HubError(401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <token>)');
  }
  const session = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
  const principal = session ? await verifyFrom(request, reply, ctx, session) : null;
  if (!session || !principal?.scopes.includes(SESSION_SCOPE)) {
    throw new HubError(
      401,
      'unauthorized',
      'a valid bearer token or session is required (Authorization: Bearer <token>)',
    );
  }
  if (UNSAFE_METHODS.has(request.method)) {
    const header = request.headers[CSRF_HEADER];
    if (!csrfMatches(session, typeof header === 'string' ? header : undefined)) {
      throw new HubError(403, 'csrf_failed', 'a signed-in browser must send the X-CSRF-Token it was given');
    }
  }
  return principal;
}

/** Verifies a token or session, held up per address (verifyCounting), with Retry-After when it is. */
async function verifyFrom(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: ApiContext,
  secret: string,
  options?: { keepExpired?: (scopes: string[]) => boolean },
): Promise<Principal | null> {
  try {
    return await verifyCounting(ctx.tokens, ctx.security?.unknownTokenLimiter, request.ip, secret, options);
  } catch (error) {
    if (error instanceof TooManyUnknownTokens) void reply.header('retry-after', String(error.retryAfter));
    throw error;
  }
}

/**
 * What is wrong with a JSON body Fastify refused. Its own message ("Body is not valid JSON") said
 * the same for a typo and for valid JSON with a `__proto__` or `constructor.prototype` key, which
 * the guard refuses: the client is told which, and where the typo is. Runs on refusals only.
 */
function whyNotJson(text: string, error: Error): Error {
  try {
    JSON.parse(text);
  } catch (syntax) {
    return new HubError(400, 'invalid_json', `the body is not valid JSON: ${(syntax as Error).message.slice(0, 200)}`);
  }
  return (error as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY'
    ? new HubError(
        400,
        'invalid_json',
        'a key named __proto__, or constructor holding prototype, is not accepted in a body',
      )
    : error;
}

/** Media types of YAML text: rules are written in YAML, so the automation routes take them too. */
export const YAML_MEDIA_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

/**
 * What a 415 says: the type that was sent and the ones the route takes (Fastify's own message is
 * just "Unsupported Media Type"). Rules may also be written in YAML (YAML_MEDIA_TYPES).
 */
function unacceptedType(request: FastifyRequest): string {
  const sent =
    String(request.headers['content-type'] ?? '')
      .split(';')[0]
      .trim() || 'a body without a type';
  const yaml = (request.routeOptions.url ?? '').startsWith('/api/automations');
  const accepted = yaml ? `application/json or YAML (${YAML_MEDIA_TYPES.join(', ')})` : 'application/json';
  return `${sent.slice(0, 100)} is not accepted here; send ${accepted}`;
}

/** Fastify's own errors before any route is found, by its error code. */
const FRAMEWORK_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  FST_ERR_BAD_URL: {
    status: 400,
    code: 'bad_url',
    message: 'the URL cannot be decoded: a % in it must start an escape such as %20',
  },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'uri_too_long', message: 'a part of the URL is too long' },
};

/**
 * Answers a connection whose request Node could not read as HTTP (headers too large, a timeout,
 * garbage): no route or reply exists yet, so the response is written to the socket by hand.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'the request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout', 'the request took too long to arrive']
        : [400, 'Bad Request', 'bad_request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** Maps any error to the public error shape; internal details never leave the process. */
function describeError(
  error: FastifyError | HubError | Error,
  request?: FastifyRequest,
): { status: number; code: string; message: string } {
  if (error instanceof HubError) return { status: error.status, code: error.code, message: error.message };
  const fastifyError = error as FastifyError;
  const framework = fastifyError.code ? FRAMEWORK_ERRORS[fastifyError.code] : undefined;
  if (framework) return framework;
  if (fastifyError.validation) {
    const message = validationMessage(fastifyError.validation as SchemaError[], fastifyError.validationContext);
    return { status: 400, code: 'invalid_request', message };
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
    if (code === 'unsupported_media_type' && request) return { status, code, message: unacceptedType(request) };
    return { status, code, message: error.message };
  }
  return { status: 500, code: 'internal', message: 'internal error; see the hub log' };
}
