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
   * Renders with the given variables (`value`, `value_json`, `brightness`…); a variable may be a
   * JsonPayload, which the template reads as Python reads that JSON. A template that is
   * one `{{ expression }}` returns the expression's value with its type (number, boolean, object);
   * a template with text around its expressions returns a string. Throws only TemplateError.
   */
  render(vars: Record<string, unknown>): unknown;
  /**
   * Renders to the text Home Assistant's Jinja prints, as it does for a command template
   * (parse_result=False): Python's spellings, so a float prints as `21.0` and an int as `21`.
   * Throws only TemplateError.
   */
  renderText(vars: Record<string, unknown>): string;
  /**
   * Renders as render() does but keeps the Python type of the result: templateText(result) is the
   * text Home Assistant renders (and compares with an entity's payloads, `21.0` for a float), and
   * plainValue(result) is what render() returns (the number 21). Throws only TemplateError.
   */
  renderResult(vars: Record<string, unknown>): unknown;
}

/** The template forms Triad understands, for the README and for error messages. */
export const SUPPORTED_TEMPLATE_FORMS: readonly string[] = [
  '{{ value }} and {{ value_json }}, plus any variable the command supplies ({{ brightness }}, {{ position }})',
  'attribute and index access: value_json.a.b, value_json["x"], value_json[\'x\'], value_json.list[0], [-1]',
  'literals: numbers, "strings", \'strings\', true/false/none (and True/False/None), [lists]',
  'arithmetic: + - * / // % ** (numbers, with true/false as 1/0 as in Python; + also joins two strings), ~ joins as text',
  'ints and floats as in Python: 2.0, / and float give floats, int and // of ints give ints, and in value_json a ' +
    'number written 21.0 or 1e3 is a float; as text a float prints as Python prints it (21.0, 0.1, 1e-05, 1e+16) ' +
    'while a value template still gives the number',
  "lists and dicts print as Python prints them: ['a', 1, True, None, 2.0], {'a': 1} (tojson writes JSON, [\"a\",1,2.0])",
  'comparisons: == != < <= > >= in, not in, chained as in Python (1 < x < 5); boolean and, or, not; ' +
    'in on a JSON object looks at its keys (a number is never one of them)',
  'inline conditionals: {{ "ON" if value else "OFF" }} (else is optional)',
  'tests: is defined, is undefined, is none, is number (true for true/false too, as in Jinja), is string, is boolean ' +
    '(and is not …)',
  'filters: float(default), int(default, base), round(precision, method, default) with method ' +
    '"common"|"floor"|"ceil"|"half" (any other is common) and a precision from -308 to 308 ' +
    '(an int at precision 0, a float otherwise, as in Home Assistant), ' +
    'lower, upper, trim, abs, length, replace(old, new, count), ' +
    'default(default_value, boolean) / d(…), is_defined, string, tojson / to_json, bool(default)',
  'functions: float(value, default), int(value, default, base), bool(value, default)',
  'arguments by position or by keyword, as Jinja names them: float(default=0), round(1, method="floor")',
  'literal text around the braces, {# comments #}, and whitespace control {{- … -}}',
];

/** Templates longer than this are refused: real ones are a line or two, and it bounds work. */
const MAX_SOURCE_LENGTH = 4096;
/** Nesting deeper than this is refused, so hostile input cannot exhaust the stack. */
const MAX_DEPTH = 48;
/**
 * The longest text a template may make, its result or any step on the way. Four times the 64 KiB
 * a state message may hold, so the largest message printed whole (`{{ value_json }}`, which
 * Python's quoting makes longer than its JSON) still fits; without it, replace written nine
 * times turned `a` into a billion characters, froze the hub for seconds and took 2 GB.
 */
export const MAX_TEXT_LENGTH = 256 * 1024;

/** A render that would make a text over MAX_TEXT_LENGTH: the same template fails so on every message. */
export class TemplateTooLongError extends TemplateError {}

/**
 * Refuses a text of `length` characters, checked before it is built wherever a step can predict
 * it (replace, joining two texts), and as it grows where it cannot (printing a list or dict).
 */
function checkTextLength(length: number, what: string): void {
  if (length > MAX_TEXT_LENGTH) {
    throw new TemplateTooLongError(
      `${what} would make a text longer than ${MAX_TEXT_LENGTH} characters, the most a template may make`,
    );
  }
}

/** Filter results and joined texts must stay within MAX_TEXT_LENGTH, whatever made them. */
function boundedResult(value: unknown, what: string): unknown {
  if (typeof value === 'string') checkTextLength(value.length, what);
  return value;
}

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
  /** A number written with a point or an exponent (`21.0`, `1e3`): a float, as Jinja's lexer reads it. */
  float?: boolean;
}

const OPERATORS = ['==', '!=', '<=', '>=', '//', '**', '<', '>', '+', '-', '*', '/', '%', '~', '|', '.', ',', '='];
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
  tokens.push({ kind: 'num', text, value: Number(text), float: /[.eE]/.test(text) });
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
  /** `args` holds one slot per parameter of the filter, filled by position or keyword. */
  | { kind: 'filter'; target: Node; name: string; args: Array<Node | undefined> }
  | { kind: 'test'; target: Node; name: string; negate: boolean }
  | { kind: 'negate'; target: Node }
  | { kind: 'not'; target: Node }
  | { kind: 'binary'; op: BinaryOp; left: Node; right: Node; negate?: boolean }
  /** `a < b < c` as Python reads it: `a < b and b < c`, each operand evaluated at most once. */
  | { kind: 'chain'; first: Node; links: Array<{ op: BinaryOp; negate: boolean; right: Node }> }
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

interface CallArguments {
  positional: Node[];
  keywords: Array<{ name: string; value: Node }>;
}

/**
 * Puts a call's arguments into one slot per parameter, as Python binds them: positional ones in
 * order, then keywords by name. Too many arguments, an unknown keyword, or a parameter given twice
 * is a TemplateError (Python raises TypeError for each), never silently ignored.
 */
function bindArguments(
  name: string,
  params: readonly string[],
  required: number,
  call: CallArguments,
): Array<Node | undefined> {
  if (call.positional.length > params.length) {
    const most = params.length === 0 ? 'no arguments' : `at most ${params.length} (${params.join(', ')})`;
    throw new TemplateError(`${name} takes ${most}, but ${call.positional.length} were given`);
  }
  const slots: Array<Node | undefined> = params.map((_, i) => call.positional[i]);
  for (const { name: keyword, value } of call.keywords) {
    const index = params.indexOf(keyword);
    if (index === -1) {
      const known = params.length === 0 ? 'it takes no arguments' : `it takes ${params.join(', ')}`;
      throw new TemplateError(`${name} has no argument named "${keyword}": ${known}`);
    }
    if (slots[index] !== undefined) throw new TemplateError(`${name} got "${keyword}" twice`);
    slots[index] = value;
  }
  const missing = params.slice(0, required).filter((_, i) => slots[i] === undefined);
  if (missing.length > 0) throw new TemplateError(`${name} needs ${missing.join(' and ')}`);
  return slots;
}

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

  /**
   * Comparisons chain as in Python and Jinja (whose parser collects them into one Compare node):
   * `1 < x < 5` is `1 < x and x < 5`, not `(1 < x) < 5`.
   */
  private compare(): Node {
    const first = this.sum();
    const links: Array<{ op: BinaryOp; negate: boolean; right: Node }> = [];
    for (;;) {
      const token = this.peek();
      if (token.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(token.text)) {
        this.pos++;
        links.push({ op: token.text as BinaryOp, negate: false, right: this.sum() });
      } else if (this.acceptName('in')) {
        links.push({ op: 'in', negate: false, right: this.sum() });
      } else if (this.isName(token, 'not') && this.isName(this.peek(1), 'in')) {
        this.pos += 2;
        links.push({ op: 'in', negate: true, right: this.sum() });
      } else {
        break;
      }
    }
    if (links.length === 0) return first;
    if (links.length === 1) {
      const [{ op, negate, right }] = links;
      return { kind: 'binary', op, left: first, right, negate: negate || undefined };
    }
    return { kind: 'chain', first, links };
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
    if (token.kind === 'num') {
      return { kind: 'literal', value: token.float ? pyFloat(token.value as number) : token.value };
    }
    if (token.kind === 'str') return { kind: 'literal', value: token.value };
    if (token.kind === 'name') {
      if (Object.hasOwn(KEYWORD_LITERALS, token.text)) return { kind: 'literal', value: KEYWORD_LITERALS[token.text] };
      if (this.isOp(this.peek(), '(')) {
        if (!FUNCTIONS.has(token.text)) {
          throw new TemplateError(`function calls such as ${token.text}(…) are not supported`);
        }
        // Home Assistant's float(), int() and bool() globals are its filters with the value first.
        this.pos++;
        const spec = FILTERS[token.text];
        const call = this.callArguments();
        const [target, ...args] = bindArguments(`${token.text}()`, ['value', ...spec.params], 1, call);
        return { kind: 'filter', target: target as Node, name: token.text, args };
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
        const call = this.acceptOp('(') ? this.callArguments() : { positional: [], keywords: [] };
        const spec = FILTERS[name];
        node = { kind: 'filter', target: node, name, args: bindArguments(name, spec.params, spec.required ?? 0, call) };
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

  /**
   * Reads call arguments up to the closing ")": positional ones, then `name=value` keywords, as
   * Jinja's parse_call_args does (a positional argument after a keyword is a syntax error there
   * too, and a trailing comma is allowed).
   */
  private callArguments(): CallArguments {
    const call: CallArguments = { positional: [], keywords: [] };
    let count = 0;
    while (!this.acceptOp(')')) {
      if (count > 0) {
        this.expectOp(',');
        if (this.acceptOp(')')) break;
      }
      const token = this.peek();
      if (token.kind === 'name' && this.isOp(this.peek(1), '=')) {
        this.pos += 2;
        call.keywords.push({ name: token.text, value: this.expression() });
      } else {
        if (call.keywords.length > 0) {
          throw new TemplateError('a positional argument cannot follow a keyword argument');
        }
        call.positional.push(this.expression());
      }
      count++;
    }
    return call;
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

/**
 * Python keeps ints and floats apart, and prints them differently: float("21") is 21.0 and
 * prints as `21.0`. A JavaScript number that is not whole (21.5, NaN, Infinity) can only be a
 * float, and one that is whole is an int, so only a float whose value is whole needs marking: it
 * is a WholeFloat while the template is evaluated. Lists and objects always hold plain numbers
 * (they are JSON data, which other readers take as they are); a whole float inside one is
 * recorded beside it instead (WholeFloatKeys). render() gives the plain number, so a value
 * template's 21.0 is still the JSON number 21; only text tells the two apart.
 */
class WholeFloat {
  constructor(readonly value: number) {}
}

/** The float n: marked when whole, so it prints as `21.0`. */
function pyFloat(n: number): number | WholeFloat {
  return Number.isInteger(n) ? new WholeFloat(n) : n;
}

function isFloat(value: unknown): boolean {
  return value instanceof WholeFloat || (typeof value === 'number' && !Number.isInteger(value));
}

/** The value with a WholeFloat as its plain number. */
function plain(value: unknown): unknown {
  return value instanceof WholeFloat ? value.value : value;
}

/** A template result (from renderResult) as plain JSON data: a whole float is its number, as render() gives it. */
export function plainValue(value: unknown): unknown {
  return plain(value);
}

/**
 * The keys (list indexes, object keys) at which lists and objects hold a whole float: `2.0` in a
 * payload's `[1, 2.0]` (see JsonPayload) or in a list literal. Kept beside the data rather than
 * in it, so the data stays plain JSON for everything that is not a template.
 */
class WholeFloatKeys {
  /** Made on the first float: text that only looked as if it held one needs none. */
  private keys: Map<object, Set<number | string>> | undefined;

  set(container: object, key: number | string, wholeFloat: boolean): void {
    let keys = this.keys?.get(container);
    if (!wholeFloat) {
      keys?.delete(key);
      return;
    }
    if (!keys) {
      keys = new Set();
      this.keys ??= new Map();
      this.keys.set(container, keys);
    }
    keys.add(key);
  }

  has(container: object, key: number | string): boolean {
    return this.keys?.get(container)?.has(key) === true;
  }
}

/**
 * The whole floats of the list literals evaluated so far. Weak, so a list goes when it is no
 * longer used; list literals are few, and a payload's floats are kept by the payload instead,
 * since there are as many payloads as messages and weak keys cost the collector.
 */
const listLiteralFloats = new WeakMap<object, Set<number>>();

/** `container[key]` (already read) with its Python type: a whole float there is a WholeFloat again. */
function typedEntry(container: object, key: number | string, value: unknown): unknown {
  if (typeof value !== 'number' || !Number.isInteger(value)) return value;
  // Only now does it matter how a payload wrote the number: its floats are found on first need.
  let wholeFloat = payloadRead?.holdsWholeFloat(container, key) === true;
  for (let i = 0; !wholeFloat && i < otherPayloadsRead.length; i++) {
    wholeFloat = otherPayloadsRead[i].holdsWholeFloat(container, key);
  }
  if (!wholeFloat && typeof key === 'number') wholeFloat = listLiteralFloats.get(container)?.has(key) === true;
  return wholeFloat ? new WholeFloat(value) : value;
}

function truthy(value: unknown): boolean {
  if (value instanceof WholeFloat) return value.value !== 0;
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
  if (typeof value === 'number') return Number.isInteger(value) ? intText(value) : floatText(value);
  if (value instanceof WholeFloat) return floatText(value.value);
  try {
    return pythonRepr(value);
  } catch (error) {
    if (error instanceof TemplateTooLongError) throw error;
    // Otherwise only data nested too deep for the stack gets here (JSON holds no cycles).
    throw new TemplateError('value cannot be printed');
  }
}

/**
 * Python's repr, which str() of a list or dict uses for every item: `['a', 1, True, None, 2.0]`,
 * `{'a': {'b': [1]}}`, strings quoted and escaped as Python does.
 */
function pythonRepr(value: unknown): string {
  if (typeof value === 'string') return pythonStringRepr(value);
  // Jinja's Undefined (a list literal can hold one) has this repr.
  if (value === undefined) return 'Undefined';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value instanceof WholeFloat) {
    return templateText(value);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ', ';
      out += pythonRepr(typedEntry(value, i, value[i]));
      checkTextLength(out.length, 'printing a list');
    }
    return `${out}]`;
  }
  if (typeof value === 'object') {
    let out = '{';
    let first = true;
    for (const key of Object.keys(value)) {
      if (!first) out += ', ';
      first = false;
      out += `${pythonStringRepr(key)}: ${pythonRepr(typedEntry(value, key, (value as Record<string, unknown>)[key]))}`;
      checkTextLength(out.length, 'printing a dict');
    }
    return `${out}}`;
  }
  return String(value);
}

/**
 * JSON as Python's json writes it, with each number's type: a float is written as its text
 * (`21.0`), also one in a list or dict (`{"t": 21.0}`), where JSON.stringify would write `21`.
 * Everything else as JSON.stringify writes it (a non-finite number is null); undefined for an
 * undefined value, which a list holds as null and a dict leaves out, as JSON.stringify does.
 */
function jsonText(value: unknown): string | undefined {
  if (value instanceof WholeFloat || typeof value === 'number') {
    return Number.isFinite(plain(value)) ? templateText(value) : 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += jsonText(typedEntry(value, i, value[i])) ?? 'null';
      checkTextLength(out.length, 'tojson');
    }
    return `${out}]`;
  }
  if (typeof value === 'object' && value !== null) {
    let out = '{';
    for (const key of Object.keys(value)) {
      const item = jsonText(typedEntry(value, key, (value as Record<string, unknown>)[key]));
      if (item === undefined) continue;
      if (out.length > 1) out += ',';
      out += `${JSON.stringify(key)}:${item}`;
      checkTextLength(out.length, 'tojson');
    }
    return `${out}}`;
  }
  return JSON.stringify(value);
}

/** Characters Python's str.isprintable() refuses beyond ASCII: the Other and Separator categories. */
const NOT_PRINTABLE = /[\p{C}\p{Z}]/u;

/**
 * Python's repr of a str: in single quotes unless the text holds a single quote and no double
 * one; backslash, the quote, \n, \r and \t escaped; other control and unprintable characters
 * as \xhh, \uhhhh or \Uhhhhhhhh.
 */
function pythonStringRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (char === quote || char === '\\') out += `\\${char}`;
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f || (code > 0x7f && NOT_PRINTABLE.test(char))) {
      const hex = code.toString(16);
      if (code <= 0xff) out += `\\x${hex.padStart(2, '0')}`;
      else if (code <= 0xffff) out += `\\u${hex.padStart(4, '0')}`;
      else out += `\\U${hex.padStart(8, '0')}`;
    } else {
      out += char;
    }
  }
  return out + quote;
}

/** Python's str(int): every digit, where String(2 ** 60) would end in zeros. */
function intText(n: number): string {
  return Math.abs(n) < 2 ** 53 ? String(n) : BigInt(n).toString();
}

/**
 * Python's str(float), which is its repr: the shortest digits that read back as the same double
 * (JavaScript's String finds the same digits), in positional form with at least one digit after
 * the point when the decimal exponent is from -4 to 15 (`21.0`, `0.0001`, `1000000000000000.0`),
 * otherwise in exponent form with a sign and at least two exponent digits (`1e-05`, `1.5e-07`,
 * `1e+16`). Checked against Python on 200,000 random doubles.
 */
function floatText(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const sign = n < 0 ? '-' : '';
  // String gives "123.45", "0.000001", "1.5e-7" or "1e+21"; take its digits and its exponent.
  const text = String(Math.abs(n));
  const e = text.indexOf('e');
  const mantissa = e === -1 ? text : text.slice(0, e);
  const point = mantissa.indexOf('.');
  const whole = point === -1 ? mantissa : mantissa.slice(0, point);
  const all = whole + (point === -1 ? '' : mantissa.slice(point + 1));
  let lead = 0;
  while (all[lead] === '0') lead++;
  const digits = all.slice(lead).replace(/0+$/, '');
  // The value is 0.digits × 10 ** (exponent + 1), i.e. d.igits × 10 ** exponent.
  const exponent = whole.length + (e === -1 ? 0 : Number(text.slice(e + 1))) - lead - 1;
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const power = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${digits[0]}${fraction}e${exponent < 0 ? '-' : '+'}${power}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  if (digits.length <= exponent + 1) return `${sign}${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value instanceof WholeFloat) return floatText(value.value);
  if (value === null) return 'none';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return typeof value === 'object' ? 'an object' : String(value);
}

/** Reads a number the way Python's float() does; non-finite results count as not a number. */
function toNumber(value: unknown): number | undefined {
  if (value instanceof WholeFloat) return value.value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const n = pythonFloat(value);
    return n !== undefined && Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

const DIGITS = String.raw`\d(?:_?\d)*`;
const PYTHON_FLOAT = new RegExp(`^[+-]?(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`);
const PYTHON_SPECIAL = /^[+-]?(?:inf|infinity|nan)$/i;

/**
 * Python's float(str): surrounding whitespace, a sign, digits with single underscores between
 * them, a fraction, an exponent, or inf/infinity/nan. Unlike JavaScript's Number() it refuses
 * "0x1A", "0b11" and "" (Number gives 26, 3 and 0).
 */
function pythonFloat(text: string): number | undefined {
  const s = text.trim();
  if (PYTHON_SPECIAL.test(s))
    return s.toLowerCase().endsWith('nan') ? Number.NaN : s.startsWith('-') ? -Infinity : Infinity;
  if (!PYTHON_FLOAT.test(s)) return undefined;
  return Number(s.replaceAll('_', ''));
}

/** Python refuses to convert more decimal digits than this (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;

/**
 * Python's int(str, base): whitespace, a sign, then digits of the base with single underscores
 * between them. With base 16, 8 or 2 an optional 0x, 0o or 0b prefix; with base 0 the prefix picks
 * the base and plain decimals may not start with 0. Anything else is undefined (a ValueError).
 */
function pythonInt(text: string, base: unknown): number | undefined {
  if (typeof base !== 'number' || !Number.isInteger(base) || (base !== 0 && (base < 2 || base > 36))) return undefined;
  let s = text.trim();
  let negative = false;
  if (s.startsWith('+') || s.startsWith('-')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  const prefix = s.slice(0, 2).toLowerCase();
  const prefixBase = prefix === '0x' ? 16 : prefix === '0o' ? 8 : prefix === '0b' ? 2 : 0;
  let radix = base === 0 ? 10 : base;
  if (prefixBase !== 0 && (base === 0 || base === prefixBase)) {
    radix = prefixBase;
    s = s.slice(2);
    if (s.startsWith('_')) s = s.slice(1);
  } else if (base === 0 && /^0[_0]*[1-9]/.test(s)) {
    return undefined; // int("010", 0) is an error: leading zeros would be octal in old Python
  }
  if (!/^[0-9a-z]+(?:_[0-9a-z]+)*$/i.test(s)) return undefined;
  const digits = s.replaceAll('_', '').toLowerCase();
  if ([...digits].some((c) => Number.parseInt(c, 36) >= radix)) return undefined;
  let result: bigint;
  if (radix === 10 || radix === 16 || radix === 8 || radix === 2) {
    if (radix === 10 && digits.length > MAX_INT_DIGITS) return undefined;
    const marker = radix === 16 ? '0x' : radix === 8 ? '0o' : radix === 2 ? '0b' : '';
    result = BigInt(marker + digits);
  } else {
    if (digits.length > MAX_INT_DIGITS) return undefined;
    result = 0n;
    for (const c of digits) result = result * BigInt(radix) + BigInt(Number.parseInt(c, 36));
  }
  const n = Number(result);
  return negative ? -n : n;
}

/** Python's int() of a finite float truncates toward zero, and an int has no negative zero. */
function truncate(n: number): number {
  return Math.trunc(n) || 0;
}

/**
 * Python's round(x, precision): the exact binary value of x scaled by 10**precision, rounded to
 * the nearest integer with ties to even, then read back as the nearest double. So round(2.5) is 2,
 * round(0.125, 2) is 0.12 (0.125 is exact, a true tie), and round(2.675, 2) is 2.67 (2.675 is
 * really 2.67499999…). Math.round would give 3, 0.13 and 2.68. The precision may be negative:
 * round(1250.0, -2) is 1200.0, a tie gone to the even hundred.
 */
function pythonRound(x: number, precision: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  // |x| = mantissa * 2**exponent, exactly.
  const mantissa = (bits & 0xfffffffffffffn) | (biased === 0 ? 0n : 1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  if (exponent >= 0 && precision >= 0) return x; // already a whole number
  // |x| * 10**precision = numerator / denominator, exactly; a negative precision divides by 10**-precision.
  let numerator = mantissa;
  let denominator = 1n;
  if (exponent >= 0) numerator <<= BigInt(exponent);
  else denominator <<= BigInt(-exponent);
  if (precision >= 0) numerator *= 10n ** BigInt(precision);
  else denominator *= 10n ** BigInt(-precision);
  let quotient = numerator / denominator;
  const twiceRemainder = 2n * (numerator - quotient * denominator);
  if (twiceRemainder > denominator || (twiceRemainder === denominator && (quotient & 1n) === 1n)) quotient += 1n;
  const magnitude = Number(`${quotient}e${-precision}`);
  return x < 0 ? -magnitude : magnitude;
}

/**
 * Python's ==, which `in` uses too. A bool is an int there, so 1 == True and 0 == False, also
 * inside lists and dicts ([1] == [True]). Dicts are equal whatever their key order, and NaN is
 * equal to nothing.
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const aNumeric = typeof a === 'number' || typeof a === 'boolean';
  const bNumeric = typeof b === 'number' || typeof b === 'boolean';
  if (aNumeric && bNumeric) return Number(a) === Number(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => sameValue(item, b[i]));
  }
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every(
      (key) =>
        Object.hasOwn(b, key) && sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
    );
  }
  return false;
}

/** Reads `target[key]` on JSON data only: own keys, list and string indexes, nothing inherited. */
function member(target: unknown, key: unknown): unknown {
  if (typeof target === 'string') {
    if (typeof key !== 'number' || !Number.isInteger(key)) return undefined;
    const index = key < 0 ? target.length + key : key;
    return index >= 0 && index < target.length ? target[index] : undefined;
  }
  if (Array.isArray(target)) {
    if (typeof key !== 'number' || !Number.isInteger(key)) return undefined;
    const index = key < 0 ? target.length + key : key;
    return index >= 0 && index < target.length ? typedEntry(target, index, target[index]) : undefined;
  }
  if (typeof target === 'object' && target !== null && (typeof key === 'string' || typeof key === 'number')) {
    const name = String(key);
    return Object.hasOwn(target, name)
      ? typedEntry(target, name, (target as Record<string, unknown>)[name])
      : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Filters and tests

/** An argument slot the template left empty (distinct from an argument that is undefined). */
const ABSENT: unique symbol = Symbol('absent');
/** The arguments in parameter order, ABSENT where the template left one out. */
type Filter = (value: unknown, args: readonly unknown[]) => unknown;

interface FilterSpec {
  /** Parameter names after the value, in order, as Jinja (or Home Assistant's override) names them. */
  readonly params: readonly string[];
  /** How many of them must be given. */
  readonly required?: number;
  readonly run: Filter;
}

function given(arg: unknown): boolean {
  return arg !== ABSENT;
}

/**
 * Home Assistant's float(default) (forgiving_float_filter): Python's float(value), or the default
 * when that fails, or an error when there is none. A missing value stays missing, so a partial
 * JSON state is simply skipped.
 */
function floatFilter(value: unknown, [fallback]: readonly unknown[]): unknown {
  const n = toNumber(value);
  if (n !== undefined) return pyFloat(n);
  if (given(fallback)) return fallback;
  if (value === undefined) return undefined;
  throw new TemplateError(`float: cannot convert ${describe(value)} to a number`);
}

/**
 * Home Assistant's int(default, base) is Jinja's do_int (jinja2/filters.py) with an error instead
 * of 0 when no default is given. do_int tries Python's int(value, base) for a string (int(value)
 * otherwise), then int(float(value)) so "42.23" gives 42, then the default. So "0x1A" | int is not
 * 26: int("0x1A", 10) and float("0x1A") both fail. With base=16 (or 0) it is 26.
 */
function intFilter(value: unknown, [fallback, base]: readonly unknown[]): unknown {
  let n: number | undefined;
  if (typeof value === 'string') {
    n = pythonInt(value, given(base) ? base : 10);
    if (n === undefined) n = toNumber(value);
  } else {
    n = toNumber(value);
  }
  if (n !== undefined && Number.isFinite(n)) return truncate(n);
  if (given(fallback)) return fallback;
  if (value === undefined) return undefined;
  throw new TemplateError(`int: cannot convert ${describe(value)} to a whole number`);
}

/**
 * round's precision bounds. Below -308 every double rounds to zero (Python returns 0.0 there), so
 * the bound loses nothing and keeps pythonRound's exact arithmetic small. Above 308 Home
 * Assistant itself fails: forgiving_round computes float(10**precision) first, whatever the
 * method, and that overflows, an OverflowError its default does not catch.
 */
const MIN_ROUND_PRECISION = -308;
const MAX_ROUND_PRECISION = 308;

/**
 * Home Assistant's round(precision, method, default) (forgiving_round, which replaces Jinja's
 * do_round): "common" is Python's round(float(value), precision), which rounds half to even on
 * the exact binary value (see pythonRound); "ceil" and "floor" are math.ceil/floor of
 * value * 10**precision, divided back; "half" is round(value * 2) / 2, ignoring precision. At
 * precision 0 the result goes through int(), so 2.3 | round(method="half") is int(2.5) = 2 and
 * 2.5 | round prints `2`; any other precision gives a float, so 21 | round(1) prints `21.0`.
 * Any other method, "Floor" or "nearest" included, is common rounding: Home Assistant's else
 * branch takes it without complaint, so refusing it would break templates that work there.
 * A negative precision rounds to tens, hundreds…, as Python's round(1234.5, -2) gives 1200.0.
 */
function roundFilter(value: unknown, [precisionArg, methodArg, fallback]: readonly unknown[]): unknown {
  const precision = given(precisionArg) ? toNumber(precisionArg) : 0;
  if (
    precision === undefined ||
    !Number.isInteger(precision) ||
    precision < MIN_ROUND_PRECISION ||
    precision > MAX_ROUND_PRECISION
  ) {
    throw new TemplateError(
      `round: precision must be a whole number from ${MIN_ROUND_PRECISION} to ${MAX_ROUND_PRECISION}`,
    );
  }
  const method = given(methodArg) ? methodArg : 'common';
  const n = toNumber(value);
  if (n === undefined) {
    if (given(fallback)) return fallback;
    if (value === undefined) return undefined;
    throw new TemplateError(`round: cannot round ${describe(value)}`);
  }
  // Python's float(10**precision) is correctly rounded; JavaScript's 10 ** -4 is 0.00009999999999999999.
  const scale = Number(`1e${precision}`);
  let result: number;
  if (method === 'floor' || method === 'ceil' || method === 'half') {
    // math.floor, math.ceil and round() of an infinite float raise OverflowError in Python.
    const scaled = method === 'half' ? n * 2 : n * scale;
    if (!Number.isFinite(scaled)) throw new TemplateError(`round: ${describe(value)} is too large to round that way`);
    // Python's math.floor, math.ceil and round() give an int, which has no negative zero: so
    // -0.05 | round(1, "ceil") is 0 / 10.0 = 0.0, where Math.ceil(-0.5) / 10 would be -0.
    let whole: number;
    if (method === 'floor') whole = Math.floor(scaled);
    else if (method === 'ceil') whole = Math.ceil(scaled);
    else whole = pythonRound(scaled, 0);
    result = (whole || 0) / (method === 'half' ? 2 : scale);
  } else {
    result = pythonRound(n, precision);
    // Python's round raises OverflowError when the rounded value is too large for a double.
    if (!Number.isFinite(result)) throw new TemplateError(`round: rounding ${describe(value)} overflows`);
  }
  return precision === 0 ? truncate(result) : pyFloat(result);
}

const TRUE_WORDS = new Set(['true', 'yes', 'on', 'enable', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', 'disable', '0']);

function boolFilter(input: unknown, [fallback]: readonly unknown[]): unknown {
  const value = plain(input);
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  if (given(fallback)) return fallback;
  if (value === undefined) return undefined;
  throw new TemplateError(`bool: cannot read ${describe(value)} as true or false`);
}

/**
 * Jinja's do_replace(s, old, new, count=None) is Python's str(s).replace(str(old), str(new),
 * count): count None or negative replaces all, and an empty old inserts new around every character.
 */
function replaceFilter(value: unknown, [old, replacement, countArg]: readonly unknown[]): unknown {
  if (value === undefined) return undefined;
  let count = -1;
  if (given(countArg) && countArg !== null) {
    if (typeof countArg !== 'number' || !Number.isInteger(countArg)) {
      throw new TemplateError('replace: count must be a whole number');
    }
    count = countArg;
  }
  const text = templateText(value);
  const from = templateText(old);
  const to = templateText(replacement);
  const limit = count < 0 ? Number.POSITIVE_INFINITY : count;
  if (from === '') {
    const chars = [...text];
    checkTextLength(text.length + Math.min(limit, chars.length + 1) * to.length, 'replace');
    let out = '';
    let done = 0;
    for (let i = 0; i <= chars.length; i++) {
      if (done < limit) {
        out += to;
        done++;
      }
      if (i < chars.length) out += chars[i];
    }
    return out;
  }
  if (to.length > from.length) {
    let found = 0;
    for (let at = text.indexOf(from); at !== -1 && found < limit; at = text.indexOf(from, at + from.length)) found++;
    checkTextLength(text.length + found * (to.length - from.length), 'replace');
  }
  let out = '';
  let done = 0;
  let at = 0;
  for (;;) {
    const found = done < limit ? text.indexOf(from, at) : -1;
    if (found === -1) return out + text.slice(at);
    out += text.slice(at, found) + to;
    at = found + from.length;
    done++;
  }
}

function stringFilter(fn: (text: string) => string): FilterSpec {
  return { params: [], run: (value) => (value === undefined ? undefined : fn(templateText(value))) };
}

/** A filter from number to number that keeps the type, as Python's abs(-2.0) is 2.0 and abs(True) is 1. */
function numericFilter(name: string, convert: (n: number) => number): FilterSpec {
  return {
    params: [],
    run: (value) => {
      const n = toNumber(value);
      if (n !== undefined) return isFloat(value) ? pyFloat(convert(n)) : convert(n);
      if (value === undefined) return undefined;
      throw new TemplateError(`${name}: cannot convert ${describe(value)} to a number`);
    },
  };
}

const FILTERS: Record<string, FilterSpec> = {
  float: { params: ['default'], run: floatFilter },
  int: { params: ['default', 'base'], run: intFilter },
  abs: numericFilter('abs', (n) => Math.abs(n)),
  round: { params: ['precision', 'method', 'default'], run: roundFilter },
  bool: { params: ['default'], run: boolFilter },
  lower: stringFilter((s) => s.toLowerCase()),
  upper: stringFilter((s) => s.toUpperCase()),
  trim: stringFilter((s) => s.trim()),
  string: { params: [], run: (value) => templateText(value) },
  replace: { params: ['old', 'new', 'count'], required: 2, run: replaceFilter },
  length: {
    params: [],
    run: (input) => {
      const value = plain(input);
      if (typeof value === 'string' || Array.isArray(value)) return value.length;
      if (typeof value === 'object' && value !== null) return Object.keys(value).length;
      throw new TemplateError(`length: ${describe(value)} has no length`);
    },
  },
  // Jinja's do_default(value, default_value="", boolean=False).
  default: {
    params: ['default_value', 'boolean'],
    run: (value, [fallback, boolean]) => {
      const useForFalsy = given(boolean) && truthy(boolean);
      if (value === undefined || (useForFalsy && !truthy(value))) return given(fallback) ? fallback : '';
      return value;
    },
  },
  is_defined: {
    params: [],
    run: (value) => {
      if (value === undefined) throw new TemplateError('is_defined: the value is undefined');
      return value;
    },
  },
  tojson: {
    params: [],
    run: (value) => jsonText(value) ?? 'null',
  },
};
FILTERS.d = FILTERS.default;
FILTERS.to_json = FILTERS.tojson;

/** Home Assistant's globals that are its filters called with the value first: float(value, 0). */
const FUNCTIONS = new Set(['float', 'int', 'bool']);

const TESTS: Record<string, (value: unknown) => boolean> = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  // Jinja's test_number is isinstance(value, Number), and a bool is an int in Python.
  number: (v) => typeof v === 'number' || typeof v === 'boolean' || v instanceof WholeFloat,
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
};

// ---------------------------------------------------------------------------------------------
// Evaluation

function evaluate(node: Node, vars: Record<string, unknown>): unknown {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'list': {
      const list: unknown[] = [];
      let floats: Set<number> | undefined;
      for (const item of node.items) {
        const value = evaluate(item, vars);
        if (value instanceof WholeFloat) {
          floats ??= new Set();
          floats.add(list.length);
        }
        list.push(plain(value));
      }
      if (floats) listLiteralFloats.set(list, floats);
      return list;
    }
    case 'variable': {
      const value = Object.hasOwn(vars, node.name) ? vars[node.name] : undefined;
      if (!(value instanceof JsonPayload)) return value;
      if (payloadRead !== value) {
        if (payloadRead && !otherPayloadsRead.includes(payloadRead)) otherPayloadsRead.push(payloadRead);
        payloadRead = value;
      }
      return value.templateValue();
    }
    case 'member':
      // A float key finds nothing: Python's list[1.0] is a TypeError, which Jinja reads as undefined.
      return member(plain(evaluate(node.target, vars)), evaluate(node.key, vars));
    case 'filter':
      // upper, tojson and string make a text at most a few times longer than the one they were
      // given (tojson of control characters six times): bounded, and checked here.
      return boundedResult(
        FILTERS[node.name].run(
          evaluate(node.target, vars),
          node.args.map((arg) => (arg === undefined ? ABSENT : evaluate(arg, vars))),
        ),
        node.name,
      );
    case 'test':
      return TESTS[node.name](evaluate(node.target, vars)) !== node.negate;
    case 'negate': {
      const target = evaluate(node.target, vars);
      const value = boolAsInt(plain(target));
      if (value === undefined) return undefined;
      if (typeof value !== 'number') throw new TemplateError(`cannot negate ${describe(value)}`);
      // A float keeps its sign at zero (-0.0), an int has no negative zero.
      return isFloat(target) ? pyFloat(-value) : -value || 0;
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
    case 'chain': {
      // Python stops at the first false link and never evaluates the operands after it.
      let left = evaluate(node.first, vars);
      for (const link of node.links) {
        const right = evaluate(link.right, vars);
        if (!truthy(binary(link.op, left, right, link.negate))) return false;
        left = right;
      }
      return true;
    }
  }
}

function binary(op: BinaryOp, left: unknown, right: unknown, negate: boolean): unknown {
  switch (op) {
    case '==':
      return sameValue(plain(left), plain(right));
    case '!=':
      return !sameValue(plain(left), plain(right));
    case '~':
      return joinTexts(templateText(left), templateText(right), 'joining texts with ~');
    case 'in':
      return contains(plain(right), plain(left)) !== negate;
    case '<':
    case '<=':
    case '>':
    case '>=':
      return order(op, plain(left), plain(right));
    default:
      return arithmetic(op, left, right);
  }
}

/**
 * Python's `item in container`. On a dict it looks at the keys, and a JSON object's keys are all
 * strings, so a number, a bool, None or an undefined value is simply not there (False, as Python
 * says for 1 in {"1": 2}); only an unhashable list or dict is an error there, as in Python.
 */
function contains(container: unknown, item: unknown): boolean {
  if (typeof container === 'string' && typeof item === 'string') return container.includes(item);
  if (Array.isArray(container)) return container.some((entry) => sameValue(entry, item));
  if (typeof container === 'object' && container !== null) {
    if (typeof item === 'string') return Object.hasOwn(container, item);
    if (typeof item !== 'object' || item === null) return false;
    throw new TemplateError(`cannot look for ${describe(item)} in an object: it cannot be a key`);
  }
  throw new TemplateError(`cannot look for ${describe(item)} in ${describe(container)}`);
}

function order(op: '<' | '<=' | '>' | '>=', leftValue: unknown, rightValue: unknown): boolean {
  const left = boolAsInt(leftValue);
  const right = boolAsInt(rightValue);
  const comparable =
    (typeof left === 'number' && typeof right === 'number') || (typeof left === 'string' && typeof right === 'string');
  if (!comparable) throw new TemplateError(`cannot compare ${describe(leftValue)} ${op} ${describe(rightValue)}`);
  const a = left as number | string;
  const b = right as number | string;
  if (op === '<') return a < b;
  if (op === '<=') return a <= b;
  if (op === '>') return a > b;
  return a >= b;
}

/** Two texts one after the other, refused before they are joined when together they are too long. */
function joinTexts(left: string, right: string, what: string): string {
  checkTextLength(left.length + right.length, what);
  return left + right;
}

/** A bool is an int in Python, so True + 1 is 2, -True is -1 and False < 1. */
function boolAsInt(value: unknown): unknown {
  return typeof value === 'boolean' ? Number(value) : value;
}

/**
 * Numbers only (no Python string repetition, which would let a template allocate without bound).
 * The result's type follows Python: an int when both sides are ints (a bool counts as one), except
 * that / always gives a float and so does an int to a negative power; a float when either side is.
 */
function arithmetic(op: BinaryOp, leftValue: unknown, rightValue: unknown): unknown {
  if (leftValue === undefined || rightValue === undefined) return undefined;
  if (op === '+' && typeof leftValue === 'string' && typeof rightValue === 'string') {
    return joinTexts(leftValue, rightValue, 'adding texts with +');
  }
  const left = boolAsInt(plain(leftValue));
  const right = boolAsInt(plain(rightValue));
  if (typeof left !== 'number' || typeof right !== 'number') {
    throw new TemplateError(
      `cannot compute ${describe(leftValue)} ${op} ${describe(rightValue)}: both sides must be numbers`,
    );
  }
  let float = isFloat(leftValue) || isFloat(rightValue);
  let result: number;
  switch (op) {
    case '+':
      result = left + right;
      break;
    case '-':
      result = left - right;
      break;
    case '*':
      result = left * right;
      break;
    case '**':
      if (left === 0 && right < 0) throw new TemplateError('division by zero: 0 cannot be raised to a negative power');
      if (left < 0 && Number.isFinite(left) && Number.isFinite(right) && !Number.isInteger(right)) {
        // Python gives a complex number here, which nothing in a device's payload can use.
        throw new TemplateError(`cannot compute ${describe(leftValue)} ** ${describe(rightValue)}: no real result`);
      }
      result = left ** right;
      // Python raises OverflowError for a float power too large for a double (an int one would be
      // a huge int, which a double cannot hold either).
      if (!Number.isFinite(result) && Number.isFinite(left) && Number.isFinite(right)) {
        throw new TemplateError(`cannot compute ${describe(leftValue)} ** ${describe(rightValue)}: too large`);
      }
      float ||= right < 0;
      break;
    default: {
      if (right === 0) throw new TemplateError('division by zero');
      if (op === '/') {
        result = left / right;
        float = true;
      } else {
        result = floorDivide(op === '%' ? '%' : '//', left, right);
      }
    }
  }
  if (float) return pyFloat(result);
  return Object.is(result, -0) ? 0 : result;
}

/**
 * Python's // and % (float_divmod in CPython, which is exact for ints a double holds too): the
 * remainder takes the sign of the divisor, and the quotient is floored from the exact remainder,
 * so 1 // 0.1 is 9.0 (0.1 is a little above a tenth) where Math.floor(1 / 0.1) is 10.
 */
function floorDivide(op: '//' | '%', left: number, right: number): number {
  let mod = left % right;
  let div = (left - mod) / right;
  if (mod !== 0) {
    if (right < 0 !== mod < 0) {
      mod += right;
      div -= 1;
    }
  } else {
    mod = right < 0 ? -0 : 0;
  }
  if (op === '%') return mod;
  if (div === 0) {
    const quotient = left / right;
    return quotient < 0 || Object.is(quotient, -0) ? -0 : 0;
  }
  let floored = Math.floor(div);
  if (div - floored > 0.5) floored += 1;
  return floored;
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
  const text = (vars: Record<string, unknown>): string => {
    let out = '';
    for (const segment of segments) {
      out = joinTexts(
        out,
        segment.kind === 'text' ? segment.text : templateText(evaluate(segment.node, vars)),
        'the template',
      );
    }
    return pythonStrip(out);
  };
  /** The one expression's value; a string stripped, as Home Assistant strips every rendered text. */
  const only = (node: Node, vars: Record<string, unknown>): unknown => {
    const value = evaluate(node, vars);
    return typeof value === 'string' ? pythonStrip(value) : value;
  };
  return {
    source,
    render(vars) {
      forgetPayloads();
      try {
        // A value keeps its type, and a float is its plain number: 21.0 is stored as 21.
        return onlyExpression ? plain(only(onlyExpression, vars)) : text(vars);
      } catch (error) {
        throw asTemplateError(error);
      }
    },
    renderText(vars) {
      forgetPayloads();
      try {
        return onlyExpression ? templateText(only(onlyExpression, vars)) : text(vars);
      } catch (error) {
        throw asTemplateError(error);
      }
    },
    renderResult(vars) {
      forgetPayloads();
      try {
        return onlyExpression ? only(onlyExpression, vars) : text(vars);
      } catch (error) {
        throw asTemplateError(error);
      }
    },
  };
}

/**
 * Python's str.strip(): Home Assistant strips what a template renders (value and command templates
 * alike), so `{{ value_json.state }}` followed by the newline a YAML block leaves is `ON`, not
 * `ON\n`. Python's whitespace, which differs from JavaScript's trim() (the information
 * separators \x1c–\x1f and NEL count, a byte-order mark does not).
 */
const PYTHON_SPACE = '[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const STRIP = new RegExp(`^${PYTHON_SPACE}+|${PYTHON_SPACE}+$`, 'g');
const EDGE_SPACE = new RegExp(`^${PYTHON_SPACE}|${PYTHON_SPACE}$`);

function pythonStrip(text: string): string {
  return EDGE_SPACE.test(text) ? text.replace(STRIP, '') : text;
}

/** Starts a render with no payloads read. */
function forgetPayloads(): void {
  payloadRead = undefined;
  if (otherPayloadsRead.length > 0) otherPayloadsRead.length = 0;
}

/** Anything other than a TemplateError (a stack overflow on absurd data) still surfaces as a template problem. */
function asTemplateError(error: unknown): TemplateError {
  if (error instanceof TemplateError) return error;
  return new TemplateError(`template failed: ${error instanceof Error ? error.message : String(error)}`);
}

// ---------------------------------------------------------------------------------------------
// JSON payloads: value_json as Python's json reads it

/** A digit followed by an exponent mark: how every JSON exponent starts (`1e3`, `2.5E-1`). */
const EXPONENT = /[0-9][eE]/;

/**
 * Whether a JSON text may hold a float literal whose value is whole, the only kind JSON.parse
 * loses (a float that is not whole stays one, and an int is one): one with a fraction of zeros
 * only (`21.0`), one whose fraction is so close to a whole number that the double rounds to it
 * (`0.99999999999999999` is 1.0, `10000000000000000.5` too), or one with an exponent (`1e3`,
 * `1e-400`). Conservative, as it does not tell strings from numbers: a match only costs the
 * careful reading, so a version string "1.0" may match too.
 */
function mayHoldWholeFloat(text: string): boolean {
  for (let point = text.indexOf('.'); point !== -1; point = text.indexOf('.', point + 1)) {
    let whole = 0;
    for (let c = text.charCodeAt(point - 1 - whole); c >= 0x30 && c <= 0x39; c = text.charCodeAt(point - 1 - whole)) {
      whole++;
    }
    const first = text.charCodeAt(point + 1);
    if (whole === 0 || first < 0x30 || first > 0x39) continue; // not a number's fraction
    // The run of zeros or nines the fraction starts with (and whether it is all zeros).
    let end = point + 1;
    while (text.charCodeAt(end) === first) end++;
    const next = text.charCodeAt(end);
    if (first === 0x30 && !(next >= 0x30 && next <= 0x39)) return true;
    // Below 10 ** whole, a literal rounds to a whole double only within 1.2 × 10 ** (whole - 16)
    // of it (half the spacing of doubles there), and a fraction that starts with `run` zeros or
    // nines then another digit is at least 10 ** -(run + 1) away: so only when run >= 15 - whole.
    const run = first === 0x30 || first === 0x39 ? end - point - 1 : 0;
    if (run >= 15 - whole) return true;
  }
  return EXPONENT.test(text);
}

/** Deeper than this the careful reading gives up, and whole floats there print as ints. */
const MAX_JSON_DEPTH = 256;

/**
 * A JSON payload as a template's `value_json`, read as Home Assistant's json_loads reads it: a
 * number written with a fraction or an exponent is a float, so `{"t": 21.0}` renders
 * `{{ value_json.t }}` as `21.0` and `{"t": 21}` as `21`.
 *
 * Every JSON state message becomes one, so it costs what JSON.parse costs and no more until a
 * template reads a whole number from it (25.37 is a float either way; 21 may have been written
 * 21.0): only then is the text scanned (mayHoldWholeFloat), and read again only when it may hold
 * a whole float literal.
 */
export class JsonPayload {
  /** The payload as JSON.parse reads it: plain JSON data, what every reader but a template takes. */
  readonly data: unknown;
  private checked = false;
  /** Whether the payload is one whole float (`21.0`). */
  private wholeFloat = false;
  /** Where its lists and objects hold whole floats, once checked (when the text may hold any). */
  private floats: WholeFloatKeys | undefined;

  /** Throws a SyntaxError, as JSON.parse does, when the text is not JSON. */
  constructor(readonly text: string) {
    this.data = JSON.parse(text);
  }

  /** value_json as a template sees it: the data, or a float for a payload that is one. */
  templateValue(): unknown {
    if (typeof this.data !== 'number' || !Number.isInteger(this.data)) return this.data;
    this.check();
    return this.wholeFloat ? new WholeFloat(this.data) : this.data;
  }

  /** Whether `container[key]`, a whole number in this payload's data, was written as a float. */
  holdsWholeFloat(container: object, key: number | string): boolean {
    this.check();
    return this.floats?.has(container, key) === true;
  }

  /**
   * Python's str() of the number at `container[key]` of this payload's data: `1.0` for one
   * written as a float, where templateText of the plain number would say `1`.
   */
  numberText(container: object, key: number | string): string {
    const value = (container as Record<string | number, unknown>)[key];
    return templateText(this.holdsWholeFloat(container, key) ? new WholeFloat(value as number) : value);
  }

  /** Finds the payload's whole float literals, once. */
  private check(): void {
    if (this.checked) return;
    this.checked = true;
    if (!mayHoldWholeFloat(this.text)) return;
    const floats = new WholeFloatKeys();
    try {
      this.wholeFloat = new WholeFloatFinder(this.text, floats).find(this.data);
      this.floats = floats;
    } catch {
      // Too deep to read by hand: the data is still right, only whole floats print as ints.
    }
  }
}

/**
 * The JSON payload the template being evaluated reads, so that a whole number read from one of
 * its lists or objects can ask whether it was written as a float (typedEntry). Evaluation is
 * synchronous, and each render starts with none (forgetPayloads). A template reads one payload,
 * value_json; any other it was given is in otherPayloadsRead.
 */
let payloadRead: JsonPayload | undefined;
const otherPayloadsRead: JsonPayload[] = [];

/**
 * Walks the text of JSON data JSON.parse has already read (so it checks nothing) beside that
 * data, and records where each whole float literal is in it.
 */
class WholeFloatFinder {
  private pos = 0;
  /** Whether the value just walked was a whole float literal. */
  private wholeFloat = false;

  constructor(
    private readonly text: string,
    private readonly floats: WholeFloatKeys,
  ) {}

  /** Records the floats in `data`; returns whether `data` itself is a whole float literal. */
  find(data: unknown): boolean {
    this.value(data, 0);
    return this.wholeFloat;
  }

  /**
   * Walks one value. `data` is what JSON.parse made of it, except under a key an object repeats:
   * there it is the last value's, as JSON.parse keeps the last, and the walk of the last
   * occurrence comes after the others, so its marks are the ones that stay.
   */
  private value(data: unknown, depth: number): void {
    if (depth > MAX_JSON_DEPTH) throw new RangeError('JSON nested too deep');
    this.skipSpace();
    this.wholeFloat = false;
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x7b) this.object(data, depth);
    else if (c === 0x5b) this.list(data, depth);
    else if (c === 0x22) this.string();
    else if (c === 0x74 || c === 0x6e)
      this.pos += 4; // true, null
    else if (c === 0x66)
      this.pos += 5; // false
    else this.number();
  }

  private object(data: unknown, depth: number): void {
    const object = typeof data === 'object' && data !== null && !Array.isArray(data) ? data : undefined;
    this.pos++;
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) !== 0x7d) {
      for (;;) {
        this.skipSpace();
        const key = this.string();
        this.skipSpace();
        this.pos++; // :
        this.value(
          object && Object.hasOwn(object, key) ? (object as Record<string, unknown>)[key] : undefined,
          depth + 1,
        );
        // A repeated key's last value is the one kept, so its type is the one that counts.
        if (object) this.floats.set(object, key, this.wholeFloat);
        this.skipSpace();
        if (this.text.charCodeAt(this.pos++) === 0x7d) break;
      }
    } else {
      this.pos++;
    }
    this.wholeFloat = false;
  }

  private list(data: unknown, depth: number): void {
    const list = Array.isArray(data) ? data : undefined;
    this.pos++;
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) !== 0x5d) {
      for (let index = 0; ; index++) {
        this.value(list?.[index], depth + 1);
        if (list && this.wholeFloat) this.floats.set(list, index, true);
        this.skipSpace();
        if (this.text.charCodeAt(this.pos++) === 0x5d) break;
      }
    } else {
      this.pos++;
    }
    this.wholeFloat = false;
  }

  /** Walks a string and returns it (a key is needed decoded; JSON.parse decodes any escapes). */
  private string(): string {
    const start = this.pos;
    let escaped = false;
    let i = start + 1;
    for (;;) {
      const c = this.text.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        i += 2;
      } else {
        i++;
      }
    }
    this.pos = i + 1;
    this.wholeFloat = false;
    return escaped ? (JSON.parse(this.text.slice(start, i + 1)) as string) : this.text.slice(start + 1, i);
  }

  private number(): void {
    const start = this.pos;
    let float = false;
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x2e || c === 0x65 || c === 0x45) float = true;
      else if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b)) break;
      this.pos++;
    }
    this.wholeFloat = float && Number.isInteger(Number(this.text.slice(start, this.pos)));
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.pos++;
    }
  }
}
