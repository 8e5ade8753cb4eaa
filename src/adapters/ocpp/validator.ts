import { readdirSync, readFileSync } from 'node:fs';
import { parseIsoTime } from '../../core/iso-time.ts';

/**
 * Checks OCPP 1.6J payloads against the official JSON schemas (draft-04, in `schemas/`). The
 * schemas use a small part of JSON Schema, so a small validator covers them, and it can say which
 * OCPP-J error code a violation is (a generic validator's messages would have to be re-parsed).
 */

/** The part of draft-04 JSON Schema the OCPP 1.6 schemas use. */
export interface OcppSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, OcppSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: OcppSchema;
  enum?: string[];
  maxLength?: number;
  format?: 'date-time';
  multipleOf?: number;
}

/** The CALLERROR codes of OCPP-J 1.6 (section 4.2.3), spelled as the specification spells them. */
export type OcppErrorCode =
  | 'NotImplemented'
  | 'NotSupported'
  | 'InternalError'
  | 'ProtocolError'
  | 'SecurityError'
  | 'FormationViolation'
  | 'PropertyConstraintViolation'
  | 'OccurenceConstraintViolation'
  | 'TypeConstraintViolation'
  | 'GenericError';

export interface Violation {
  code: OcppErrorCode;
  message: string;
}

/**
 * RFC 3339 date-time, as the schemas' `format: date-time` requires: this shape, and a day the
 * calendar has (parseIsoTime; Date.parse rolled 31 February over into 3 March and took it).
 */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Returns null when `value` fits, or the first violation with its OCPP-J error code. */
export function checkPayload(schema: OcppSchema, value: unknown, path = 'payload'): Violation | null {
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { code: 'TypeConstraintViolation', message: `${path} must be an object` };
      }
      const record = value as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        if (!Object.hasOwn(record, key)) {
          return { code: 'OccurenceConstraintViolation', message: `${path}.${key} is required` };
        }
      }
      for (const [key, item] of Object.entries(record)) {
        const sub = schema.properties && Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
        if (!sub) {
          // A field the PDU does not have: the payload does not conform to the PDU's structure.
          if (schema.additionalProperties === false) {
            return { code: 'FormationViolation', message: `${path}.${key} is not part of this message` };
          }
          continue;
        }
        const violation = checkPayload(sub, item, `${path}.${key}`);
        if (violation) return violation;
      }
      return null;
    }
    case 'array': {
      if (!Array.isArray(value)) return { code: 'TypeConstraintViolation', message: `${path} must be an array` };
      if (schema.items) {
        for (let i = 0; i < value.length; i++) {
          const violation = checkPayload(schema.items, value[i], `${path}[${i}]`);
          if (violation) return violation;
        }
      }
      return null;
    }
    case 'string': {
      if (typeof value !== 'string') return { code: 'TypeConstraintViolation', message: `${path} must be a string` };
      if (schema.maxLength !== undefined && value.length > schema.maxLength) {
        return { code: 'PropertyConstraintViolation', message: `${path} is longer than ${schema.maxLength}` };
      }
      if (schema.enum && !schema.enum.includes(value)) {
        return { code: 'PropertyConstraintViolation', message: `${path} must be one of ${schema.enum.join(', ')}` };
      }
      if (schema.format === 'date-time' && (!DATE_TIME.test(value) || parseIsoTime(value) === null)) {
        return { code: 'PropertyConstraintViolation', message: `${path} must be an RFC 3339 date-time` };
      }
      return null;
    }
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return { code: 'TypeConstraintViolation', message: `${path} must be a number` };
      }
      if (schema.type === 'integer' && !Number.isInteger(value)) {
        return { code: 'TypeConstraintViolation', message: `${path} must be an integer` };
      }
      if (schema.multipleOf !== undefined && !isMultiple(value, schema.multipleOf)) {
        return { code: 'PropertyConstraintViolation', message: `${path} must be a multiple of ${schema.multipleOf}` };
      }
      return null;
    }
    case 'boolean':
      return typeof value === 'boolean'
        ? null
        : { code: 'TypeConstraintViolation', message: `${path} must be a boolean` };
    default:
      return null;
  }
}

/** multipleOf for decimals like 0.1, where 7.3 / 0.1 is not an exact integer in binary floating point. */
function isMultiple(value: number, step: number): boolean {
  const ratio = value / step;
  return Math.abs(ratio - Math.round(ratio)) < 1e-9 * Math.max(1, Math.abs(ratio));
}

/** Every schema in `schemas/`, by file name without `.json` (`BootNotification`, `BootNotificationResponse`). */
export function loadSchemas(): Map<string, OcppSchema> {
  const dir = new URL('./schemas/', import.meta.url);
  const schemas = new Map<string, OcppSchema>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json')) continue;
    schemas.set(file.slice(0, -5), JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as OcppSchema);
  }
  return schemas;
}
