/** Raised for any expression that does not parse; the only error the expression language throws. */
export class ExpressionSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at character ${position + 1}`);
    this.name = 'ExpressionSyntaxError';
  }
}

export type TokenKind = 'number' | 'string' | 'name' | 'op' | 'end';

export interface Token {
  kind: TokenKind;
  text: string;
  /** The literal's value for numbers and strings. */
  value?: number | string;
  position: number;
}

/** Long enough for any sensible condition; bounds the work a hostile rule can ask for. */
export const MAX_EXPRESSION_LENGTH = 4000;

const OPERATORS = [
  '==',
  '!=',
  '<=',
  '>=',
  '&&',
  '||',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '!',
  '(',
  ')',
  '[',
  ']',
  ',',
  '.',
];

/** Splits an expression into tokens; every character is consumed or reported. */
export function tokenize(source: string): Token[] {
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new ExpressionSyntaxError(`expression is longer than ${MAX_EXPRESSION_LENGTH} characters`, 0);
  }
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (isDigit(c)) {
      const start = i;
      while (i < source.length && isDigit(source[i])) i++;
      if (source[i] === '.' && isDigit(source[i + 1] ?? '')) {
        i++;
        while (i < source.length && isDigit(source[i])) i++;
      }
      const text = source.slice(start, i);
      const value = Number(text);
      // Past about 1.8e308 a number is Infinity, which no value compares with sensibly and JSON cannot hold.
      if (!Number.isFinite(value)) throw new ExpressionSyntaxError(`number ${text.slice(0, 12)}… is too large`, start);
      tokens.push({ kind: 'number', text, value, position: start });
      continue;
    }
    if (c === "'" || c === '"') {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= source.length) throw new ExpressionSyntaxError('unterminated string', start);
        const d = source[i];
        if (d === c) break;
        if (d === '\\') {
          const next = source[i + 1];
          if (next === undefined) throw new ExpressionSyntaxError('unterminated string', start);
          if (next === 'u') {
            const unicode = unicodeEscape(source, i);
            value += unicode.text;
            i = unicode.end;
            continue;
          }
          value += ESCAPES[next] ?? next;
          i += 2;
          continue;
        }
        value += d;
        i++;
      }
      i++;
      tokens.push({ kind: 'string', text: source.slice(start, i), value, position: start });
      continue;
    }
    if (isNameStart(c)) {
      const start = i;
      while (i < source.length && isNamePart(source[i])) i++;
      tokens.push({ kind: 'name', text: source.slice(start, i), position: start });
      continue;
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i));
    if (!op) throw new ExpressionSyntaxError(`unexpected character ${JSON.stringify(c)}`, i);
    tokens.push({ kind: 'op', text: op, position: i });
    i += op.length;
  }
  tokens.push({ kind: 'end', text: '', position: source.length });
  return tokens;
}

/** What a backslash and the character after it stand for; any other character stands for itself. */
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0' };

/**
 * `\u00e9` or `\u{1F697}` at `at` (the backslash): the character, and where the escape ends. It
 * read as the letter u and the digits after it, so `'caf\u00e9'` was "cafu00e9", without a word.
 */
function unicodeEscape(source: string, at: number): { text: string; end: number } {
  const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(source.slice(at + 2, at + 10));
  const plain = braced ? null : /^[0-9a-fA-F]{4}/.exec(source.slice(at + 2, at + 6));
  const hex = braced?.[1] ?? plain?.[0];
  if (hex === undefined)
    throw new ExpressionSyntaxError('\\u must be followed by 4 hex digits or {hex}, such as \\u00e9 or \\u{1F697}', at);
  const code = Number.parseInt(hex, 16);
  if (code > 0x10ffff) throw new ExpressionSyntaxError(`\\u{${hex}} is not a Unicode code point`, at);
  return { text: String.fromCodePoint(code), end: at + 2 + (braced ? braced[0].length : 4) };
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
