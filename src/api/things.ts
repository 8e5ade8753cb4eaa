import type { FastifyInstance, FastifyRequest } from 'fastify';
import { issuerOf, type Principal } from '../auth/tokens.ts';
import { thingAddedAt } from '../core/core.ts';
import { badRequest, HubError, notFound } from '../core/errors.ts';
import type { Command } from '../core/events.ts';
import { ISO_TIME_EXAMPLE, parseIsoTime } from '../core/iso-time.ts';
import type { Twin } from '../core/twin.ts';
import { toThingDescription } from '../model/td.ts';
import { thingCapabilities } from '../model/thing.ts';
import { bucketPlan } from '../store/history-buckets.ts';
import { EVENT_LIMIT, HISTORY_BUCKETS, HISTORY_LIMIT, type HistoryBuckets } from '../store/store.ts';
import { EVENT_TYPES, parseEventTypes } from './event-types.ts';
import { type ApiContext, principalOf } from './server.ts';
import { typeOf } from './validation.ts';
import { commandView, eventView, iso, thingView } from './views.ts';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;

const errorResponse = {
  type: 'object',
  properties: {
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

/**
 * Which commands a principal is shown (GET /api/commands/{id}, the stream). A guest sees only
 * the commands they issued themselves, to things they were given: who else switched the hall
 * light, and which rule did, is the household's record, like who came and went. Everyone else
 * sees every command of the household. Judged once per request or stream, per command after.
 */
export function commandsShownTo(ctx: ApiContext, principal: Principal): (command: Command) => boolean {
  const permissions = ctx.security?.permissions;
  if (!permissions) return () => true;
  if (permissions.roleOf(principal) !== 'guest') return (command) => permissions.canSee(principal, command.thing);
  const issuer = issuerOf(principal);
  return (command) => command.issuedBy === issuer && permissions.canSee(principal, command.thing);
}

/**
 * A page of history or events ends at an entry; the next page starts after it in (ts, id) order. The cursor
 * carries both, because points share milliseconds (a car's burst of reports) and a time alone
 * would either repeat them or skip them.
 */
function pageCursor(point: { ts: number; id: string }): string {
  return `${point.ts}.${point.id}`;
}

function parseCursor(value: string): { ts: number; id: string } {
  const match = /^(\d{1,15})\.(.+)$/.exec(value);
  if (!match) {
    throw badRequest(
      `after must be the next cursor of a previous page (<ms>.<id>), got ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return { ts: Number(match[1]), id: match[2] };
}

/**
 * Parses an API time (a query parameter or a body field) strictly, see parseIsoTime: a date that
 * does not exist or a time without its zone is a 400 naming the field, not a silently moved time.
 */
export function parseTime(value: unknown, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = typeof value === 'string' ? parseIsoTime(value) : null;
  if (ms === null) {
    const got = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value;
    throw badRequest(
      `${name} must be an ISO 8601 time (a date and time with its zone, such as ${ISO_TIME_EXAMPLE}), got ${got}`,
    );
  }
  return ms;
}

/** A range whose start is after its end is a mistake, not a question whose answer is empty. */
function checkOrder(start: number | undefined, end: number | undefined, startName: string, endName: string): void {
  if (start !== undefined && end !== undefined && start > end) {
    throw badRequest(`${startName} must not be after ${endName}`);
  }
}

/** The `points` of a downsampled history query: a whole number in HISTORY_BUCKETS, or a 400 saying so. */
export function parsePoints(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= HISTORY_BUCKETS.min && n <= HISTORY_BUCKETS.max)) {
    throw badRequest(
      `points must be a whole number from ${HISTORY_BUCKETS.min} to ${HISTORY_BUCKETS.max}, got ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  return n;
}

/**
 * A downsampled range with one end given: the store closes the other at the first or last recorded
 * value. When that falls on the wrong side of the given end (`from` after the last value, `to`
 * before the first), nothing was recorded in the range: it is a question whose answer is empty, as
 * the same query without `points` answers, not a reversed range (the client did not write one).
 * The range is then the given end alone, cut as any range is, so `bucketMs` is a real width.
 */
function closedOnItsGivenEnd(answer: HistoryBuckets, given: number | undefined, buckets: number): HistoryBuckets {
  if (answer.from === null || answer.to === null || answer.from <= answer.to || given === undefined) return answer;
  const plan = bucketPlan(given, given, buckets);
  return { kind: 'number', from: plan.from, to: plan.to, width: plan.width, count: 0, last: null, buckets: [] };
}

/**
 * A downsampled answer as the API gives it: the contract's `thing`, `property` and `points`, each
 * point a bucket (its start as `ts`, its `count`, and `value`: the mean for numbers, the first value
 * otherwise, so a client that reads only ts and value still draws the right line).
 */
function bucketsView(id: string, property: string, answer: HistoryBuckets) {
  const points =
    answer.kind === 'number'
      ? answer.buckets.map((b) => ({
          ts: iso(b.ts),
          value: b.mean,
          count: b.count,
          min: b.min,
          max: b.max,
          mean: b.mean,
        }))
      : answer.buckets.map((b) => ({
          ts: iso(b.ts),
          value: b.first,
          count: b.count,
          first: b.first,
          last: b.last,
          changes: b.changes,
        }));
  return {
    thing: id,
    property,
    points,
    next: null,
    downsampled: {
      kind: answer.kind,
      from: answer.from === null ? null : iso(answer.from),
      to: answer.to === null ? null : iso(answer.to),
      bucketMs: answer.width,
      count: answer.count,
      last: answer.last ? { ts: iso(answer.last.ts), value: answer.last.value } : null,
    },
  };
}

function twinFor(ctx: ApiContext, request: FastifyRequest, id: string): Twin {
  const principal = principalOf(request);
  const twin = ctx.twins.get(principal.householdId, id);
  // A thing a guest was not given is, to them, a thing that does not exist.
  if (!twin || (ctx.security && !ctx.security.permissions.canSee(principal, id))) {
    throw notFound(`thing ${JSON.stringify(id)}`);
  }
  return twin;
}

/**
 * The later of a range's asked start and the thing's beginning (thingAddedAt), as one lower bound
 * for the query: what was recorded under the id before belongs to a removed thing of the same id
 * (the car sold, the lamp replaced), whose rows stay stored.
 */
function notBefore(start: number | undefined, added: number | undefined): number | undefined {
  if (added === undefined) return start;
  return start === undefined ? added : Math.max(start, added);
}

/**
 * The base URL a client used to reach us, for links in Thing Descriptions: behind a trusted
 * reverse proxy (`--trust-proxy`) the scheme and host it forwarded, as the stream's Origin check
 * reads them, so links point at the proxy and not at the hub's own port.
 */
function baseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host || 'localhost'}/`;
}

export function registerThingRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/api/things',
    {
      schema: {
        summary: 'All things of your household, with their current state',
        querystring: {
          type: 'object',
          properties: { kind: { type: 'string', maxLength: 32 }, capability: { type: 'string', maxLength: 32 } },
        },
      },
    },
    async (request) => {
      const { kind, capability } = request.query as { kind?: string; capability?: string };
      const principal = principalOf(request);
      return ctx.twins
        .list(principal.householdId)
        .filter(
          ({ thing }) =>
            (!kind || thing.kind === kind) &&
            (!capability || thingCapabilities(thing).includes(capability)) &&
            (!ctx.security || ctx.security.permissions.canSee(principal, thing.id)),
        )
        .map(thingView)
        .sort((a, b) => a.id.localeCompare(b.id));
    },
  );

  app.get(
    '/api/things/:id',
    { schema: { summary: 'One thing with its current state', params: idParam, response: { 404: errorResponse } } },
    async (request) => thingView(twinFor(ctx, request, (request.params as { id: string }).id)),
  );

  app.get(
    '/api/things/:id/td',
    { schema: { summary: 'The thing as a W3C WoT Thing Description 1.1', params: idParam } },
    async (request, reply) => {
      const twin = twinFor(ctx, request, (request.params as { id: string }).id);
      void reply.type('application/td+json');
      return toThingDescription(twin.thing, baseUrl(request));
    },
  );

  app.get(
    '/api/things/:id/properties/:property',
    {
      schema: {
        summary: "One property's current value",
        params: {
          type: 'object',
          required: ['id', 'property'],
          properties: { id: { type: 'string', maxLength: 128 }, property: { type: 'string', maxLength: 128 } },
        },
      },
    },
    async (request) => {
      const { id, property } = request.params as { id: string; property: string };
      const twin = twinFor(ctx, request, id);
      if (!Object.hasOwn(twin.thing.properties, property))
        throw notFound(`property ${JSON.stringify(property)} on ${id}`);
      const current = twin.state.get(property);
      return { thing: id, property, value: current?.value ?? null, ts: current ? iso(current.ts) : null };
    },
  );

  app.post(
    '/api/things/:id/actions/:action',
    {
      schema: {
        summary: 'Invoke an action; answers 202 with the command id to follow',
        params: {
          type: 'object',
          required: ['id', 'action'],
          properties: { id: { type: 'string', maxLength: 128 }, action: { type: 'string', maxLength: 128 } },
        },
        response: {
          202: {
            type: 'object',
            properties: { commandId: { type: 'string' }, status: { type: 'string' } },
          },
        },
      },
    },
    async (request, reply) => {
      const { id, action } = request.params as { id: string; action: string };
      const principal = principalOf(request);
      const sent = String(request.headers['content-type'] ?? '')
        .split(';')[0]
        .trim();
      // Fastify reads text/plain as a string (the automation routes take YAML that way): here it
      // is a JSON body sent with the wrong type, answered as such rather than "input must be an object".
      if (typeof request.body === 'string' && sent.toLowerCase() !== 'application/json') {
        throw new HubError(
          415,
          'unsupported_media_type',
          `${sent.slice(0, 100)} is not accepted here; send application/json`,
        );
      }
      // No body is no input; anything sent must be the input itself, a JSON object. `null` is
      // refused like a string or a list: taking it for {} would run an action whose input was lost.
      const input = request.body === undefined ? {} : request.body;
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new HubError(
          400,
          'invalid_input',
          `the body must be a JSON object, the action's input (send no body, or {}, for an action without input), not ${typeOf(input)}`,
        );
      }
      const command = await ctx.commands.dispatch({
        householdId: principal.householdId,
        thing: id,
        action,
        input,
        issuedBy: issuerOf(principal),
        principal,
        via: 'http',
      });
      void reply.status(202);
      return { commandId: command.id, status: command.status };
    },
  );

  app.get('/api/commands/:id', { schema: { summary: "A command's status", params: idParam } }, async (request) => {
    const { id } = request.params as { id: string };
    const principal = principalOf(request);
    const live = ctx.commands.get(id);
    const command =
      live?.householdId === principal.householdId ? live : await ctx.store.getCommand(principal.householdId, id);
    // Someone else's command is, to a guest, one that does not exist: ids cannot be probed.
    if (!command || !commandsShownTo(ctx, principal)(command)) throw notFound(`command ${JSON.stringify(id)}`);
    return commandView(command);
  });

  app.get(
    '/api/things/:id/history',
    {
      schema: {
        summary: "A property's recorded values over a time range",
        params: idParam,
        querystring: {
          type: 'object',
          properties: {
            property: { type: 'string', maxLength: 128 },
            from: { type: 'string', maxLength: 64 },
            to: { type: 'string', maxLength: 64 },
            limit: { type: 'integer', minimum: 1, maximum: 100000 },
            after: { type: 'string', maxLength: 300 },
            points: {
              type: 'string',
              maxLength: 16,
              description:
                'Downsample to at most this many points (2 to 5000), one per equal span of the range, summed up by the ' +
                'store: numbers as min, max, mean and count; other values as first, last, changes and count. Needs ' +
                '`property`; not with `limit` or `after`.',
            },
          },
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const query = request.query as {
        property?: string;
        from?: string;
        to?: string;
        limit?: number;
        after?: string;
        points?: string;
      };
      const twin = twinFor(ctx, request, id);
      // `?property=` is a property left out by mistake, not "every property": said so, rather than
      // answered with no points (and, with points=, told that a property is needed).
      if (query.property === '') throw badRequest('property must not be empty: name one, or leave property out');
      if (query.property !== undefined && !Object.hasOwn(twin.thing.properties, query.property)) {
        throw notFound(`property ${JSON.stringify(query.property)} on ${id}`);
      }
      const from = parseTime(query.from, 'from');
      const to = parseTime(query.to, 'to');
      checkOrder(from, to, 'from', 'to');
      const buckets = parsePoints(query.points);
      if (buckets !== undefined && query.property === undefined)
        throw badRequest('points needs a property: it downsamples one property at a time');
      if (buckets !== undefined && (query.limit !== undefined || query.after !== undefined))
        throw badRequest('points cannot be combined with limit or after: a downsampled answer is one page');
      const after = query.after === undefined ? undefined : parseCursor(query.after);
      // Read your own writes, as /api/events does.
      await ctx.history.flush();
      if (buckets !== undefined && query.property !== undefined) {
        const answer = await ctx.store.bucketHistory({
          householdId: twin.thing.householdId,
          thing: id,
          property: query.property,
          from,
          to,
          since: thingAddedAt(twin.thing),
          buckets,
        });
        return bucketsView(id, query.property, closedOnItsGivenEnd(answer, from ?? to, buckets));
      }
      const limit = query.limit ?? HISTORY_LIMIT.default;
      const points = await ctx.store.queryHistory({
        householdId: twin.thing.householdId,
        thing: id,
        property: query.property,
        from: notBefore(from, thingAddedAt(twin.thing)),
        to,
        limit,
        after,
      });
      const last = points.at(-1);
      return {
        thing: id,
        property: query.property ?? null,
        // Without a property the page spans every one: each point says whose value it is.
        points: points.map((p) =>
          query.property
            ? { ts: iso(p.ts), value: p.value, id: p.id, cause: p.cause }
            : { ts: iso(p.ts), property: p.property, value: p.value, id: p.id, cause: p.cause },
        ),
        // A full page may have more behind it: `after=<next>` asks for the points that follow,
        // including the rest of a millisecond the page ended in.
        next: last && points.length === limit ? pageCursor(last) : null,
      };
    },
  );

  app.get(
    '/api/events',
    {
      schema: {
        summary: 'State changes, commands and other events, with their causes, oldest first',
        querystring: {
          type: 'object',
          properties: {
            since: { type: 'string', maxLength: 64 },
            until: { type: 'string', maxLength: 64 },
            type: {
              type: 'string',
              maxLength: 200,
              description: `Comma-separated event types: ${EVENT_TYPES.join(', ')}`,
            },
            thing: { type: 'string', maxLength: 128 },
            limit: { type: 'integer', minimum: 1, maximum: 10000 },
            after: { type: 'string', maxLength: 300 },
          },
        },
      },
    },
    async (request, reply) => {
      const query = request.query as {
        since?: string;
        until?: string;
        type?: string;
        thing?: string;
        limit?: number;
        after?: string;
      };
      const since = parseTime(query.since, 'since');
      const until = parseTime(query.until, 'until');
      checkOrder(since, until, 'since', 'until');
      const types = parseEventTypes(query.type);
      const after = query.after === undefined ? undefined : parseCursor(query.after);
      const limit = query.limit ?? EVENT_LIMIT.default;
      // As for a thing's history and the stream: an id the household has no thing by is a 404
      // naming it, not an empty page that reads as "nothing happened" (a typo, a removed thing).
      const twin = query.thing === undefined ? undefined : twinFor(ctx, request, query.thing);
      // Read your own writes: what the hub has seen is in the answer even before its batch is due.
      await ctx.history.flush();
      // Commands' events are read from their rows: their latest statuses too.
      await ctx.commands.flush();
      const events = await ctx.store.listEvents({
        householdId: principalOf(request).householdId,
        // A thing's events begin when it was added; events of no one thing are all listed.
        since: twin ? notBefore(since, thingAddedAt(twin.thing)) : since,
        until,
        types,
        thing: query.thing,
        limit,
        after,
      });
      // A full page may have more behind it (the answer stays the contract's array): the link
      // asks for what follows, including the rest of the millisecond the page ended in.
      const last = events.at(-1);
      if (last && events.length === limit) {
        const next = new URLSearchParams();
        for (const [key, value] of Object.entries({ ...query, after: pageCursor(last) })) next.set(key, String(value));
        void reply.header('link', `</api/events?${next}>; rel="next"`);
      }
      return events.map(eventView);
    },
  );
}
