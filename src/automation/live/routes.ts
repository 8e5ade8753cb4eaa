import type { FastifyInstance } from 'fastify';
import { principalOf, YAML_MEDIA_TYPES } from '../../api/server.ts';
import { parseTime } from '../../api/things.ts';
import { badRequest, HubError } from '../../core/errors.ts';
import type { AutomationEngine } from '../engine.ts';
import { describeProblem } from '../parse/errors.ts';
import { readYamlDocument } from '../parse/yaml.ts';
import { redactSecrets, redactText } from '../redact.ts';
import type { ReplayResult } from '../replay.ts';
import type { RuleEntry } from './catalogue.ts';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 128 } },
} as const;

/** A rule as clients see it: its document, where it comes from and whether it is running. */
function ruleView(engine: AutomationEngine, entry: RuleEntry) {
  const status = entry.rule ? (entry.rule.enabled ? 'active' : 'disabled') : 'invalid';
  const override = entry.origin.kind === 'file' ? engine.fileSwitch(entry.householdId, entry.id) : null;
  return {
    id: entry.id,
    name: entry.rule?.name ?? (typeof entry.source.name === 'string' ? entry.source.name : entry.id),
    enabled: entry.rule?.enabled ?? override ?? entry.source.enabled !== false,
    // A file's rule switched on or off over the API: the switch, which wins over the file's `enabled:`.
    override,
    mode: entry.rule?.mode ?? null,
    status,
    origin: entry.origin.kind,
    file: entry.origin.kind === 'file' ? entry.origin.file : null,
    problem: entry.problem ? redactText(describeProblem(entry.problem)) : null,
    // Fields a stored or file rule holds that were ignored as it loaded (`max` on a single rule).
    warnings: entry.rule?.warnings ?? [],
    running: entry.rule ? engine.running(entry.householdId, entry.id) : 0,
    // A notify webhook's password is the rule's owner's secret: any member may read rules.
    rule: redactSecrets(entry.source),
  };
}

const REPLAY_ROUTE = '/api/automations/replay';

/**
 * A replay's answer as JSON text. The replay's bounds keep it near 20 MB; one that still does not
 * fit in a string (runs whose messages or variables grew to hundreds of MB) is a 413 saying what
 * to do, where serialising it was a 500 "Invalid string length".
 */
function replayAnswer(result: ReplayResult): string {
  try {
    return JSON.stringify(result);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new HubError(
      413,
      'replay_too_large',
      `the replay's answer is too large to send (${result.runs.length} runs); replay a shorter range`,
    );
  }
}

/** The automation API: rules, their traces, replay and webhook triggers. */
export function registerAutomationRoutes(app: FastifyInstance, engine: AutomationEngine): void {
  // YAML bodies, for the automation routes only (elsewhere the API speaks JSON). A rule's text is
  // handed to the engine as text, like text/plain, so that its problems name their line; a replay's
  // request is one YAML document of `rule`, `from` and `to`, read here, with a syntax error's line
  // and column.
  app.addContentTypeParser(YAML_MEDIA_TYPES, { parseAs: 'string' }, (request, body, done) => {
    const route = request.routeOptions.url ?? '';
    if (!route.startsWith('/api/automations')) {
      done(
        new HubError(
          415,
          'unsupported_media_type',
          `${String(request.headers['content-type']).split(';')[0]} is accepted only by the automation routes; send application/json`,
        ),
      );
      return;
    }
    const text = String(body);
    if (route !== REPLAY_ROUTE) {
      done(null, text);
      return;
    }
    try {
      done(null, readYamlDocument(text));
    } catch (error) {
      done(error as Error);
    }
  });

  app.get(
    '/api/automations',
    { schema: { summary: 'Your household’s automation rules', tags: ['automations'] } },
    async (request) => {
      // Changes already heard (a thing gone, the household's location set) are judged first.
      await engine.settled();
      return engine.list(principalOf(request).householdId).map((entry) => ruleView(engine, entry));
    },
  );

  app.get(
    '/api/automations/problems',
    { schema: { summary: 'Rules files that could not be applied', tags: ['automations'] } },
    async (request) => {
      await engine.settled();
      return engine.fileProblems(principalOf(request).householdId).map((p) => ({
        file: p.file,
        line: p.problem.line ?? null,
        field: p.problem.field,
        message: redactText(p.message),
      }));
    },
  );

  app.post(
    '/api/automations',
    {
      schema: {
        summary:
          'Create a rule: JSON, or YAML text (application/yaml, application/x-yaml, text/yaml or text/plain); answers 201 with its id',
        tags: ['automations'],
      },
    },
    async (request, reply) => {
      const entry = await engine.create(principalOf(request).householdId, request.body);
      void reply.status(201);
      return { id: entry.id, automation: ruleView(engine, entry) };
    },
  );

  app.post(
    '/api/automations/replay',
    {
      schema: {
        summary: 'Run a saved or draft rule against recorded history, sending nothing',
        tags: ['automations'],
        body: {
          type: 'object',
          required: ['rule', 'from', 'to'],
          properties: { rule: {}, from: { type: 'string', maxLength: 64 }, to: { type: 'string', maxLength: 64 } },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { rule: unknown; from: string; to: string };
      const from = parseTime(body.from, 'from');
      const to = parseTime(body.to, 'to');
      if (from === undefined || to === undefined) throw badRequest('from and to are required ISO 8601 times');
      if (from > to) throw badRequest('from must not be after to');
      const result = await engine.replay(principalOf(request).householdId, body.rule, from, to);
      return reply.type('application/json; charset=utf-8').send(replayAnswer(result));
    },
  );

  app.post(
    '/api/automations/webhooks/:id',
    { schema: { summary: 'Fire the rules whose webhook trigger has this id', tags: ['automations'], params: idParam } },
    async (request) => {
      const { id } = request.params as { id: string };
      const { fired, skipped, stored } = engine.webhook(principalOf(request).householdId, id, request.body ?? {});
      // The id names the resource the caller asked for: one no enabled rule has is not found. Rules
      // whose mode dropped the run (already running, queue full) are there: named in `skipped`.
      if (fired.length === 0 && skipped.length === 0)
        throw new HubError(404, 'not_found', `no enabled rule has webhook id ${JSON.stringify(id)}`);
      // Answered once a crash can no longer lose what the caller is told was fired.
      await stored;
      return { fired, skipped };
    },
  );

  app.get(
    '/api/automations/:id',
    { schema: { summary: 'One rule', tags: ['automations'], params: idParam } },
    async (request) => {
      const { id } = request.params as { id: string };
      await engine.settled();
      return ruleView(engine, engine.get(principalOf(request).householdId, id));
    },
  );

  app.put(
    '/api/automations/:id',
    {
      schema: {
        summary: 'Replace a rule, or send {"enabled": bool} to switch it',
        tags: ['automations'],
        params: idParam,
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      return ruleView(engine, await engine.replace(principalOf(request).householdId, id, request.body));
    },
  );

  app.delete(
    '/api/automations/:id',
    { schema: { summary: 'Delete a rule', tags: ['automations'], params: idParam } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      await engine.remove(principalOf(request).householdId, id);
      void reply.status(204);
    },
  );

  for (const verb of ['enable', 'disable'] as const) {
    app.post(
      `/api/automations/:id/${verb}`,
      {
        schema: { summary: `${verb[0].toUpperCase()}${verb.slice(1)} a rule`, tags: ['automations'], params: idParam },
      },
      async (request) => {
        const { id } = request.params as { id: string };
        return ruleView(engine, await engine.setEnabled(principalOf(request).householdId, id, verb === 'enable'));
      },
    );
  }

  app.get(
    '/api/automations/:id/traces',
    {
      schema: {
        summary: 'A rule’s runs, newest first: by default, and at most, those retention keeps (100)',
        tags: ['automations'],
        params: idParam,
        querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const { limit } = request.query as { limit?: number };
      return engine.traces(principalOf(request).householdId, id, limit);
    },
  );

  app.get(
    '/api/automations/:id/traces/:trace',
    {
      schema: {
        summary: 'One run of a rule',
        tags: ['automations'],
        params: {
          type: 'object',
          required: ['id', 'trace'],
          properties: { id: { type: 'string', maxLength: 128 }, trace: { type: 'string', maxLength: 128 } },
        },
      },
    },
    async (request) => {
      const { id, trace } = request.params as { id: string; trace: string };
      return engine.trace(principalOf(request).householdId, id, trace);
    },
  );
}
