import type { DataSchema } from './schema.ts';
import type { Thing } from './thing.ts';

/**
 * Exports a thing as a W3C WoT Thing Description 1.1, so any WoT consumer (node-wot, a TD
 * directory) can read its properties and invoke its actions over Triad's HTTP API.
 */
export function toThingDescription(thing: Thing, baseUrl: string): Record<string, unknown> {
  const thingPath = `api/things/${encodeURIComponent(thing.id)}`;
  const properties: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(thing.properties)) {
    properties[name] = {
      ...tdSchema(spec.schema),
      title: name,
      readOnly: spec.writable !== true,
      observable: true,
      ...(spec.binding ? { 'triad:binding': spec.binding } : {}),
      forms: [
        {
          href: `${thingPath}/properties/${encodeURIComponent(name)}`,
          op: ['readproperty'],
          contentType: 'application/json',
        },
        {
          href: 'api/stream',
          subprotocol: 'triad-stream',
          op: ['observeproperty', 'unobserveproperty'],
          contentType: 'application/json',
        },
      ],
    };
  }
  const actions: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(thing.actions)) {
    actions[name] = {
      title: spec.title ?? name,
      ...(spec.input ? { input: tdSchema(spec.input) } : {}),
      output: {
        type: 'object',
        properties: { commandId: { type: 'string' }, status: { type: 'string' } },
      },
      safe: false,
      idempotent: false,
      synchronous: false,
      'triad:capability': spec.capability,
      forms: [
        {
          href: `${thingPath}/actions/${encodeURIComponent(name)}`,
          op: ['invokeaction'],
          'htv:methodName': 'POST',
          contentType: 'application/json',
          response: { contentType: 'application/json', 'htv:statusCodeValue': 202 },
        },
      ],
    };
  }
  const events: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(thing.events ?? {})) {
    events[name] = {
      title: spec.title ?? name,
      ...(spec.data ? { data: tdSchema(spec.data) } : {}),
      forms: [{ href: 'api/stream', subprotocol: 'triad-stream', op: ['subscribeevent'] }],
    };
  }
  return {
    '@context': [
      'https://www.w3.org/2022/wot/td/v1.1',
      { triad: 'https://triad.dev/ns#', htv: 'http://www.w3.org/2011/http#' },
    ],
    '@type': kindType(thing.kind),
    id: `urn:triad:${encodeURIComponent(thing.householdId)}:${encodeURIComponent(thing.id)}`,
    title: thing.name,
    description: thing.room ? `${thing.name} (${thing.room})` : thing.name,
    created: thing.createdAt,
    modified: thing.updatedAt,
    base: baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`,
    securityDefinitions: { bearer_sc: { scheme: 'bearer', in: 'header', name: 'Authorization' } },
    security: ['bearer_sc'],
    properties,
    actions,
    events,
  };
}

function kindType(kind: Thing['kind']): string {
  return `triad:${kind[0].toUpperCase()}${kind.slice(1)}`;
}

/** Triad schemas already use TD's DataSchema terms; drop what TD does not know. */
function tdSchema(schema: DataSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, DataSchema>).map(([k, v]) => [k, tdSchema(v)]),
      );
    } else if ((key === 'items' && value) || key === 'oneOf') {
      out[key] = Array.isArray(value) ? value.map((v) => tdSchema(v as DataSchema)) : tdSchema(value as DataSchema);
    } else if (key !== 'maxLength' || typeof value === 'number') {
      out[key] = value;
    }
  }
  return out;
}
