/**
 * The subset of JSON Schema (as used by W3C WoT Thing Descriptions' DataSchema) that Triad
 * needs to describe every property value and every action input. One validator serves the
 * twin, the command path and the TD export, so a value accepted anywhere is valid everywhere.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface DataSchema {
  type?: 'boolean' | 'integer' | 'number' | 'string' | 'object' | 'array' | 'null';
  title?: string;
  description?: string;
  /** Unit symbol, SI-style: '%', '°C', 'K', 'lx', 'W', 'kW', 'kWh', 'm', 'deg', 'km/h', 'A', 's'. */
  unit?: string;
  minimum?: number;
  maximum?: number;
  enum?: Array<string | number | boolean | null>;
  maxLength?: number;
  properties?: Record<string, DataSchema>;
  required?: string[];
  items?: DataSchema;
  maxItems?: number;
  oneOf?: DataSchema[];
  readOnly?: boolean;
  writeOnly?: boolean;
}

/** Longest string any schema accepts when it does not say: keeps hostile payloads small. */
const DEFAULT_MAX_STRING = 4096;
const DEFAULT_MAX_ITEMS = 1000;

/** Returns null when `value` fits `schema`, or a message naming the first offending path. */
export function validate(schema: DataSchema, value: unknown, path = 'value'): string | null {
  if (schema.oneOf) {
    for (const option of schema.oneOf) if (validate(option, value, path) === null) return null;
    return `${path} matches none of the allowed forms`;
  }
  if (schema.enum && !schema.enum.some((allowed) => allowed === value)) {
    return `${path} must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  switch (schema.type) {
    case undefined:
      return null;
    case 'null':
      return value === null ? null : `${path} must be null`;
    case 'boolean':
      return typeof value === 'boolean' ? null : `${path} must be a boolean`;
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${path} must be a finite number`;
      if (schema.type === 'integer' && !Number.isInteger(value)) return `${path} must be an integer`;
      if (schema.minimum !== undefined && value < schema.minimum) return `${path} must be ≥ ${schema.minimum}`;
      if (schema.maximum !== undefined && value > schema.maximum) return `${path} must be ≤ ${schema.maximum}`;
      return null;
    }
    case 'string': {
      if (typeof value !== 'string') return `${path} must be a string`;
      if (value.length > (schema.maxLength ?? DEFAULT_MAX_STRING)) return `${path} is too long`;
      return null;
    }
    case 'array': {
      if (!Array.isArray(value)) return `${path} must be an array`;
      if (value.length > (schema.maxItems ?? DEFAULT_MAX_ITEMS)) return `${path} has too many items`;
      if (schema.items) {
        for (let i = 0; i < value.length; i++) {
          const err = validate(schema.items, value[i], `${path}[${i}]`);
          if (err) return err;
        }
      }
      return null;
    }
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${path} must be an object`;
      const record = value as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        // Own fields only: `in` finds what every object has (`constructor`, `toString`).
        if (!Object.hasOwn(record, key)) return `${path}.${key} is required`;
      }
      if (schema.properties) {
        for (const [key, item] of Object.entries(record)) {
          // A field named after an Object.prototype member (`constructor`) found that member and
          // passed as allowed.
          const sub = Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
          if (!sub) return `${path}.${key} is not allowed`;
          const err = validate(sub, item, `${path}.${key}`);
          if (err) return err;
        }
      }
      return null;
    }
  }
}

/** Coerces an obviously-meant value (e.g. "21.5" for a number) or returns undefined. */
export function coerce(schema: DataSchema, value: unknown): unknown {
  if (validate(schema, value) === null) return value;
  if ((schema.type === 'number' || schema.type === 'integer') && typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    if (Number.isFinite(n) && validate(schema, n) === null) return n;
  }
  if (schema.type === 'boolean' && typeof value === 'string') {
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  return undefined;
}
