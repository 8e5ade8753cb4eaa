import { type VissError, vissErrors } from './errors.ts';

/**
 * VISS messages over WebSocket (VISSv2 and VISSv3 transport): the requests a client sends, parsed
 * into one typed shape whatever the version, and the responses written back in the version's own
 * spelling (v2: filter key `type`, error `message` and a numeric `number`; v3: `variant`,
 * `description` and a string `number`).
 */

export type VissVersion = 'VISSv2' | 'VISSv3';
export const VISS_SUBPROTOCOLS: readonly VissVersion[] = ['VISSv3', 'VISSv2'];

export type ComparisonOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';
const OPS: readonly ComparisonOp[] = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte'];

export interface Boundary {
  op: ComparisonOp;
  boundary: number;
}

/** A trigger for subscription events (VISS core, section 7). */
export type Trigger =
  | { kind: 'timebased'; periodMs: number }
  | { kind: 'change'; op: ComparisonOp; diff: number }
  | { kind: 'range'; boundaries: Boundary[]; combination: 'AND' | 'OR' };

/** What a get asks for besides values. */
export type MetadataQuery = { kind: 'static'; generations: number | null } | { kind: 'server_capabilities' };

export interface GetRequest {
  action: 'get';
  requestId: string;
  path: string;
  paths?: string[];
  metadata?: MetadataQuery;
  authorization?: string;
}

export interface SetRequest {
  action: 'set';
  requestId: string;
  path: string;
  value: unknown;
  authorization?: string;
}

export interface SubscribeRequest {
  action: 'subscribe';
  requestId: string;
  path: string;
  paths?: string[];
  trigger: Trigger;
  authorization?: string;
}

export interface UnsubscribeRequest {
  action: 'unsubscribe';
  requestId: string;
  subscriptionId: string;
  authorization?: string;
}

export type VissRequest = GetRequest | SetRequest | SubscribeRequest | UnsubscribeRequest;

/** A parsed request, or the error to answer with (and what is known to echo back). */
export type ParsedRequest =
  | { ok: true; request: VissRequest }
  | { ok: false; action: string | null; requestId: string | null; error: VissError };

const MAX_ID = 128;
const MAX_PATHS = 100;
/** Below this, a timebased subscription is a flood the server would be sending itself. */
export const MIN_PERIOD_MS = 100;

/** Parses one client message. Never throws: anything odd becomes the spec's error. */
export function parseRequest(text: string): ParsedRequest {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return {
      ok: false,
      action: null,
      requestId: null,
      error: vissErrors.malformed('The request is malformed: not JSON'),
    };
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return {
      ok: false,
      action: null,
      requestId: null,
      error: vissErrors.malformed('The request is not a JSON object'),
    };
  }
  const m = message as Record<string, unknown>;
  const action = typeof m.action === 'string' && m.action.length <= 32 ? m.action : null;
  const requestId = idOf(m.requestId);
  const fail = (error: VissError): ParsedRequest => ({ ok: false, action, requestId, error });
  if (action !== 'get' && action !== 'set' && action !== 'subscribe' && action !== 'unsubscribe') {
    return fail(vissErrors.badAction());
  }
  if (requestId === null) return fail(vissErrors.malformed('Missing or invalid requestId'));
  let authorization: string | undefined;
  if (m.authorization !== undefined) {
    if (typeof m.authorization !== 'string' || m.authorization.length > 4096) {
      return fail(vissErrors.invalidToken());
    }
    authorization = m.authorization.replace(/^Bearer\s+/i, '');
  }
  const auth = authorization === undefined ? {} : { authorization };

  if (action === 'unsubscribe') {
    const subscriptionId = idOf(m.subscriptionId);
    if (subscriptionId === null) return fail(vissErrors.malformed('Missing or invalid subscriptionId'));
    return { ok: true, request: { action, requestId, subscriptionId, ...auth } };
  }
  if (typeof m.path !== 'string' || m.path.length === 0 || m.path.length > 512) {
    return fail(vissErrors.badPath(typeof m.path === 'string' ? m.path : ''));
  }
  const path = m.path;
  if (action === 'set') {
    if (m.value === undefined || m.value === null || (typeof m.value === 'object' && !Array.isArray(m.value))) {
      return fail(vissErrors.badValue());
    }
    return { ok: true, request: { action, requestId, path, value: m.value, ...auth } };
  }

  const filters = parseFilters(m.filter);
  if ('error' in filters) return fail(filters.error);
  const paths = filters.paths ? { paths: filters.paths } : {};
  if (action === 'get') {
    if (filters.trigger) return fail(vissErrors.badFilter(`${filters.trigger.kind} is only for subscribe`));
    const metadata = filters.metadata ? { metadata: filters.metadata } : {};
    return { ok: true, request: { action, requestId, path, ...paths, ...metadata, ...auth } };
  }
  if (filters.metadata) return fail(vissErrors.badFilter('metadata cannot be subscribed to'));
  if (!filters.trigger) return fail(vissErrors.badFilter('subscribe needs a timebased, change or range filter'));
  return { ok: true, request: { action, requestId, path, ...paths, trigger: filters.trigger, ...auth } };
}

interface Filters {
  paths?: string[];
  trigger?: Trigger;
  metadata?: MetadataQuery;
}

/**
 * The filter expression: one object or an array of at most two (one `paths` plus one other), with
 * the operation under `variant` (v3) or `type` (v2); either is accepted whatever the subprotocol,
 * since clients mix them up. A filter sent as a JSON string (as in the HTTP query form) is read too.
 */
function parseFilters(raw: unknown): Filters | { error: VissError } {
  if (raw === undefined) return {};
  let filter = raw;
  if (typeof filter === 'string') {
    try {
      filter = JSON.parse(filter);
    } catch {
      return { error: vissErrors.badFilter('not JSON') };
    }
  }
  const list = Array.isArray(filter) ? filter : [filter];
  if (list.length === 0 || list.length > 2) return { error: vissErrors.badFilter('one or two filter objects') };
  const out: Filters = {};
  for (const item of list) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      return { error: vissErrors.badFilter('each filter is an object') };
    }
    const f = item as Record<string, unknown>;
    const variant = f.variant ?? f.type;
    const parameter = f.parameter;
    if (typeof variant !== 'string') return { error: vissErrors.badFilter('missing variant') };
    if (variant === 'paths') {
      if (out.paths) return { error: vissErrors.badFilter('at most one paths filter') };
      const paths = typeof parameter === 'string' ? [parameter] : parameter;
      if (!Array.isArray(paths) || paths.length === 0 || paths.length > MAX_PATHS) {
        return { error: vissErrors.badFilter(`paths takes 1 to ${MAX_PATHS} relative paths`) };
      }
      if (!paths.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 512)) {
        return { error: vissErrors.badFilter('paths must be strings') };
      }
      out.paths = paths as string[];
      continue;
    }
    if (out.trigger || out.metadata) return { error: vissErrors.badFilter('at most one filter besides paths') };
    const parsed = parseOperation(variant, parameter);
    if ('error' in parsed) return parsed;
    if ('metadata' in parsed) out.metadata = parsed.metadata;
    else out.trigger = parsed.trigger;
  }
  return out;
}

function parseOperation(
  variant: string,
  parameter: unknown,
): { trigger: Trigger } | { metadata: MetadataQuery } | { error: VissError } {
  const p = typeof parameter === 'object' && parameter !== null ? (parameter as Record<string, unknown>) : null;
  switch (variant) {
    case 'timebased': {
      const period = numberOf(p?.period);
      if (period === null || period < MIN_PERIOD_MS || period > 86_400_000) {
        return { error: vissErrors.badFilter(`timebased period must be ${MIN_PERIOD_MS} to 86400000 ms`) };
      }
      return { trigger: { kind: 'timebased', periodMs: period } };
    }
    case 'change': {
      const op = opOf(p?.['logic-op']);
      const diff = numberOf(p?.diff);
      if (!op || diff === null) return { error: vissErrors.badFilter('change needs logic-op and diff') };
      return { trigger: { kind: 'change', op, diff } };
    }
    case 'range': {
      const items = Array.isArray(parameter) ? parameter : [parameter];
      if (items.length < 1 || items.length > 2)
        return { error: vissErrors.badFilter('range takes one or two boundaries') };
      const boundaries: Boundary[] = [];
      let combination: 'AND' | 'OR' = 'AND';
      for (const [i, item] of items.entries()) {
        const b = typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : {};
        // v3 names the operator `logic-op`, v2 `boundary-op`.
        const op = opOf(b['logic-op'] ?? b['boundary-op']);
        const boundary = numberOf(b.boundary);
        if (!op || boundary === null) return { error: vissErrors.badFilter('range needs logic-op and boundary') };
        if (i === 0 && b['combination-op'] !== undefined) {
          if (b['combination-op'] !== 'AND' && b['combination-op'] !== 'OR') {
            return { error: vissErrors.badFilter('combination-op is AND or OR') };
          }
          combination = b['combination-op'];
        }
        boundaries.push({ op, boundary });
      }
      return { trigger: { kind: 'range', boundaries, combination } };
    }
    case 'metadata':
    case 'static-metadata': {
      // v3 gives the number of generations; v2 an empty string (everything) or metadata key names.
      const generations = typeof parameter === 'string' && /^\d{1,3}$/.test(parameter) ? Number(parameter) : null;
      return { metadata: { kind: 'static', generations } };
    }
    case 'dynamic-metadata':
      if (parameter !== 'server_capabilities') {
        return { error: vissErrors.badFilter('the only dynamic metadata offered is server_capabilities') };
      }
      return { metadata: { kind: 'server_capabilities' } };
    case 'curvelog':
    case 'history':
      return { error: vissErrors.badFilter(`${variant} is not supported by this server`) };
    default:
      return { error: vissErrors.badFilter(`unknown variant ${JSON.stringify(variant.slice(0, 40))}`) };
  }
}

function idOf(value: unknown): string | null {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID ? value : null;
}

function numberOf(value: unknown): number | null {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  return Number.isFinite(n) ? n : null;
}

function opOf(value: unknown): ComparisonOp | null {
  return typeof value === 'string' && (OPS as readonly string[]).includes(value) ? (value as ComparisonOp) : null;
}

export function compare(a: number, op: ComparisonOp, b: number): boolean {
  switch (op) {
    case 'eq':
      return a === b;
    case 'ne':
      return a !== b;
    case 'gt':
      return a > b;
    case 'gte':
      return a >= b;
    case 'lt':
      return a < b;
    case 'lte':
      return a <= b;
  }
}

/** The error object in the version's spelling. */
export function errorBody(version: VissVersion, error: VissError): Record<string, unknown> {
  return version === 'VISSv2'
    ? { number: error.number, reason: error.reason, message: error.description }
    : { number: String(error.number), reason: error.reason, description: error.description };
}

/** A response, or a subscription event, with the server's timestamp. */
export function responseText(
  version: VissVersion,
  body: Record<string, unknown>,
  ts: number,
  error?: VissError,
): string {
  const message: Record<string, unknown> = { ...body };
  if (error) message.error = errorBody(version, error);
  message.ts = new Date(ts).toISOString();
  return JSON.stringify(message);
}
