/** A route as Fastify registered it, with the JSON schemas that validate it. */
export interface RouteDoc {
  method: string | string[];
  url: string;
  schema?: Record<string, unknown> | unknown;
}

/**
 * Builds the OpenAPI 3.1 document from the very schemas Fastify validates requests with, so the
 * description cannot drift from what the server accepts.
 */
export function buildOpenApi(routes: RouteDoc[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const schema = (route.schema ?? {}) as Record<string, unknown>;
    for (const method of methods) {
      paths[path] ??= {};
      paths[path][method.toLowerCase()] = operation(schema, path);
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Triad hub API',
      version,
      description: 'People, cars and home in one hub. Every call but /api/health needs a bearer token.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: { type: 'string' }, message: { type: 'string' } },
            },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}

function operation(schema: Record<string, unknown>, path: string): Record<string, unknown> {
  const op: Record<string, unknown> = {};
  if (typeof schema.summary === 'string') op.summary = schema.summary;
  if (Array.isArray(schema.security)) op.security = schema.security;
  const parameters: unknown[] = [];
  for (const [where, key] of [
    ['path', 'params'],
    ['query', 'querystring'],
  ] as const) {
    const s = schema[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    for (const [name, sub] of Object.entries(s?.properties ?? {})) {
      parameters.push({
        name,
        in: where,
        required: where === 'path' || (s?.required ?? []).includes(name),
        schema: sub,
      });
    }
  }
  // Path parameters that a route declares only in its URL still need describing.
  for (const match of path.matchAll(/\{([A-Za-z0-9_]+)\}/g)) {
    if (!parameters.some((p) => (p as { name: string }).name === match[1])) {
      parameters.push({ name: match[1], in: 'path', required: true, schema: { type: 'string' } });
    }
  }
  if (parameters.length) op.parameters = parameters;
  if (schema.body) op.requestBody = { required: true, content: { 'application/json': { schema: schema.body } } };
  const responses: Record<string, unknown> = {};
  for (const [status, body] of Object.entries((schema.response ?? {}) as Record<string, unknown>)) {
    responses[status] = { description: `HTTP ${status}`, content: { 'application/json': { schema: body } } };
  }
  if (!Object.keys(responses).some((s) => s.startsWith('2'))) responses['200'] = { description: 'OK' };
  responses.default = {
    description: 'Error',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  };
  op.responses = responses;
  return op;
}
