import {
  type Expr,
  type ExpressionScope,
  ExpressionSyntaxError,
  evaluate,
  parseExpression,
  TEXT_LIMIT,
  textOf,
  tooLongText,
} from '../expression/index.ts';
import type { Template } from '../model.ts';

/**
 * Compiles a value whose strings may hold `{{ expression }}` parts. A string that is one
 * placeholder and nothing else keeps the expression's type (a number stays a number); mixed text
 * becomes text. Values without placeholders stay literal, so they can be checked up front.
 */
export function compileTemplate(value: unknown, depth = 0): Template {
  if (depth > 16) return { kind: 'literal', value };
  if (typeof value === 'string') {
    if (!value.includes('{{')) return { kind: 'literal', value };
    const pieces = placeholders(value);
    const [only] = pieces;
    if (pieces.length === 1 && value.slice(0, only.start).trim() === '' && value.slice(only.end).trim() === '')
      return { kind: 'expression', expr: parseExpression(only.source), source: only.source.trim() };
    const parts: Array<string | { expr: Expr; source: string }> = [];
    let last = 0;
    for (const piece of pieces) {
      if (piece.start > last) parts.push(value.slice(last, piece.start));
      parts.push({ expr: parseExpression(piece.source), source: piece.source.trim() });
      last = piece.end;
    }
    if (last < value.length) parts.push(value.slice(last));
    return { kind: 'text', parts };
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => compileTemplate(item, depth + 1));
    return items.every(templateIsLiteral) ? { kind: 'literal', value } : { kind: 'array', items };
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([k, v]) => [k, compileTemplate(v, depth + 1)] as [string, Template]);
    return entries.every(([, t]) => templateIsLiteral(t)) ? { kind: 'literal', value } : { kind: 'object', entries };
  }
  return { kind: 'literal', value };
}

/**
 * Each `{{ … }}` of a text: where it starts and ends, and the expression inside. A `}}` inside a
 * quoted text of the expression (`{{ 'a}}b' }}`) is part of it, not its end: a regular expression
 * cut it there and the rule was refused with a puzzling syntax error.
 */
function placeholders(value: string): Array<{ start: number; end: number; source: string }> {
  const found: Array<{ start: number; end: number; source: string }> = [];
  for (let start = value.indexOf('{{'); start !== -1; ) {
    let quote = '';
    let i = start + 2;
    for (; i < value.length; i++) {
      const c = value[i];
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = '';
      } else if (c === "'" || c === '"') quote = c;
      else if (c === '}' && value[i + 1] === '}') break;
    }
    if (i >= value.length) throw new ExpressionSyntaxError('"{{" is not closed by "}}"', start);
    found.push({ start, end: i + 2, source: value.slice(start + 2, i) });
    start = value.indexOf('{{', i + 2);
  }
  return found;
}

export function templateIsLiteral(template: Template): boolean {
  return template.kind === 'literal';
}

/** Every `{{ … }}` of a template, with the field it is in (`data.brightness`), for checks at save. */
export function templateExpressions(
  template: Template,
  path: Array<string | number>,
): Array<{ expr: Expr; source: string; path: Array<string | number> }> {
  switch (template.kind) {
    case 'literal':
      return [];
    case 'expression':
      return [{ expr: template.expr, source: template.source, path }];
    case 'text':
      return template.parts.flatMap((part) => (typeof part === 'string' ? [] : [{ ...part, path }]));
    case 'array':
      return template.items.flatMap((item, i) => templateExpressions(item, [...path, i]));
    case 'object':
      return template.entries.flatMap(([key, item]) => templateExpressions(item, [...path, key]));
  }
}

/**
 * Fills a template in from the run's variables and the household's state. A `{{ … }}` with no
 * value (a thing's property not reported yet, a field the trigger did not bring) renders as null,
 * or as nothing in text; its source is added to `missing`, when given, so the run's trace can
 * say so rather than send or show an empty value without a word.
 */
export function renderTemplate(template: Template, scope: ExpressionScope, missing?: string[]): unknown {
  switch (template.kind) {
    case 'literal':
      return template.value;
    case 'expression': {
      const value = evaluate(template.expr, scope);
      if ((value === null || value === undefined) && missing) missing.push(template.source);
      return value;
    }
    case 'text': {
      // Bounded as a whole, like any text a rule builds (see TEXT_LIMIT): with the reason in
      // `scope.refused`, a text too long renders as null.
      let text = '';
      for (const part of template.parts) {
        if (typeof part === 'string') text += part;
        else {
          const value = evaluate(part.expr, scope);
          if (value === null || value === undefined) missing?.push(part.source);
          const shown = textOf(value, scope, `{{ ${part.source} }}`);
          if (shown === null) return null;
          text += shown;
        }
        if (text.length > TEXT_LIMIT) {
          scope.refused?.push(tooLongText('the template'));
          return null;
        }
      }
      return text;
    }
    case 'array':
      return template.items.map((item) => renderTemplate(item, scope, missing));
    case 'object':
      return Object.fromEntries(template.entries.map(([k, t]) => [k, renderTemplate(t, scope, missing)]));
  }
}
