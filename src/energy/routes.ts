import type { FastifyInstance } from 'fastify';
import { principalOf, type RouteModule } from '../api/server.ts';
import { NAME_PATTERN } from '../api/views.ts';
import { badRequest } from '../core/errors.ts';
import { CHARGE_MODES } from './modes/charge-mode.ts';
import type { EnergyService } from './service.ts';
import { STALE_AFTER_S_RANGE } from './site/site-meters.ts';
import { MAX_PRICE, parseCsvSeries, parseJsonSeries } from './tariff/price-series.ts';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;
const thingId = { type: 'string', minLength: 1, maxLength: 128 } as const;
const currency = {
  type: 'string',
  pattern: '^[A-Z]{3}$',
  // Said in a refusal (see src/api/validation.ts), in place of the pattern.
  description: 'an ISO 4217 currency code of three capital letters, such as EUR',
} as const;
/** A price per kWh: bounded, so no cost overflows (see MAX_PRICE). */
const price = { type: 'number', minimum: -MAX_PRICE, maximum: MAX_PRICE } as const;
const tags = ['energy'];

/** Charge points, site, tariff, plans and sessions under `/api` (bearer token). */
export function energyRoutes(service: EnergyService): RouteModule {
  return async (app: FastifyInstance) => {
    const household = (request: Parameters<typeof principalOf>[0]) => principalOf(request).householdId;

    app.post(
      '/api/chargers',
      {
        schema: {
          summary: 'Register an OCPP 1.6J charge point; answers the password it must present (shown once)',
          tags,
          body: {
            type: 'object',
            required: ['chargePointId', 'name'],
            additionalProperties: false,
            properties: {
              chargePointId: { type: 'string', minLength: 1, maxLength: 48 },
              name: { type: 'string', minLength: 1, maxLength: 100, pattern: NAME_PATTERN },
              password: { type: 'string', minLength: 16, maxLength: 40 },
            },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as { chargePointId: string; name: string; password?: string };
        void reply.status(201);
        return service.registerCharger(household(request), { ...body, name: body.name.trim() });
      },
    );

    app.get(
      '/api/chargers',
      { schema: { summary: 'Charge points with mode, state, plan and session', tags } },
      async (request) => service.listChargers(household(request)),
    );

    app.delete(
      '/api/chargers/:id',
      { schema: { summary: 'Remove an OCPP charge point', tags, params: idParam } },
      async (request, reply) => {
        await service.removeCharger(household(request), (request.params as { id: string }).id);
        void reply.status(204);
      },
    );

    app.put(
      '/api/chargers/:id/mode',
      {
        schema: {
          summary: 'Set a charge point’s mode (off, now, minsolar, solar, smart) and limits',
          tags,
          params: idParam,
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              mode: { type: 'string', enum: [...CHARGE_MODES] },
              minCurrentA: { type: 'number', minimum: 0, maximum: 80 },
              maxCurrentA: { type: 'number', minimum: 1, maximum: 80 },
              phases: { type: 'integer', enum: [1, 3] },
              voltage: { type: 'number', minimum: 100, maximum: 400 },
              vehicle: thingId,
              solar: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  onThresholdW: { type: 'number' },
                  offThresholdW: { type: 'number' },
                  onDelayMs: { type: 'number', minimum: 0, maximum: 3_600_000 },
                  offDelayMs: { type: 'number', minimum: 0, maximum: 3_600_000 },
                },
              },
            },
          },
        },
      },
      async (request) =>
        service.setMode(
          household(request),
          (request.params as { id: string }).id,
          request.body as Record<string, never>,
        ),
    );

    app.post(
      '/api/chargers/:id/availability',
      {
        schema: {
          summary: 'ChangeAvailability: make an OCPP charge point operative or inoperative',
          tags,
          params: idParam,
          body: {
            type: 'object',
            required: ['operative'],
            additionalProperties: false,
            properties: { operative: { type: 'boolean' } },
          },
        },
      },
      async (request) =>
        service.changeAvailability(
          household(request),
          (request.params as { id: string }).id,
          (request.body as { operative: boolean }).operative,
        ),
    );

    app.post(
      '/api/chargers/:id/trigger',
      {
        schema: {
          summary: 'TriggerMessage: ask an OCPP charge point to send a message now',
          tags,
          params: idParam,
          body: {
            type: 'object',
            required: ['message'],
            additionalProperties: false,
            properties: {
              message: { type: 'string', enum: ['BootNotification', 'Heartbeat', 'MeterValues', 'StatusNotification'] },
            },
          },
        },
      },
      async (request) =>
        service.triggerMessage(
          household(request),
          (request.params as { id: string }).id,
          (request.body as { message: string }).message,
        ),
    );

    app.get(
      '/api/energy/site',
      { schema: { summary: 'Site meters, fuse limit and live power', tags } },
      async (request) => service.site(household(request)),
    );

    app.put(
      '/api/energy/site',
      {
        schema: {
          summary:
            'Which things meter the grid, solar, home battery and house (sensor.power, W), the fuse limit, and how long a silent meter is trusted',
          tags,
          body: {
            type: 'object',
            required: ['limitKw'],
            additionalProperties: false,
            properties: {
              grid: thingId,
              solar: thingId,
              battery: thingId,
              house: thingId,
              limitKw: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
              houseReserveKw: { type: 'number', minimum: 0, maximum: 1000 },
              staleAfterS: { type: 'number', minimum: STALE_AFTER_S_RANGE.min, maximum: STALE_AFTER_S_RANGE.max },
            },
          },
        },
      },
      async (request) => service.setSite(household(request), request.body as { limitKw: number }),
    );

    app.get(
      '/api/energy/tariff',
      { schema: { summary: 'Fixed, time-of-use and feed-in prices', tags } },
      async (request) => service.tariffView(household(request)),
    );

    app.put(
      '/api/energy/tariff',
      {
        schema: {
          summary: 'Set the fixed price, time-of-use schedule and feed-in price (the dynamic series stays)',
          tags,
          body: {
            type: 'object',
            required: ['currency'],
            additionalProperties: false,
            properties: {
              currency,
              fixed: price,
              feedIn: price,
              timeZone: { type: 'string', maxLength: 64 },
              timeOfUse: {
                type: 'array',
                maxItems: 48,
                items: {
                  type: 'object',
                  required: ['from', 'to', 'price'],
                  additionalProperties: false,
                  properties: {
                    from: { type: 'string', maxLength: 5 },
                    to: { type: 'string', maxLength: 5 },
                    price,
                    days: { type: 'array', maxItems: 7, items: { type: 'integer', minimum: 1, maximum: 7 } },
                  },
                },
              },
            },
          },
        },
      },
      async (request) => service.setTariff(household(request), request.body as { currency: string }),
    );

    app.get('/api/energy/prices', { schema: { summary: 'The dynamic price series', tags } }, async (request) =>
      service.prices(household(request)),
    );

    // Its own scope, so a CSV body (`text/csv`, `?currency=EUR`) can be parsed alongside JSON.
    await app.register(async (scope) => {
      scope.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string' }, (_request, body, done) =>
        done(null, body),
      );
      scope.put(
        '/api/energy/prices',
        {
          schema: {
            summary:
              'Replace the dynamic price series: JSON {"currency","slots":[{"start","end","price","co2?"}]} or CSV',
            description: 'Slots are 15 or 60 minutes, without gaps or overlaps; the error names the offending slot.',
            tags,
            querystring: { type: 'object', properties: { currency } },
          },
        },
        async (request) => {
          const body = request.body;
          if (typeof body === 'string') {
            const code = (request.query as { currency?: string }).currency;
            if (!code) throw badRequest('a CSV price series needs ?currency=XXX');
            return service.setPrices(household(request), { currency: code, slots: parseCsvSeries(body) });
          }
          const json = body as { currency?: unknown } | null;
          if (!json || typeof json.currency !== 'string' || !/^[A-Z]{3}$/.test(json.currency)) {
            throw badRequest('prices need a three-letter "currency" such as "EUR"', 'invalid_prices');
          }
          return service.setPrices(household(request), { currency: json.currency, slots: parseJsonSeries(json) });
        },
      );
    });

    app.post(
      '/api/energy/plans',
      {
        schema: {
          summary: 'Plan a charge: this vehicle on this charger, to a target SoC or by an amount of energy, by a time',
          description:
            'Answers the plan: its slots with power, energy and cost, the total energy and cost, and whether it is feasible (with the shortfall and its `reason` when not; times without a known price are planned after every priced one, as `unpricedKwh`). `repeat` lists ISO weekdays (1 = Monday … 7 = Sunday) for a weekly plan, judged in the household’s time zone (the tariff’s `timeZone`); each deadline comes back at the same local time.',
          tags,
          body: {
            type: 'object',
            // Without a vehicle: the car tied to or plugged into the charger, as for its plan action.
            required: ['charger', 'by'],
            additionalProperties: false,
            properties: {
              vehicle: thingId,
              charger: thingId,
              targetSoc: { type: 'number', minimum: 0, maximum: 100 },
              energyKwh: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
              // Judged by the service (see parseBy), as the charger's plan action is: one message for both.
              by: {
                type: 'string',
                minLength: 1,
                maxLength: 64,
                description: 'an ISO 8601 date and time with its zone, or a time of day HH:MM (the next one to come)',
              },
              repeat: { type: 'array', maxItems: 7, items: { type: 'integer', minimum: 1, maximum: 7 } },
            },
          },
        },
      },
      async (request, reply) => {
        void reply.status(201);
        const body = request.body as { charger: string } & Record<string, unknown>;
        return service.planOnCharger(household(request), body.charger, body);
      },
    );

    app.get('/api/energy/plans', { schema: { summary: 'Every charge plan as planned now', tags } }, async (request) =>
      service.listPlans(household(request)),
    );

    app.get(
      '/api/energy/plans/:id',
      { schema: { summary: 'The plan of one charger', tags, params: idParam } },
      async (request) => service.plan(household(request), (request.params as { id: string }).id),
    );

    app.delete(
      '/api/energy/plans/:id',
      { schema: { summary: 'Cancel a charger’s plan', tags, params: idParam } },
      async (request, reply) => {
        await service.removePlan(household(request), (request.params as { id: string }).id);
        void reply.status(204);
      },
    );

    app.get(
      '/api/energy/sessions',
      {
        schema: {
          summary: 'Charging sessions: energy, cost and solar share per vehicle',
          tags,
          querystring: { type: 'object', properties: { since: { type: 'string', format: 'date-time' } } },
        },
      },
      async (request) => {
        const since = (request.query as { since?: string }).since;
        return service.listSessions(household(request), since ? Date.parse(since) : undefined);
      },
    );
  };
}
