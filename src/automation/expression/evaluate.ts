import type { Expr } from './parser.ts';

/** What an expression can see: variables (trigger, rule variables) and the household's state. */
export interface ExpressionScope {
  variables: Record<string, unknown>;
  state(thing: string, property: string): unknown;
  /** Epoch ms on the engine's clock. */
  now(): number;
}

/**
 * Evaluates a parsed expression. Total by design: a type mismatch or a missing value yields null
 * (and comparisons with null are false), so a rule's condition is false rather than crashing the
 * run. There are no loops or user functions, so evaluation always ends.
 */
export function evaluate(expr: Expr, scope: ExpressionScope): unknown {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'name':
      return Object.hasOwn(scope.variables, expr.name) ? scope.variables[expr.name] : null;
    case 'list':
      return list(expr.items.map((item) => evaluate(item, scope)));
    case 'member':
      return property(evaluate(expr.object, scope), expr.name);
    case 'index': {
      const object = evaluate(expr.object, scope);
      const index = evaluate(expr.index, scope);
      if (Array.isArray(object) && typeof index === 'number')
        return Number.isInteger(index) ? (object[index < 0 ? object.length + index : index] ?? null) : null;
      if (typeof object === 'string' && typeof index === 'number')
        return Number.isInteger(index) ? (object[index] ?? null) : null;
      return typeof index === 'string' ? property(object, index) : null;
    }
    case 'unary': {
      const value = evaluate(expr.operand, scope);
      if (expr.op === 'not') return !truthy(value);
      return typeof value === 'number' ? -value : null;
    }
    case 'binary':
      return binary(expr, scope);
    case 'call':
      return call(expr.fn, expr.args, scope);
  }
}

/**
 * The most characters and list items one value may hold. Without it a `repeat` that doubles a
 * variable (`{{ s + s }}`, `{{ [l, l] }}`) would grow it exponentially until the hub runs out of
 * memory or hangs writing it out; a value that would grow past this is null instead.
 */
const MAX_VALUE_SIZE = 1_000_000;
/** The size of each list an expression built, counted through nested lists it shares. */
const listSizes = new WeakMap<unknown[], number>();

function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return listSizes.get(value) ?? value.length;
  return 1;
}

function list(items: unknown[]): unknown[] | null {
  let size = 1;
  for (const item of items) size += sizeOf(item);
  if (size > MAX_VALUE_SIZE) return null;
  listSizes.set(items, size);
  return items;
}

/** What counts as true in a condition: false, null, 0, '' and empty lists do not. */
export function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return (
    value !== null && value !== undefined && value !== false && value !== 0 && value !== '' && !Number.isNaN(value)
  );
}

/** Own, plain data only: `__proto__`, `constructor` and friends are never reachable. */
function property(object: unknown, name: string): unknown {
  if (typeof object === 'string' && name === 'length') return object.length;
  if (Array.isArray(object)) return name === 'length' ? object.length : null;
  if (object === null || typeof object !== 'object') return null;
  return Object.hasOwn(object, name) ? ((object as Record<string, unknown>)[name] ?? null) : null;
}

function binary(expr: Extract<Expr, { kind: 'binary' }>, scope: ExpressionScope): unknown {
  if (expr.op === 'and') return truthy(evaluate(expr.left, scope)) && truthy(evaluate(expr.right, scope));
  if (expr.op === 'or') return truthy(evaluate(expr.left, scope)) || truthy(evaluate(expr.right, scope));
  const a = evaluate(expr.left, scope);
  const b = evaluate(expr.right, scope);
  switch (expr.op) {
    case '==':
      return equal(a, b);
    case '!=':
      return !equal(a, b);
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const order = compare(a, b);
      if (order === null) return false;
      return expr.op === '<' ? order < 0 : expr.op === '<=' ? order <= 0 : expr.op === '>' ? order > 0 : order >= 0;
    }
    case 'in':
      if (Array.isArray(b)) return b.some((item) => equal(item, a));
      if (typeof b === 'string' && typeof a === 'string') return b.includes(a);
      if (b !== null && typeof b === 'object' && typeof a === 'string') return Object.hasOwn(b, a);
      return false;
    case '+':
      if (typeof a === 'number' && typeof b === 'number') return finite(a + b);
      if (typeof a === 'string' || typeof b === 'string') {
        const joined = text(a) + text(b);
        return joined.length <= MAX_VALUE_SIZE ? joined : null;
      }
      return null;
    case '-':
      return typeof a === 'number' && typeof b === 'number' ? finite(a - b) : null;
    case '*':
      return typeof a === 'number' && typeof b === 'number' ? finite(a * b) : null;
    case '/':
      return typeof a === 'number' && typeof b === 'number' && b !== 0 ? finite(a / b) : null;
    case '%':
      return typeof a === 'number' && typeof b === 'number' && b !== 0 ? finite(a % b) : null;
  }
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  return false;
}

function compare(a: unknown, b: unknown): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return null;
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function numbers(values: unknown[]): number[] | null {
  const flat = values.length === 1 && Array.isArray(values[0]) ? values[0] : values;
  return flat.every((v) => typeof v === 'number') && flat.length > 0 ? (flat as number[]) : null;
}

/**
 * The least (or greatest) of a list, in a loop: `Math.min(...list)` puts every item on the stack,
 * and a list of a few hundred thousand numbers (a webhook's body) overflowed it.
 */
function extreme(list: number[], greatest: boolean): number {
  let best = list[0];
  for (const n of list) if (greatest ? n > best : n < best) best = n;
  return best;
}

function call(fn: string, args: Expr[], scope: ExpressionScope): unknown {
  const values = args.map((arg) => evaluate(arg, scope));
  const [a, b] = values;
  const date = () => new Date(scope.now());
  switch (fn) {
    case 'state':
      return typeof a === 'string' && typeof b === 'string' ? (scope.state(a, b) ?? null) : null;
    case 'now':
      return scope.now();
    case 'hour':
      return date().getHours();
    case 'minute':
      return date().getMinutes();
    case 'weekday':
      // ISO numbering, Monday 1 … Sunday 7, as people say it.
      return ((date().getDay() + 6) % 7) + 1;
    case 'abs':
      return typeof a === 'number' ? Math.abs(a) : null;
    case 'min': {
      const list = numbers(values);
      return list ? extreme(list, false) : null;
    }
    case 'max': {
      const list = numbers(values);
      return list ? extreme(list, true) : null;
    }
    case 'round': {
      if (typeof a !== 'number') return null;
      const digits = typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 10 ? b : 0;
      const factor = 10 ** digits;
      // A number so large that scaling it overflows has no digits after the point to round.
      return Number.isFinite(a * factor) ? Math.round(a * factor) / factor : finite(a);
    }
    case 'floor':
      return typeof a === 'number' ? Math.floor(a) : null;
    case 'ceil':
      return typeof a === 'number' ? Math.ceil(a) : null;
    case 'len':
      return typeof a === 'string' || Array.isArray(a)
        ? a.length
        : a !== null && typeof a === 'object'
          ? Object.keys(a).length
          : null;
    case 'lower':
      return typeof a === 'string' ? a.toLowerCase() : null;
    case 'upper':
      return typeof a === 'string' ? a.toUpperCase() : null;
    case 'contains':
      if (typeof a === 'string' && typeof b === 'string') return a.includes(b);
      return Array.isArray(a) ? a.some((item) => equal(item, b)) : false;
    case 'number': {
      if (typeof a === 'number') return a;
      if (typeof a === 'boolean') return a ? 1 : 0;
      if (typeof a !== 'string' || a.trim() === '') return null;
      const n = Number(a);
      return Number.isFinite(n) ? n : null;
    }
    case 'string':
      return text(a);
    default:
      return null;
  }
}
