import { processTimeZone, wallTime } from '../../core/wall-time.ts';
import { type Expr, roundDigitsProblem } from './parser.ts';

/** What an expression can see: variables (trigger, rule variables) and the household's state. */
export interface ExpressionScope {
  variables: Record<string, unknown>;
  state(thing: string, property: string): unknown;
  /** Epoch ms on the engine's clock. */
  now(): number;
  /** The household's time zone, whose clocks `hour()`, `minute()` and `weekday()` read; the hub's own when absent. */
  timeZone?(): string;
  /**
   * Where the evaluator says why a value it was asked to build came out null rather than a text
   * too long (TEXT_LIMIT): the run's trace shows it, instead of a null without a word.
   */
  refused?: string[];
}

/**
 * The most characters a text built by a rule may have: as many as an MQTT template may make. A
 * rule that doubles a text in a `repeat`, or turns a large webhook body into text again and again,
 * would otherwise hold the hub's memory and stall its other work while the text is made.
 */
export const TEXT_LIMIT = 256 * 1024;

/** Why a text came out null: what would have made it, and the bound. */
export function tooLongText(what: string): string {
  return `${what} would make a text longer than ${TEXT_LIMIT} characters, the most a rule may build`;
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
      return list(
        expr.items.map((item) => evaluate(item, scope)),
        scope,
      );
    case 'member':
      return property(evaluate(expr.object, scope), expr.name);
    case 'index': {
      const object = evaluate(expr.object, scope);
      const index = evaluate(expr.index, scope);
      if (Array.isArray(object) && typeof index === 'number')
        return Number.isInteger(index) ? (object[index < 0 ? object.length + index : index] ?? null) : null;
      if (typeof object === 'string' && typeof index === 'number')
        return Number.isInteger(index) ? characterAt(object, index) : null;
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

function list(items: unknown[], scope: ExpressionScope): unknown[] | null {
  let size = 1;
  for (const item of items) size += sizeOf(item);
  if (size > MAX_VALUE_SIZE) {
    scope.refused?.push(
      `a list would hold more than ${MAX_VALUE_SIZE} items and characters, the most a rule may build`,
    );
    return null;
  }
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
  if (typeof object === 'string' && name === 'length') return characterCount(object);
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
        const left = textOf(a, scope, '"+"');
        const right = left === null ? null : textOf(b, scope, '"+"');
        if (left === null || right === null) return null;
        if (left.length + right.length > TEXT_LIMIT) return refuse(scope, '"+"');
        return left + right;
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

/**
 * Lists are equal item by item, objects (a webhook's body, a JSON payload) key by key. Pairs are
 * taken from a list of their own, not by recursion: a body nested sixty thousand deep overflowed
 * the stack.
 */
function equal(a: unknown, b: unknown): boolean {
  const pairs: Array<[unknown, unknown]> = [[a, b]];
  while (pairs.length > 0) {
    const [x, y] = pairs.pop() as [unknown, unknown];
    if (x === y) continue;
    if (Array.isArray(x) && Array.isArray(y)) {
      if (x.length !== y.length) return false;
      for (let i = x.length - 1; i >= 0; i--) pairs.push([x[i], y[i]]);
    } else if (isRecord(x) && isRecord(y)) {
      const keys = Object.keys(x);
      if (keys.length !== Object.keys(y).length) return false;
      for (const key of keys) {
        if (!Object.hasOwn(y, key)) return false;
        pairs.push([x[key], y[key]]);
      }
    } else return false;
  }
  return true;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function compare(a: unknown, b: unknown): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return compareText(a, b);
  return null;
}

/**
 * Texts in the order of their characters (code points), as `len` and `s[i]` count them.
 * JavaScript's `<` compares UTF-16 halves, which put an emoji (stored as 0xD83D…) before "\uFFFF".
 * Both texts are equal up to `i`, so one index walks both.
 */
function compareText(a: string, b: string): number {
  for (let i = 0; i < a.length && i < b.length; ) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

/**
 * A value as text (lists and objects as JSON), or null, with the reason in `scope.refused`, if it
 * would be longer than TEXT_LIMIT. A list that holds one object many times over, or itself nested
 * in doublings, is small in memory but its JSON would be gigabytes: its size is judged before any
 * JSON is made.
 */
export function textOf(value: unknown, scope: ExpressionScope, what: string): string | null {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value.length <= TEXT_LIMIT ? value : refuse(scope, what);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const fits = jsonFits(value);
  if (fits === 'too deep') {
    scope.refused?.push(`${what} cannot make text of a value nested more than ${TEXT_DEPTH} deep`);
    return null;
  }
  if (!fits) return refuse(scope, what);
  const json = JSON.stringify(value);
  return json.length <= TEXT_LIMIT ? json : refuse(scope, what);
}

function refuse(scope: ExpressionScope, what: string): null {
  scope.refused?.push(tooLongText(what));
  return null;
}

/**
 * Whether a value's JSON may be within TEXT_LIMIT: counts at least one character for every item,
 * key and character it holds, and stops as soon as that passes the limit, so the count itself is
 * bounded however much the value repeats what it holds.
 */
function jsonFits(value: unknown): boolean | 'too deep' {
  let budget = TEXT_LIMIT;
  const pending: Array<{ item: unknown; depth: number }> = [{ item: value, depth: 0 }];
  while (pending.length > 0) {
    const { item, depth } = pending.pop() as { item: unknown; depth: number };
    if (depth > TEXT_DEPTH) return 'too deep';
    if (typeof item === 'string') budget -= item.length + 2;
    else if (Array.isArray(item)) {
      budget -= item.length + 2;
      if (budget >= 0) for (const inner of item) pending.push({ item: inner, depth: depth + 1 });
    } else if (isRecord(item)) {
      const entries = Object.entries(item);
      budget -= entries.length + 2;
      if (budget >= 0)
        for (const [key, inner] of entries) {
          budget -= key.length + 3;
          pending.push({ item: inner, depth: depth + 1 });
        }
    } else budget -= 1;
    if (budget < 0) return false;
  }
  return true;
}

/** Deeper than this, JSON.stringify overflows the stack (it recurses); far deeper than real data. */
const TEXT_DEPTH = 1000;

/** Whether a text holds characters beyond the first 65,536, each of which JavaScript stores as two halves. */
const PAIRED = /[\uD800-\uDFFF]/;

/** The number of characters (code points) in a text: an emoji is one, not two. */
function characterCount(s: string): number {
  if (!PAIRED.test(s)) return s.length;
  let count = 0;
  for (const _ of s) count++;
  return count;
}

/** The character at `index` (from the end when negative, as for lists), or null. */
function characterAt(s: string, index: number): string | null {
  if (!PAIRED.test(s)) return s[index < 0 ? s.length + index : index] ?? null;
  const chars = Array.from(s);
  return chars[index < 0 ? chars.length + index : index] ?? null;
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
  // The household's clocks written as UTC (see wallTime): their hour is its getUTCHours.
  const date = () => new Date(wallTime(scope.now(), scope.timeZone?.() ?? processTimeZone()));
  switch (fn) {
    case 'state':
      return typeof a === 'string' && typeof b === 'string' ? (scope.state(a, b) ?? null) : null;
    case 'now':
      return scope.now();
    case 'hour':
      return date().getUTCHours();
    case 'minute':
      return date().getUTCMinutes();
    case 'weekday':
      // ISO numbering, Monday 1 … Sunday 7, as people say it.
      return ((date().getUTCDay() + 6) % 7) + 1;
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
      const digits = values.length > 1 ? b : 0;
      const problem = roundDigitsProblem(digits);
      if (problem !== null) {
        scope.refused?.push(problem);
        return null;
      }
      const factor = 10 ** (digits as number);
      const scaled = a * factor;
      // Scaled past 2^53 a number has no digits after the point left to round (and may overflow).
      return Math.abs(scaled) < 2 ** 53 ? Math.round(scaled) / factor : finite(a);
    }
    case 'floor':
      return typeof a === 'number' ? Math.floor(a) : null;
    case 'ceil':
      return typeof a === 'number' ? Math.ceil(a) : null;
    case 'len':
      return typeof a === 'string'
        ? characterCount(a)
        : Array.isArray(a)
          ? a.length
          : a !== null && typeof a === 'object'
            ? Object.keys(a).length
            : null;
    case 'lower':
    case 'upper': {
      if (typeof a !== 'string') return null;
      // Some letters grow: "ß" is "SS" in capitals.
      const changed = fn === 'lower' ? a.toLowerCase() : a.toUpperCase();
      return changed.length <= TEXT_LIMIT ? changed : refuse(scope, `${fn}()`);
    }
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
      return textOf(a, scope, 'string()');
    default:
      return null;
  }
}
