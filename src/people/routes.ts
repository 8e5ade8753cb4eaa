import type { FastifyInstance } from 'fastify';
import { principalOf, type RouteModule } from '../api/server.ts';
import { NAME_PATTERN } from '../api/views.ts';
import { HubError } from '../core/errors.ts';
import type { PeopleService } from './service.ts';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;

const nameBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 100, pattern: NAME_PATTERN } },
} as const;

const latitude = { type: 'number', minimum: -90, maximum: 90 } as const;
const longitude = { type: 'number', minimum: -180, maximum: 180 } as const;
const radius = { type: 'number', exclusiveMinimum: 0, maximum: 100_000 } as const;
/** Seconds; a day is the longest delay that still reads as presence rather than absence. */
const delay = { type: 'number', minimum: 0, maximum: 86_400 } as const;

/** The people, zones and household routes (bearer token), and the OwnTracks endpoint (the app's Basic auth). */
export function peopleRoutes(service: PeopleService): RouteModule {
  return async (app: FastifyInstance) => {
    app.get(
      '/api/people',
      { schema: { summary: 'People of your household, with presence, position and trackers', tags: ['people'] } },
      async (request) => service.listPeople(principalOf(request).householdId),
    );

    app.post(
      '/api/people',
      { schema: { summary: 'Add a person', tags: ['people'], body: nameBody } },
      async (request, reply) => {
        const { name } = request.body as { name: string };
        void reply.status(201);
        return service.createPerson(principalOf(request).householdId, name.trim());
      },
    );

    app.delete(
      '/api/people/:id',
      { schema: { summary: 'Remove a person and their trackers', tags: ['people'], params: idParam } },
      async (request, reply) => {
        await service.removePerson(principalOf(request).householdId, (request.params as { id: string }).id);
        void reply.status(204);
      },
    );

    app.post(
      '/api/people/:id/trackers',
      {
        schema: {
          summary: "Add a tracker (a phone) to a person; answers the OwnTracks app's username and password, shown once",
          tags: ['people'],
          params: idParam,
          body: nameBody,
        },
      },
      async (request, reply) => {
        const { id } = request.params as { id: string };
        const { name } = request.body as { name: string };
        void reply.status(201);
        return service.createTracker(principalOf(request).householdId, id, name.trim());
      },
    );

    app.delete(
      '/api/people/:id/trackers/:tracker',
      {
        schema: {
          summary: 'Remove a tracker; its credentials stop working at once',
          tags: ['people'],
          params: {
            type: 'object',
            required: ['id', 'tracker'],
            properties: { id: { type: 'string', maxLength: 128 }, tracker: { type: 'string', maxLength: 128 } },
          },
        },
      },
      async (request, reply) => {
        const { id, tracker } = request.params as { id: string; tracker: string };
        await service.removeTracker(principalOf(request).householdId, id, tracker);
        void reply.status(204);
      },
    );

    app.get(
      '/api/zones',
      { schema: { summary: 'Zones of your household, home first', tags: ['people'] } },
      async (request) => service.listZones(principalOf(request).householdId),
    );

    app.post(
      '/api/zones',
      {
        schema: {
          summary: 'Add a zone: a circle with its own arrive and leave delays (seconds)',
          tags: ['people'],
          body: {
            type: 'object',
            required: ['name', 'latitude', 'longitude', 'radius'],
            additionalProperties: false,
            properties: {
              name: nameBody.properties.name,
              latitude,
              longitude,
              radius,
              arriveDelay: delay,
              leaveDelay: delay,
            },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as {
          name: string;
          latitude: number;
          longitude: number;
          radius: number;
          arriveDelay?: number;
          leaveDelay?: number;
        };
        void reply.status(201);
        return service.createZone(principalOf(request).householdId, { ...body, name: body.name.trim() });
      },
    );

    app.delete(
      '/api/zones/:id',
      { schema: { summary: 'Remove a zone', tags: ['people'], params: idParam } },
      async (request, reply) => {
        await service.removeZone(principalOf(request).householdId, (request.params as { id: string }).id);
        void reply.status(204);
      },
    );

    app.get(
      '/api/household',
      { schema: { summary: "The household's home location, presence settings and presence", tags: ['people'] } },
      async (request) => service.household(principalOf(request).householdId),
    );

    app.put(
      '/api/household',
      {
        schema: {
          summary: 'Set the home location and presence settings (fields left out keep their value)',
          tags: ['people'],
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              latitude,
              longitude,
              homeRadius: radius,
              arriveDelay: delay,
              leaveDelay: delay,
              accuracyLimit: { type: 'number', minimum: 1, maximum: 100_000 },
              importWaypoints: { type: 'boolean' },
              // Seconds; 0 never. Up to 30 days: a phone silent longer than that is not coming back.
              staleAfter: { type: 'number', minimum: 0, maximum: 30 * 86_400 },
            },
          },
        },
      },
      async (request) =>
        service.updateHousehold(principalOf(request).householdId, request.body as Record<string, unknown>),
    );

    // Its own scope: the app's body is read raw (the app may POST an empty body, which the JSON
    // parser would refuse), and its authentication is the app's HTTP Basic, not a bearer token.
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
      scope.post(
        '/api/owntracks',
        {
          config: { public: true },
          schema: {
            summary: 'OwnTracks HTTP mode: the app posts its messages here with HTTP Basic per tracker',
            description:
              'Answers 200 with the other household members as OwnTracks `location` and `card` messages. A message that is well-formed but not acted on (a replay, a stale time) still answers 200, with the reason in `x-triad-ignored`, so the phone does not retry it forever.',
            tags: ['people'],
            security: [{ basic: [] }],
          },
        },
        async (request, reply) => {
          const header = (name: string) => {
            const value = request.headers[name];
            return typeof value === 'string' ? value : undefined;
          };
          const answer = await service.receiveHttp({
            authorization: header('authorization'),
            limitUser: header('x-limit-u'),
            limitDevice: header('x-limit-d'),
            body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
          });
          if (answer.status === 401)
            void reply.header('www-authenticate', 'Basic realm="Triad OwnTracks", charset="UTF-8"');
          // Header values must be plain ASCII; a reason may quote a region name in any script.
          if ('ignored' in answer && answer.ignored)
            void reply.header('x-triad-ignored', answer.ignored.replace(/[^\x20-\x7e]/g, '?'));
          if (answer.status !== 200) throw new HubError(answer.status, answer.code, answer.message);
          void reply.status(200).type('application/json');
          return answer.friends;
        },
      );
    });
  };
}
