import {
  type Expr,
  type ExpressionScope,
  evaluate,
  parseExpression,
  TEXT_LIMIT,
  textOf,
  tooLongText,
} from '../expression/index.ts';
import type { Template } from '../model.ts';

const PLACEHOLDER = /\{\{([\s\S]*?)\}\}/g;

/**
 * Compiles a value whose strings may hold `{{ expression }}` parts. A string that is one
 * placeholder and nothing else keeps the expression's type (a number stays a number); mixed text
 * becomes text. Values without placeholders stay literal, so they can be checked up front.
 */
export function compileTemplate(value: unknown, depth = 0): Template {
  if (depth > 16) return { kind: 'literal', value };
  if (typeof value === 'string') {
    if (!value.includes('{{')) return { kind: 'literal', value };
    const whole = /^\s*\{\{([\s\S]*?)\}\}\s*$/.exec(value);
    if (whole && !whole[1].includes('{{'))
      return { kind: 'expression', expr: parseExpression(whole[1]), source: whole[1].trim() };
    const parts: Array<string | { expr: Expr; source: string }> = [];
    let last = 0;
    for (const match of value.matchAll(PLACEHOLDER)) {
      if (match.index > last) parts.push(value.slice(last, match.index));
      parts.push({ expr: parseExpression(match[1]), source: match[1].trim() });
      last = match.index + match[0].length;
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
