import { ExpressionSyntaxError, type Token, tokenize } from './tokens.ts';

/** The syntax tree of an expression. Plain data, so a parsed rule can be stored and compared. */
export type Expr =
  | { kind: 'literal'; value: unknown }
  | { kind: 'name'; name: string }
  | { kind: 'list'; items: Expr[] }
  | { kind: 'member'; object: Expr; name: string }
  | { kind: 'index'; object: Expr; index: Expr }
  | { kind: 'call'; fn: string; args: Expr[] }
  | { kind: 'unary'; op: '-' | 'not'; operand: Expr }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr };

export type BinaryOp = 'and' | 'or' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | '+' | '-' | '*' | '/' | '%';

/** Functions an expression may call, with how many arguments each takes. Nothing else is reachable. */
export const FUNCTIONS: Record<string, { min: number; max: number }> = {
  state: { min: 2, max: 2 },
  now: { min: 0, max: 0 },
  hour: { min: 0, max: 0 },
  minute: { min: 0, max: 0 },
  weekday: { min: 0, max: 0 },
  abs: { min: 1, max: 1 },
  min: { min: 1, max: 16 },
  max: { min: 1, max: 16 },
  round: { min: 1, max: 2 },
  floor: { min: 1, max: 1 },
  ceil: { min: 1, max: 1 },
  len: { min: 1, max: 1 },
  lower: { min: 1, max: 1 },
  upper: { min: 1, max: 1 },
  contains: { min: 2, max: 2 },
  number: { min: 1, max: 1 },
  string: { min: 1, max: 1 },
};

/**
 * The most digits after the point round() keeps: a number carries 15 to 17 significant digits, so
 * more would only round away what the number cannot hold.
 */
const MAX_ROUND_DIGITS = 15;

/** Why `digits` cannot be round()'s digits after the point, or null when it can. */
export function roundDigitsProblem(digits: unknown): string | null {
  if (typeof digits === 'number' && Number.isInteger(digits) && digits >= 0 && digits <= MAX_ROUND_DIGITS) return null;
  return `round() rounds to 0 to ${MAX_ROUND_DIGITS} digits after the point, not ${JSON.stringify(digits) ?? String(digits)}`;
}

/** Nesting deeper than this is refused, so a parse never exhausts the stack. */
const MAX_DEPTH = 64;

const KEYWORDS: Record<string, unknown> = { true: true, false: false, null: null };

/**
 * A recursive-descent parser for Triad's condition language:
 * `or` < `and` < `not` < comparison (`== != < <= > >= in`) < `+ -` < `* / %` < unary `-` < postfix.
 */
class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): Expr {
    const expr = this.or();
    const next = this.peek();
    if (next.kind !== 'end') throw new ExpressionSyntaxError(`unexpected ${describe(next)}`, next.position);
    return expr;
  }

  private peek(): Token {
    return this.tokens[this.pos];
  }

  private take(): Token {
    const token = this.tokens[this.pos];
    if (token.kind !== 'end') this.pos++;
    return token;
  }

  private accept(...texts: string[]): string | null {
    const token = this.peek();
    if ((token.kind === 'op' || token.kind === 'name') && texts.includes(token.text)) {
      this.pos++;
      return token.text;
    }
    return null;
  }

  private expect(text: string): void {
    const token = this.peek();
    if (token.kind === 'op' && token.text === text) {
      this.pos++;
      return;
    }
    throw new ExpressionSyntaxError(`expected ${JSON.stringify(text)} but found ${describe(token)}`, token.position);
  }

  private nested<T>(fn: () => T): T {
    if (++this.depth > MAX_DEPTH)
      throw new ExpressionSyntaxError('expression is nested too deeply', this.peek().position);
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private or(): Expr {
    return this.nested(() => {
      let left = this.and();
      while (this.accept('or', '||')) left = { kind: 'binary', op: 'or', left, right: this.and() };
      return left;
    });
  }

  private and(): Expr {
    let left = this.not();
    while (this.accept('and', '&&')) left = { kind: 'binary', op: 'and', left, right: this.not() };
    return left;
  }

  private not(): Expr {
    if (this.accept('not', '!')) return this.nested(() => ({ kind: 'unary', op: 'not', operand: this.not() }));
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.additive();
    const op = this.accept('==', '!=', '<=', '>=', '<', '>', 'in');
    if (!op) return left;
    return { kind: 'binary', op: op as BinaryOp, left, right: this.additive() };
  }

  private additive(): Expr {
    let left = this.multiplicative();
    for (let op = this.accept('+', '-'); op; op = this.accept('+', '-')) {
      left = { kind: 'binary', op: op as BinaryOp, left, right: this.multiplicative() };
    }
    return left;
  }

  private multiplicative(): Expr {
    let left = this.unary();
    for (let op = this.accept('*', '/', '%'); op; op = this.accept('*', '/', '%')) {
      left = { kind: 'binary', op: op as BinaryOp, left, right: this.unary() };
    }
    return left;
  }

  private unary(): Expr {
    if (this.accept('-')) return this.nested(() => ({ kind: 'unary', op: '-', operand: this.unary() }));
    return this.postfix();
  }

  private postfix(): Expr {
    let expr = this.primary();
    for (;;) {
      if (this.accept('.')) {
        const name = this.take();
        if (name.kind !== 'name')
          throw new ExpressionSyntaxError(`expected a name after "." but found ${describe(name)}`, name.position);
        expr = { kind: 'member', object: expr, name: name.text };
      } else if (this.accept('[')) {
        const index = this.or();
        this.expect(']');
        expr = { kind: 'index', object: expr, index };
      } else {
        return expr;
      }
    }
  }

  private primary(): Expr {
    const token = this.take();
    switch (token.kind) {
      case 'number':
      case 'string':
        return { kind: 'literal', value: token.value };
      case 'name': {
        if (Object.hasOwn(KEYWORDS, token.text)) return { kind: 'literal', value: KEYWORDS[token.text] };
        if (this.accept('(')) return this.call(token);
        return { kind: 'name', name: token.text };
      }
      case 'op':
        if (token.text === '(') {
          const inner = this.or();
          this.expect(')');
          return inner;
        }
        if (token.text === '[') {
          const items: Expr[] = [];
          if (!this.accept(']')) {
            do items.push(this.or());
            while (this.accept(','));
            this.expect(']');
          }
          return { kind: 'list', items };
        }
        throw new ExpressionSyntaxError(`unexpected ${describe(token)}`, token.position);
      default:
        throw new ExpressionSyntaxError('unexpected end of expression', token.position);
    }
  }

  private call(name: Token): Expr {
    const spec = Object.hasOwn(FUNCTIONS, name.text) ? FUNCTIONS[name.text] : undefined;
    if (!spec)
      throw new ExpressionSyntaxError(
        `unknown function ${name.text}() (known: ${Object.keys(FUNCTIONS).join(', ')})`,
        name.position,
      );
    const args: Expr[] = [];
    const starts: number[] = [];
    if (!this.accept(')')) {
      do {
        starts.push(this.peek().position);
        args.push(this.or());
      } while (this.accept(','));
      this.expect(')');
    }
    if (args.length < spec.min || args.length > spec.max) {
      const want = spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
      throw new ExpressionSyntaxError(`${name.text}() takes ${want} argument(s), got ${args.length}`, name.position);
    }
    // Digits written out are judged as the rule is saved; digits from a value, when it runs.
    const digits = name.text === 'round' && args.length === 2 ? constantNumber(args[1]) : undefined;
    const problem = digits === undefined ? null : roundDigitsProblem(digits);
    if (problem !== null) throw new ExpressionSyntaxError(problem, starts[1]);
    return { kind: 'call', fn: name.text, args };
  }
}

/** The value of a literal, or of `-` and a literal number; undefined for anything that must run to be known. */
function constantNumber(expr: Expr): unknown {
  if (expr.kind === 'literal') return expr.value;
  if (
    expr.kind === 'unary' &&
    expr.op === '-' &&
    expr.operand.kind === 'literal' &&
    typeof expr.operand.value === 'number'
  )
    return -expr.operand.value;
  return undefined;
}

function describe(token: Token): string {
  return token.kind === 'end' ? 'the end of the expression' : JSON.stringify(token.text);
}

/** Parses an expression or throws ExpressionSyntaxError, which names the position. */
export function parseExpression(source: string): Expr {
  if (typeof source !== 'string') throw new ExpressionSyntaxError('an expression must be a string', 0);
  return new Parser(tokenize(source)).parse();
}

/** Calls `visit` with every node of the expression, the expression itself first. */
export function forEachNode(expr: Expr, visit: (e: Expr) => void): void {
  visit(expr);
  switch (expr.kind) {
    case 'call':
      for (const arg of expr.args) forEachNode(arg, visit);
      return;
    case 'list':
      for (const item of expr.items) forEachNode(item, visit);
      return;
    case 'member':
      forEachNode(expr.object, visit);
      return;
    case 'index':
      forEachNode(expr.object, visit);
      forEachNode(expr.index, visit);
      return;
    case 'unary':
      forEachNode(expr.operand, visit);
      return;
    case 'binary':
      forEachNode(expr.left, visit);
      forEachNode(expr.right, visit);
      return;
    default:
      return;
  }
}

/** Every `state('thing', 'property')` call with literal arguments, so a rule can check them up front. */
export function stateReferences(expr: Expr): Array<{ thing: string; property: string }> {
  const found: Array<{ thing: string; property: string }> = [];
  forEachNode(expr, (e) => {
    if (e.kind !== 'call' || e.fn !== 'state') return;
    const [a, b] = e.args;
    if (a?.kind === 'literal' && b?.kind === 'literal' && typeof a.value === 'string' && typeof b.value === 'string')
      found.push({ thing: a.value, property: b.value });
  });
  return found;
}
