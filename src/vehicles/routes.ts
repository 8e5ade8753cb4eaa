import type { FastifyInstance } from 'fastify';
import { vissErrors } from '../adapters/viss/errors.ts';
import { VISS_SUBPROTOCOLS } from '../adapters/viss/protocol.ts';
import { serveVissSocket } from '../adapters/viss/server.ts';
import type { ConnectionSource } from '../adapters/viss/session.ts';
import { type ApiContext, principalOf, type RouteModule } from '../api/server.ts';
import { NAME_PATTERN } from '../api/views.ts';
import { TooManyUnknownTokens, verifyCounting } from '../auth/security.ts';
import type { Principal } from '../auth/tokens.ts';
import { HubError, notFound } from '../core/errors.ts';
import type { VehicleService } from './service.ts';

/**
 * Different tokens one VISS connection may use (in its requests' authorization fields); each is
 * watched for revocation while the connection lasts, so their number is bounded.
 */
const MAX_TOKENS_PER_CONNECTION = 16;

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;

const vissUrl = { type: 'string', minLength: 5, maxLength: 2048 } as const;
const listQuery = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 } },
} as const;

/** Trips' `limit` counts recorded trips: the one under way is listed in addition. */
const tripsQuery = {
  type: 'object',
  properties: {
    limit: {
      ...listQuery.properties.limit,
      description:
        'How many recorded trips (50 by default). The trip the car is on, if any, comes first in addition ' +
        '(`underWay: true`, `id` and `end` null), so the list may hold one more.',
    },
  },
} as const;

/** Whether the caller may see a vehicle now: a guest only the cars their pass or grants name. */
function sees(ctx: ApiContext, principal: Principal, id: string): boolean {
  return !ctx.security || ctx.security.permissions.canSee(principal, id);
}

/**
 * A vehicle as the caller may see it. A guest sees the car as it is now (as under
 * `/api/things/{id}`), not the address of its gateway, which is the household's infrastructure
 * (and may carry the gateway's own credentials).
 */
function forViewer<T extends { viss: string | null }>(ctx: ApiContext, principal: Principal, vehicle: T): T {
  return ctx.security?.permissions.roleOf(principal) === 'guest' ? { ...vehicle, viss: null } : vehicle;
}

/** `/api/vehicles…` (bearer token) and the VISS server at `/viss/{id}` (token on the upgrade or per request). */
export function vehicleRoutes(service: VehicleService): RouteModule {
  return async (app: FastifyInstance, ctx: ApiContext) => {
    app.get(
      '/api/vehicles',
      { schema: { summary: 'Vehicles of your household (for a guest, the ones they were given)', tags: ['vehicles'] } },
      async (request) => {
        const principal = principalOf(request);
        return service
          .list(principal.householdId, (id) => sees(ctx, principal, id))
          .map((vehicle) => forViewer(ctx, principal, vehicle));
      },
    );

    app.post(
      '/api/vehicles',
      {
        schema: {
          summary: "Attach a vehicle by its own VISS endpoint (a car gateway, KUKSA's VISS, the simulator)",
          tags: ['vehicles'],
          body: {
            type: 'object',
            required: ['name', 'viss'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 100, pattern: NAME_PATTERN },
              viss: vissUrl,
            },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as { name: string; viss: string };
        void reply.status(201);
        return service.attach(principalOf(request).householdId, body);
      },
    );

    app.get(
      '/api/vehicles/:id',
      { schema: { summary: 'A vehicle with its signals and connection', tags: ['vehicles'], params: idParam } },
      async (request) => {
        const principal = principalOf(request);
        const { id } = request.params as { id: string };
        // A car a guest was not given is, to them, a car that does not exist (as under /api/things).
        if (!sees(ctx, principal, id)) throw notFound(`vehicle ${JSON.stringify(id)}`);
        return forViewer(ctx, principal, service.get(principal.householdId, id));
      },
    );

    app.patch(
      '/api/vehicles/:id',
      {
        schema: {
          summary: 'Point a vehicle at another VISS endpoint',
          tags: ['vehicles'],
          params: idParam,
          body: { type: 'object', required: ['viss'], additionalProperties: false, properties: { viss: vissUrl } },
        },
      },
      async (request) =>
        service.repoint(
          principalOf(request).householdId,
          (request.params as { id: string }).id,
          (request.body as { viss: string }).viss,
        ),
    );

    app.delete(
      '/api/vehicles/:id',
      { schema: { summary: 'Detach a vehicle (its trips stay in the history)', tags: ['vehicles'], params: idParam } },
      async (request, reply) => {
        await service.remove(principalOf(request).householdId, (request.params as { id: string }).id);
        void reply.status(204);
      },
    );

    app.get(
      '/api/vehicles/:id/trips',
      {
        schema: {
          summary:
            'Trips, newest first: start, end, distance, energy used, route; the one under way first, with end null',
          tags: ['vehicles'],
          params: idParam,
          querystring: tripsQuery,
        },
      },
      async (request) => {
        const { limit } = request.query as { limit?: number };
        return service.trips(principalOf(request).householdId, (request.params as { id: string }).id, limit);
      },
    );

    app.get(
      '/api/vehicles/:id/charging-sessions',
      {
        schema: {
          summary: 'Charging sessions, newest first: energy added, average and peak power',
          tags: ['vehicles'],
          params: idParam,
          querystring: listQuery,
        },
      },
      async (request) => {
        const { limit } = request.query as { limit?: number };
        return service.chargingSessions(principalOf(request).householdId, (request.params as { id: string }).id, limit);
      },
    );

    // Outside /api, so the API's bearer check does not run: VISS clients may instead put the
    // token in each request's `authorization` field, which only the session can see. The hub
    // picks VISSv3 over VISSv2 from the client's offer, as the simulated car does.
    const vissSocket = { websocket: true, config: { public: true, subprotocols: VISS_SUBPROTOCOLS } } as const;
    app.get('/viss/:id', vissSocket, (socket, request) => {
      const { id } = request.params as { id: string };
      const header = request.headers.authorization;
      const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
      // The connection lives as long as every token it was given: one revoked or expired closes
      // it (1008), so neither its subscriptions nor the session's cached answer outlive the token.
      const watching = new Map<string, () => void>();
      const end = (reason: string) => {
        if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(1008, reason);
      };
      const watch = (principal: Principal) => {
        // A request answered after the socket closed must not leave a watch nobody removes.
        if (watching.has(principal.tokenId) || socket.readyState > socket.OPEN) return;
        watching.set(principal.tokenId, ctx.tokens.whileValid(principal, end));
      };
      const forToken = async (token: string) => {
        // A store that fails here must not leave a rejected promise no request may ever await.
        // A revoked guest pass (or session) is refused as such: a 401 that says so. Tokens nobody
        // has are held up per address, as on the API and with the same limiter: a 429.
        const principal = await verifyCounting(ctx.tokens, ctx.security?.unknownTokenLimiter, request.ip, token).catch(
          (error: unknown) =>
            error instanceof TooManyUnknownTokens || (error instanceof HubError && error.status === 401)
              ? error
              : undefined,
        );
        if (principal === undefined) return vissErrors.unavailable('the token could not be checked');
        if (principal instanceof TooManyUnknownTokens) return vissErrors.tooManyUnknownTokens(principal.retryAfter);
        if (principal instanceof HubError) return { ...vissErrors.invalidToken(), description: principal.message };
        if (!principal) return vissErrors.invalidToken();
        if (!watching.has(principal.tokenId) && watching.size >= MAX_TOKENS_PER_CONNECTION) {
          end('too many different tokens on one connection');
          return vissErrors.invalidToken();
        }
        watch(principal);
        return service.vissSource(principal, id) ?? vissErrors.unknownPath(`vehicle ${id}`);
      };
      socket.on('close', () => {
        for (const stop of watching.values()) stop();
        watching.clear();
      });
      const connection: Promise<ConnectionSource> =
        header === undefined
          ? Promise.resolve(null)
          : bearer
            ? forToken(bearer)
            : Promise.resolve(vissErrors.invalidToken());
      serveVissSocket(socket, { clock: ctx.clock, source: connection, authorize: forToken, log: ctx.log });
    });
  };
}
