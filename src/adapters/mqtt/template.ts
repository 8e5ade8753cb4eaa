/**
 * A small, safe interpreter for the Jinja value and command templates that devices put in their
 * Home Assistant discovery configs. It never evaluates code: templates are lexed, parsed into a
 * tree and walked. Anything outside the supported subset is a TemplateError at compile time, so
 * the adapter can tell the user which entity needs attention instead of silently misreading it.
 */

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

export interface CompiledTemplate {
  readonly source: string;
  /**
   * Renders with the given variables (`value`, `value_json`, `brightness`…). A template that is
   * one `{{ expression }}` returns the expression's value with its type (number, boolean, object);
   * a template with text around its expressions returns a string. Throws only TemplateError.
   */
  render(vars: Record<string, unknown>): unknown;
}

/** The template forms Triad understands, for the README and for error messages. */
export const SUPPORTED_TEMPLATE_FORMS: readonly string[] = [
  '{{ value }} and {{ value_json }}, plus any variable the command supplies ({{ brightness }}, {{ position }})',
  'attribute and index access: value_json.a.b, value_json["x"], value_json[\'x\'], value_json.list[0], [-1]',
  'literals: numbers, "strings", \'strings\', true/false/none (and True/False/None), [lists]',
  'arithmetic: + - * / // % ** (numbers only; + also joins two strings), ~ joins as text',
  'comparisons: == != < <= > >= in, not in; boolean and, or, not',
  'inline conditionals: {{ "ON" if value else "OFF" }} (else is optional)',
  'tests: is defined, is undefined, is none, is number, is string, is boolean (and is not …)',
  'filters: float, float(default), int, int(default), round, round(n), round(n, "floor"|"ceil"|"common"), ' +
    'lower, upper, trim, abs, length, replace(a, b), default(x) / d(x) / default(x, true), is_defined, ' +
    'string, tojson / to_json, bool, bool(default)',
  'literal text around the braces, {# comments #}, and whitespace control {{- … -}}',
];

/** Templates longer than this are refused: real ones are a line or two, and it bounds work. */
const MAX_SOURCE_LENGTH = 4096;
/** Nesting deeper than this is refused, so hostile input cannot exhaust the stack. */
const MAX_DEPTH = 48;

/** Home Assistant globals that read other entities or the clock; Triad has no such context. */
const UNSUPPORTED_GLOBALS = new Set([
  'states',
  'state_attr',
  'is_state',
  'is_state_attr',
  'has_value',
  'now',
  'utcnow',
  'as_timestamp',
  'this',
  'trigger',
  'range',
  'namespace',
]);

// ---------------------------------------------------------------------------------------------
// Lexer

type TokenKind = 'num' | 'str' | 'name' | 'op' | 'end';

interface Token {
  kind: TokenKind;
  text: string;
  value?: number | string;
}

const OPERATORS = ['==', '!=', '<=', '>=', '//', '**', '<', '>', '+', '-', '*', '/', '%', '~', '|', '.', ','];
const BRACKETS = '()[]';

/**
 * Reads the tokens of one `{{ … }}` starting just after the opening braces. Returns the tokens
 * and the index just past the closing braces, and whether the close asked to trim what follows.
 */
function lexExpression(src: string, start: number): { tokens: Token[]; next: number; trimAfter: boolean } {
  const tokens: Token[] = [];
  let i = start;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (src.startsWith('}}', i)) {
      tokens.push({ kind: 'end', text: '}}' });
      return { tokens, next: i + 2, trimAfter: false };
    } else if (src.startsWith('-}}', i)) {
      tokens.push({ kind: 'end', text: '}}' });
      return { tokens, next: i + 3, trimAfter: true };
    } else if (isDigit(c)) {
      i = lexNumber(src, i, tokens);
    } else if (c === '"' || c === "'") {
      i = lexString(src, i, tokens);
    } else if (isNameStart(c)) {
      let j = i + 1;
      while (j < src.length && isNamePart(src[j])) j++;
      tokens.push({ kind: 'name', text: src.slice(i, j) });
      i = j;
    } else if (BRACKETS.includes(c)) {
      tokens.push({ kind: 'op', text: c });
      i++;
    } else {
      const op = OPERATORS.find((candidate) => src.startsWith(candidate, i));
      if (!op) throw new TemplateError(`unexpected character ${JSON.stringify(c)} at position ${i}`);
      tokens.push({ kind: 'op', text: op });
      i += op.length;
    }
  }
  throw new TemplateError('unclosed "{{": expected "}}"');
}

function lexNumber(src: string, start: number, tokens: Token[]): number {
  let j = start;
  while (j < src.length && isDigit(src[j])) j++;
  if (src[j] === '.' && isDigit(src[j + 1] ?? '')) {
    j++;
    while (j < src.length && isDigit(src[j])) j++;
  }
  if ((src[j] === 'e' || src[j] === 'E') && /[0-9+-]/.test(src[j + 1] ?? '')) {
    let k = j + 1;
    if (src[k] === '+' || src[k] === '-') k++;
    if (isDigit(src[k] ?? '')) {
      while (k < src.length && isDigit(src[k])) k++;
      j = k;
    }
  }
  const text = src.slice(start, j);
  tokens.push({ kind: 'num', text, value: Number(text) });
  return j;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' };

function lexString(src: string, start: number, tokens: Token[]): number {
  const quote = src[start];
  let out = '';
  let j = start + 1;
  while (j < src.length && src[j] !== quote) {
    if (src[j] === '\\' && j + 1 < src.length) {
      const escaped = src[j + 1];
      out += Object.hasOwn(ESCAPES, escaped) ? ESCAPES[escaped] : `\\${escaped}`;
      j += 2;
    } else {
      out += src[j];
      j++;
    }
  }
  if (j >= src.length) throw new TemplateError(`unterminated string starting at position ${start}`);
  tokens.push({ kind: 'str', text: src.slice(start, j + 1), value: out });
  return j + 1;
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}
function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}
function isNamePart(c: string): boolean {
  return isNameStart(c) || isDigit(c);
}

// ---------------------------------------------------------------------------------------------
// Syntax tree and parser (precedence follows Jinja's own parser)

type BinaryOp = '+' | '-' | '*' | '/' | '//' | '%' | '**' | '~' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in';

type Node =
  | { kind: 'literal'; value: unknown }
  | { kind: 'list'; items: Node[] }
  | { kind: 'variable'; name: string }
  | { kind: 'member'; target: Node; key: Node }
  | { kind: 'filter'; target: Node; name: string; args: Node[] }
  | { kind: 'test'; target: Node; name: string; negate: boolean }
  | { kind: 'negate'; target: Node }
  | { kind: 'not'; target: Node }
  | { kind: 'binary'; op: BinaryOp; left: Node; right: Node; negate?: boolean }
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'conditional'; test: Node; whenTrue: Node; otherwise?: Node };

const KEYWORD_LITERALS: Record<string, unknown> = {
  true: true,
  True: true,
  false: false,
  False: false,
  none: null,
  None: null,
};

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  /** Parses one whole `{{ … }}` body; every token up to the closing braces must be used. */
  parseBody(): Node {
    if (this.peek().kind === 'end') throw new TemplateError('empty expression "{{ }}"');
    const node = this.expression();
    const rest = this.peek();
    if (rest.kind !== 'end') throw new TemplateError(`unexpected ${JSON.stringify(rest.text)} in expression`);
    return node;
  }

  private expression(): Node {
    return this.nested(() => {
      const value = this.or();
      if (!this.acceptName('if')) return value;
      const test = this.or();
      const otherwise = this.acceptName('else') ? this.expression() : undefined;
      return { kind: 'conditional', test, whenTrue: value, otherwise };
    });
  }

  private or(): Node {
    let left = this.and();
    while (this.acceptName('or')) left = { kind: 'or', left, right: this.and() };
    return left;
  }

  private and(): Node {
    let left = this.not();
    while (this.acceptName('and')) left = { kind: 'and', left, right: this.not() };
    return left;
  }

  private not(): Node {
    if (this.acceptName('not')) return this.nested(() => ({ kind: 'not', target: this.not() }));
    return this.compare();
  }

  private compare(): Node {
    let left = this.sum();
    for (;;) {
      const token = this.peek();
      if (token.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(token.text)) {
        this.pos++;
        left = { kind: 'binary', op: token.text as BinaryOp, left, right: this.sum() };
      } else if (this.acceptName('in')) {
        left = { kind: 'binary', op: 'in', left, right: this.sum() };
      } else if (this.isName(token, 'not') && this.isName(this.peek(1), 'in')) {
        this.pos += 2;
        left = { kind: 'binary', op: 'in', left, right: this.sum(), negate: true };
      } else {
        return left;
      }
    }
  }

  private sum(): Node {
    return this.binaryLevel(['+', '-'], () => this.concat());
  }
  private concat(): Node {
    return this.binaryLevel(['~'], () => this.product());
  }
  private product(): Node {
    return this.binaryLevel(['*', '/', '//', '%'], () => this.power());
  }
  private power(): Node {
    return this.binaryLevel(['**'], () => this.unary(true));
  }

  private binaryLevel(ops: string[], next: () => Node): Node {
    let left = next();
    for (;;) {
      const token = this.peek();
      if (token.kind !== 'op' || !ops.includes(token.text)) return left;
      this.pos++;
      left = { kind: 'binary', op: token.text as BinaryOp, left, right: next() };
    }
  }

  /** As in Jinja, `-x | abs` is `(-x) | abs`: filters apply after the sign. */
  private unary(withFilters: boolean): Node {
    return this.nested(() => {
      let node: Node;
      if (this.acceptOp('-')) node = { kind: 'negate', target: this.unary(false) };
      else if (this.acceptOp('+')) node = this.unary(false);
      else node = this.postfix(this.primary());
      return withFilters ? this.filters(node) : node;
    });
  }

  private primary(): Node {
    const token = this.next();
    if (token.kind === 'num' || token.kind === 'str') return { kind: 'literal', value: token.value };
    if (token.kind === 'name') {
      if (Object.hasOwn(KEYWORD_LITERALS, token.text)) return { kind: 'literal', value: KEYWORD_LITERALS[token.text] };
      if (this.isOp(this.peek(), '(')) {
        throw new TemplateError(`function calls such as ${token.text}(…) are not supported`);
      }
      if (UNSUPPORTED_GLOBALS.has(token.text)) {
        throw new TemplateError(`"${token.text}" reads Home Assistant state, which Triad templates cannot see`);
      }
      return { kind: 'variable', name: token.text };
    }
    if (this.isOp(token, '(')) {
      const inner = this.expression();
      this.expectOp(')');
      return inner;
    }
    if (this.isOp(token, '[')) return this.listLiteral();
    if (token.kind === 'end') throw new TemplateError('expression ends too early');
    throw new TemplateError(`unexpected ${JSON.stringify(token.text)} in expression`);
  }

  private listLiteral(): Node {
    const items: Node[] = [];
    while (!this.acceptOp(']')) {
      if (items.length > 0) this.expectOp(',');
      if (this.acceptOp(']')) break;
      items.push(this.expression());
    }
    return { kind: 'list', items };
  }

  private postfix(start: Node): Node {
    let node = start;
    for (;;) {
      if (this.acceptOp('.')) {
        const name = this.next();
        if (name.kind !== 'name' && name.kind !== 'num') throw new TemplateError('expected a name after "."');
        if (this.isOp(this.peek(), '(')) {
          throw new TemplateError(`method calls such as .${name.text}(…) are not supported`);
        }
        const key = name.kind === 'num' ? name.value : name.text;
        node = { kind: 'member', target: node, key: { kind: 'literal', value: key } };
      } else if (this.acceptOp('[')) {
        const key = this.expression();
        if (this.isOp(this.peek(), ',')) throw new TemplateError('tuples are not supported');
        this.expectOp(']');
        node = { kind: 'member', target: node, key };
      } else {
        return node;
      }
    }
  }

  private filters(start: Node): Node {
    let node = start;
    for (;;) {
      if (this.acceptOp('|')) {
        const name = this.expectName('a filter name after "|"');
        if (!Object.hasOwn(FILTERS, name)) throw new TemplateError(`filter "${name}" is not supported`);
        const args = this.acceptOp('(') ? this.callArguments() : [];
        node = { kind: 'filter', target: node, name, args };
      } else if (this.acceptName('is')) {
        const negate = this.acceptName('not');
        const name = this.expectName('a test name after "is"');
        if (!Object.hasOwn(TESTS, name)) throw new TemplateError(`test "is ${name}" is not supported`);
        node = { kind: 'test', target: node, name, negate };
      } else {
        return node;
      }
    }
  }

  private callArguments(): Node[] {
    const args: Node[] = [];
    while (!this.acceptOp(')')) {
      if (args.length > 0) this.expectOp(',');
      args.push(this.expression());
    }
    return args;
  }

  /** Runs one level of recursive descent, refusing templates nested deeper than MAX_DEPTH. */
  private nested<T>(fn: () => T): T {
    if (++this.depth > MAX_DEPTH) throw new TemplateError(`expression nested deeper than ${MAX_DEPTH} levels`);
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)];
  }
  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.pos++;
    return token;
  }
  private isOp(token: Token, text: string): boolean {
    return token.kind === 'op' && token.text === text;
  }
  private isName(token: Token, text: string): boolean {
    return token.kind === 'name' && token.text === text;
  }
  private acceptOp(text: string): boolean {
    if (!this.isOp(this.peek(), text)) return false;
    this.pos++;
    return true;
  }
  private acceptName(text: string): boolean {
    if (!this.isName(this.peek(), text)) return false;
    this.pos++;
    return true;
  }
  private expectOp(text: string): void {
    const token = this.peek();
    if (!this.acceptOp(text)) throw new TemplateError(`expected "${text}" but found ${JSON.stringify(token.text)}`);
  }
  private expectName(what: string): string {
    const token = this.next();
    if (token.kind !== 'name') throw new TemplateError(`expected ${what}`);
    return token.text;
  }
}

// ---------------------------------------------------------------------------------------------
// Values: Jinja's view of truth, text and numbers, on JSON-shaped data

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value as object).length > 0;
  return typeof value === 'number' ? !Number.isNaN(value) : true;
}

/** How Jinja prints a value: Python spellings for booleans and None, nothing for undefined. */
export function templateText(value: unknown): string {
  if (value === undefined) return '';
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    throw new TemplateError('value cannot be printed');
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'none';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return typeof value === 'object' ? 'an object' : String(value);
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null) {
    return JSON.stringify(a) === JSON.stringify(b);
  }
  return false;
}

/** Reads `target[key]` on JSON data only: own keys, list and string indexes, nothing inherited. */
function member(target: unknown, key: unknown): unknown {
  if (Array.isArray(target) || typeof target === 'string') {
    if (typeof key !== 'number' || !Number.isInteger(key)) return undefined;
    const index = key < 0 ? target.length + key : key;
    return index >= 0 && index < target.length ? target[index] : undefined;
  }
  if (typeof target === 'object' && target !== null && (typeof key === 'string' || typeof key === 'number')) {
    const name = String(key);
    return Object.hasOwn(target, name) ? (target as Record<string, unknown>)[name] : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Filters and tests

type Filter = (value: unknown, args: unknown[]) => unknown;

/** Numeric filters let a missing value stay missing, so a partial JSON state is simply skipped. */
function numericFilter(name: string, convert: (n: number) => number): Filter {
  return (value, args) => {
    const n = toNumber(value);
    if (n !== undefined) return convert(n);
    if (args.length > 0) return args[0];
    if (value === undefined) return undefined;
    throw new TemplateError(`${name}: cannot convert ${describe(value)} to a number`);
  };
}

function roundFilter(value: unknown, args: unknown[]): unknown {
  if (value === undefined) return undefined;
  const n = toNumber(value);
  if (n === undefined) throw new TemplateError(`round: cannot round ${describe(value)}`);
  const precision = args.length > 0 ? toNumber(args[0]) : 0;
  if (precision === undefined || !Number.isInteger(precision) || precision < 0 || precision > 15) {
    throw new TemplateError('round: precision must be a whole number from 0 to 15');
  }
  const method = args.length > 1 ? args[1] : 'common';
  const scale = 10 ** precision;
  if (method === 'floor') return Math.floor(n * scale) / scale;
  if (method === 'ceil') return Math.ceil(n * scale) / scale;
  if (method === 'common' || method === 'half') return Math.round(n * scale) / scale;
  throw new TemplateError(`round: method must be "common", "floor" or "ceil"`);
}

const TRUE_WORDS = new Set(['true', 'yes', 'on', 'enable', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', 'disable', '0']);

function boolFilter(value: unknown, args: unknown[]): unknown {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  if (args.length > 0) return args[0];
  if (value === undefined) return undefined;
  throw new TemplateError(`bool: cannot read ${describe(value)} as true or false`);
}

function stringFilter(fn: (text: string) => string): Filter {
  return (value) => (value === undefined ? undefined : fn(templateText(value)));
}

const FILTERS: Record<string, Filter> = {
  float: numericFilter('float', (n) => n),
  int: numericFilter('int', (n) => Math.trunc(n)),
  abs: numericFilter('abs', (n) => Math.abs(n)),
  round: roundFilter,
  bool: boolFilter,
  lower: stringFilter((s) => s.toLowerCase()),
  upper: stringFilter((s) => s.toUpperCase()),
  trim: stringFilter((s) => s.trim()),
  string: (value) => templateText(value),
  replace: (value, args) => {
    if (value === undefined) return undefined;
    if (typeof args[0] !== 'string' || typeof args[1] !== 'string') {
      throw new TemplateError('replace: needs two strings, e.g. replace("a", "b")');
    }
    return templateText(value).split(args[0]).join(args[1]);
  },
  length: (value) => {
    if (typeof value === 'string' || Array.isArray(value)) return value.length;
    if (typeof value === 'object' && value !== null) return Object.keys(value).length;
    throw new TemplateError(`length: ${describe(value)} has no length`);
  },
  default: (value, args) => {
    const useForFalsy = args.length > 1 && truthy(args[1]);
    if (value === undefined || (useForFalsy && !truthy(value))) return args.length > 0 ? args[0] : '';
    return value;
  },
  is_defined: (value) => {
    if (value === undefined) throw new TemplateError('is_defined: the value is undefined');
    return value;
  },
  tojson: (value) => (value === undefined ? 'null' : JSON.stringify(value)),
};
FILTERS.d = FILTERS.default;
FILTERS.to_json = FILTERS.tojson;

const TESTS: Record<string, (value: unknown) => boolean> = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  number: (v) => typeof v === 'number',
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
};

// ---------------------------------------------------------------------------------------------
// Evaluation

function evaluate(node: Node, vars: Record<string, unknown>): unknown {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'list':
      return node.items.map((item) => evaluate(item, vars));
    case 'variable':
      return Object.hasOwn(vars, node.name) ? vars[node.name] : undefined;
    case 'member':
      return member(evaluate(node.target, vars), evaluate(node.key, vars));
    case 'filter':
      return FILTERS[node.name](
        evaluate(node.target, vars),
        node.args.map((arg) => evaluate(arg, vars)),
      );
    case 'test':
      return TESTS[node.name](evaluate(node.target, vars)) !== node.negate;
    case 'negate': {
      const value = evaluate(node.target, vars);
      if (value === undefined) return undefined;
      if (typeof value !== 'number') throw new TemplateError(`cannot negate ${describe(value)}`);
      return -value;
    }
    case 'not':
      return !truthy(evaluate(node.target, vars));
    case 'and': {
      const left = evaluate(node.left, vars);
      return truthy(left) ? evaluate(node.right, vars) : left;
    }
    case 'or': {
      const left = evaluate(node.left, vars);
      return truthy(left) ? left : evaluate(node.right, vars);
    }
    case 'conditional':
      if (truthy(evaluate(node.test, vars))) return evaluate(node.whenTrue, vars);
      return node.otherwise ? evaluate(node.otherwise, vars) : undefined;
    case 'binary':
      return binary(node.op, evaluate(node.left, vars), evaluate(node.right, vars), node.negate === true);
  }
}

function binary(op: BinaryOp, left: unknown, right: unknown, negate: boolean): unknown {
  switch (op) {
    case '==':
      return sameValue(left, right);
    case '!=':
      return !sameValue(left, right);
    case '~':
      return templateText(left) + templateText(right);
    case 'in':
      return contains(right, left) !== negate;
    case '<':
    case '<=':
    case '>':
    case '>=':
      return order(op, left, right);
    default:
      return arithmetic(op, left, right);
  }
}

function contains(container: unknown, item: unknown): boolean {
  if (typeof container === 'string' && typeof item === 'string') return container.includes(item);
  if (Array.isArray(container)) return container.some((entry) => sameValue(entry, item));
  if (typeof container === 'object' && container !== null && typeof item === 'string') {
    return Object.hasOwn(container, item);
  }
  throw new TemplateError(`cannot look for ${describe(item)} in ${describe(container)}`);
}

function order(op: '<' | '<=' | '>' | '>=', left: unknown, right: unknown): boolean {
  const comparable =
    (typeof left === 'number' && typeof right === 'number') || (typeof left === 'string' && typeof right === 'string');
  if (!comparable) throw new TemplateError(`cannot compare ${describe(left)} ${op} ${describe(right)}`);
  const a = left as number | string;
  const b = right as number | string;
  if (op === '<') return a < b;
  if (op === '<=') return a <= b;
  if (op === '>') return a > b;
  return a >= b;
}

/** Numbers only (no Python string repetition, which would let a template allocate without bound). */
function arithmetic(op: BinaryOp, left: unknown, right: unknown): unknown {
  if (left === undefined || right === undefined) return undefined;
  if (op === '+' && typeof left === 'string' && typeof right === 'string') return left + right;
  if (typeof left !== 'number' || typeof right !== 'number') {
    throw new TemplateError(`cannot compute ${describe(left)} ${op} ${describe(right)}: both sides must be numbers`);
  }
  switch (op) {
    case '+':
      return left + right;
    case '-':
      return left - right;
    case '*':
      return left * right;
    case '**':
      return left ** right;
    default: {
      if (right === 0) throw new TemplateError('division by zero');
      if (op === '/') return left / right;
      if (op === '//') return Math.floor(left / right);
      // Python's modulo takes the sign of the divisor.
      return ((left % right) + right) % right;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Template text: literal parts and {{ expressions }}

type Segment = { kind: 'text'; text: string } | { kind: 'expression'; node: Node };

function parseSegments(src: string): Segment[] {
  const segments: Segment[] = [];
  let text = '';
  let i = 0;
  let trimNext = false;
  const flushText = (trimEnd: boolean) => {
    const value = trimEnd ? text.trimEnd() : text;
    if (value) segments.push({ kind: 'text', text: value });
    text = '';
  };
  while (i < src.length) {
    const open = src.indexOf('{', i);
    const chunk = open === -1 ? src.slice(i) : src.slice(i, open);
    text += trimNext ? chunk.trimStart() : chunk;
    trimNext = trimNext && chunk.trim() === '';
    if (open === -1) break;
    const marker = src[open + 1];
    if (marker === '%') {
      throw new TemplateError('statements such as {% for %}, {% if %} or {% set %} are not supported');
    }
    if (marker === '#') {
      const close = src.indexOf('#}', open + 2);
      if (close === -1) throw new TemplateError('unclosed comment "{#"');
      i = close + 2;
      continue;
    }
    if (marker !== '{') {
      text += '{';
      i = open + 1;
      continue;
    }
    const trimBefore = src[open + 2] === '-';
    flushText(trimBefore);
    const { tokens, next, trimAfter } = lexExpression(src, open + (trimBefore ? 3 : 2));
    segments.push({ kind: 'expression', node: new Parser(tokens).parseBody() });
    i = next;
    trimNext = trimAfter;
  }
  flushText(false);
  return segments;
}

/** Compiles a template once; rendering it is then a walk over a small tree. */
export function compileTemplate(source: string): CompiledTemplate {
  if (typeof source !== 'string') throw new TemplateError('a template must be a string');
  if (source.length > MAX_SOURCE_LENGTH) {
    throw new TemplateError(`template is longer than ${MAX_SOURCE_LENGTH} characters`);
  }
  const segments = parseSegments(source);
  const expressions = segments.filter((s) => s.kind === 'expression');
  const onlyExpression =
    expressions.length === 1 && segments.every((s) => s.kind === 'expression' || s.text.trim() === '')
      ? expressions[0].node
      : undefined;
  return {
    source,
    render(vars) {
      try {
        if (onlyExpression) return evaluate(onlyExpression, vars);
        let out = '';
        for (const segment of segments) {
          out += segment.kind === 'text' ? segment.text : templateText(evaluate(segment.node, vars));
        }
        return out;
      } catch (error) {
        if (error instanceof TemplateError) throw error;
        // Anything else (a stack overflow on absurd data) still surfaces as a template problem.
        throw new TemplateError(`template failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  };
}
