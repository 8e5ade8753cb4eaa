import { isNode, LineCounter, parseAllDocuments, parseDocument } from 'yaml';
import { RuleError, type RuleProblem } from './errors.ts';

/** One rule document found in a YAML text, with a way to find the line of any of its fields. */
export interface YamlRule {
  raw: unknown;
  lineOf(path: Array<string | number>): number | undefined;
  /** Line and column (from 1) of the field, or of its deepest part that exists. */
  positionOf(path: Array<string | number>): { line: number; column: number } | undefined;
}

/**
 * Reads a rules file: one rule, a list of rules, or several `---` documents. A YAML syntax error
 * throws a RuleError with the file and line.
 */
export function readRulesYaml(text: string, file?: string): YamlRule[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new RuleError({ file, field: '', message: 'is not a YAML document' });
  const rules: YamlRule[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      throw new RuleError({ file, line, column: col, field: '', message: `YAML: ${error.message.split('\n')[0]}` });
    }
    const positionOf = (prefix: Array<string | number>) => (path: Array<string | number>) => {
      // The deepest part of the path that exists; a missing field is reported at its parent.
      for (let n = prefix.length + path.length; n >= 0; n--) {
        const node = doc.getIn([...prefix, ...path].slice(0, n), true);
        if (isNode(node) && node.range) {
          const { line, col } = lineCounter.linePos(node.range[0]);
          return { line, column: col };
        }
      }
      return undefined;
    };
    const located = (prefix: Array<string | number>) => {
      const at = positionOf(prefix);
      return { positionOf: at, lineOf: (path: Array<string | number>) => at(path)?.line };
    };
    const value = documentValue(doc, file);
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) {
      for (const [i, raw] of value.entries()) rules.push({ raw, ...located([i]) });
    } else rules.push({ raw: value, ...located([]) });
  }
  return rules;
}

/** Adds file and line to a rule problem found while validating a YAML rule. */
export function locate(error: unknown, rule: YamlRule, file?: string): unknown {
  if (!(error instanceof RuleError)) return error;
  const at = error.problem.path ? rule.positionOf(error.problem.path) : undefined;
  const problem: RuleProblem = { ...error.problem, file, line: at?.line, column: at?.column };
  return new RuleError(problem);
}

/**
 * Reads one YAML document that is not a rules file (a request body): its value, or a RuleError
 * with the line and column of a syntax error.
 */
export function readYamlDocument(text: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    throw new RuleError({ line, column: col, field: '', message: `YAML: ${error.message.split('\n')[0]}` });
  }
  return documentValue(doc);
}

/**
 * A parsed document's value. Aliases are expanded at most 100 times: a document of nested
 * aliases (a "billion laughs") would otherwise grow to gigabytes. The library stops it with a
 * plain error; that is the sender's mistake, said as a rule problem (a 400), not a failure of the hub.
 */
function documentValue(doc: { toJS(options: { maxAliasCount: number }): unknown }, file?: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new RuleError({ file, field: '', message: `YAML: ${message}` });
  }
}
