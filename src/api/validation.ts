import { decimalInteger } from '../core/decimal.ts';
import { badRequest } from '../core/errors.ts';
import { NAME_PATTERN } from './views.ts';

/**
 * One error of a route's JSON schema, as ajv gives it with `verbose: true` (the validators are
 * built so): besides the keyword and its params, the schema that holds the keyword
 * (`parentSchema`) and the value that failed (`data`).
 */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: Record<string, unknown>;
  data?: unknown;
}

/**
 * Refuses a whole-number query parameter the schema's coercion would take as a number though it is
 * not written in decimal digits (`?limit=1e3`, `0x10`, ` 5`), before the schema sees it: run as a
 * route's preValidation (the server adds it to every route with integer query parameters, see
 * integerQueryNames), so the schema still documents the parameter as an integer, and still refuses
 * text that is no number at all (`many`) and checks the range, in its own words.
 */
export function decimalQuery(names: readonly string[]) {
  return async (request: { query: unknown }): Promise<void> => {
    const query = (request.query ?? {}) as Record<string, unknown>;
    for (const name of names) {
      const value = query[name];
      for (const text of Array.isArray(value) ? value : [value]) {
        if (typeof text !== 'string' || text === '' || decimalInteger(text) !== undefined) continue;
        if (!Number.isInteger(Number(text))) continue;
        throw badRequest(
          `query parameter ${name} must be integer, in decimal digits (such as 100), got ${quoted(text)}`,
          'invalid_request',
        );
      }
    }
  };
}

/** The query parameters a route's schema declares as integers (where decimalQuery applies). */
export function integerQueryNames(schema: unknown): string[] {
  const properties = (schema as { querystring?: { properties?: Record<string, { type?: unknown }> } } | undefined)
    ?.querystring?.properties;
  if (!properties) return [];
  return Object.entries(properties)
    .filter(([, property]) => property.type === 'integer')
    .map(([name]) => name);
}

/** What each part of a request is called, and what its named parts are called. */
const PARTS: Record<string, { where: string; item: string }> = {
  body: { where: 'the body', item: 'field' },
  querystring: { where: 'the query string', item: 'query parameter' },
  params: { where: 'the URL path', item: 'path parameter' },
  headers: { where: 'the headers', item: 'header' },
};

/** Forms of `format` in words. */
const FORMATS: Record<string, string> = {
  'date-time': 'a date and time in ISO 8601, such as 2026-01-31T18:00:00Z',
  date: 'a date in ISO 8601, such as 2026-01-31',
  time: 'a time such as 18:00:00Z',
  email: 'an email address',
  uri: 'a full URL, such as https://example.com/path',
  uuid: 'a UUID',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
  hostname: 'a host name',
};

/** Long values are not echoed whole. */
function quoted(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** `/slots/3/price` as people write it: `slots[3].price`. */
function pathOf(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1);
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const raw of parts) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

/** A JSON value's type as a refusal names it: `null` and `array` apart from `object`. */
export function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function listOf(values: unknown[]): string {
  const words = values.map((value) => (typeof value === 'string' ? value : JSON.stringify(value)));
  return words.length === 1 ? words[0] : `one of ${words.join(', ')}`;
}

function num(schema: Record<string, unknown> | undefined, key: string): number | undefined {
  const value = schema?.[key];
  return typeof value === 'number' ? value : undefined;
}

/** The range a number must be in, from every bound its schema sets. */
function numberRange(schema: Record<string, unknown> | undefined, params: Record<string, unknown>): string {
  const min = num(schema, 'minimum');
  const max = num(schema, 'maximum');
  const above = num(schema, 'exclusiveMinimum');
  const below = num(schema, 'exclusiveMaximum');
  if (min !== undefined && max !== undefined) return `from ${min} to ${max}`;
  const low = min !== undefined ? `at least ${min}` : above !== undefined ? `more than ${above}` : undefined;
  const high = max !== undefined ? `at most ${max}` : below !== undefined ? `less than ${below}` : undefined;
  if (low && high) return `${low} and ${high}`;
  if (low || high) return (low ?? high) as string;
  return `${String(params.comparison)} ${String(params.limit)}`;
}

/** How long a text or list must be, from both bounds its schema sets. */
function sizeRange(
  schema: Record<string, unknown> | undefined,
  [minKey, maxKey]: [string, string],
  unit: string,
): string {
  const min = num(schema, minKey);
  const max = num(schema, maxKey);
  if (min !== undefined && max !== undefined) return `${min}–${max} ${unit}`;
  if (min !== undefined) return `at least ${min} ${min === 1 ? unit.replace(/s$/, '') : unit}`;
  return `at most ${max} ${unit}`;
}

/** What NAME_PATTERN allows, in words. */
const NAME_FORM = 'text that is not blank and has no control or hidden characters';

/**
 * A schema refusal in the user's words: the field it is about, and what is allowed there. Built
 * from the first error (the validators stop at the first), its keyword and params, and the
 * schema around it; never a regular expression.
 */
export function validationMessage(errors: readonly SchemaError[], context: string | undefined): string {
  const part = PARTS[context ?? 'body'] ?? PARTS.body;
  const error = errors[0];
  if (!error) return `${part.where} is not valid`;
  const { keyword, params, parentSchema: schema, data } = error;
  const field = pathOf(error.instancePath);
  // A field of the body goes by its name; other parts say which part they are in.
  const name = field === '' ? part.where : context === 'body' || !context ? field : `${part.item} ${field}`;
  switch (keyword) {
    case 'additionalProperties': {
      const unknown = String(params.additionalProperty);
      const known = Object.keys((schema?.properties as Record<string, unknown> | undefined) ?? {});
      const items = `${part.item}s`;
      const allowed = known.length > 0 ? `the ${items} are ${known.join(', ')}` : `no ${items} are accepted`;
      return `unknown ${part.item} ${quoted(unknown)} in ${field === '' ? part.where : field}; ${allowed}`;
    }
    case 'required': {
      const missing = pathOf(error.instancePath, String(params.missingProperty));
      return `${context === 'body' || !context ? missing : `${part.item} ${missing}`} is required${field === '' ? ` in ${part.where}` : ''}`;
    }
    case 'type': {
      const wanted = String(params.type).split(',').join(' or ');
      if (field === '' && wanted === 'object') return `${part.where} must be a JSON object`;
      // A query string or path is text by nature: only the body's own type is worth naming.
      return context === 'body' ? `${name} must be ${wanted}, not ${typeOf(data)}` : `${name} must be ${wanted}`;
    }
    case 'enum':
      return `${name} must be ${listOf((params.allowedValues as unknown[]) ?? [])}`;
    case 'const':
      return `${name} must be ${listOf([params.allowedValue])}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${name} must be ${numberRange(schema, params)}`;
    case 'minLength':
    case 'maxLength': {
      if (keyword === 'minLength' && data === '') return `${name} must not be empty`;
      const form = schema?.pattern === NAME_PATTERN ? ` of ${NAME_FORM}` : '';
      const length = typeof data === 'string' ? ` (it has ${[...data].length})` : '';
      return `${name} must be ${sizeRange(schema, ['minLength', 'maxLength'], 'characters')}${form}${length}`;
    }
    case 'minItems':
    case 'maxItems': {
      const count = Array.isArray(data) ? ` (it has ${data.length})` : '';
      return `${name} must have ${sizeRange(schema, ['minItems', 'maxItems'], 'items')}${count}`;
    }
    case 'pattern': {
      if (params.pattern === NAME_PATTERN) {
        return typeof data === 'string' && data.trim() === ''
          ? `${name} must not be blank`
          : `${name} must not contain control characters (such as a line break, a tab or an escape) or hidden ones that hide or reorder text (a zero-width space, a right-to-left override)`;
      }
      const description = typeof schema?.description === 'string' ? `: ${schema.description}` : '';
      return `${name} is not in the allowed form${description}`;
    }
    case 'format': {
      const format = String(params.format);
      return `${name} must be ${FORMATS[format] ?? `in the ${format} format`}`;
    }
    default:
      return `${name} ${error.message ?? 'is not valid'}`;
  }
}
