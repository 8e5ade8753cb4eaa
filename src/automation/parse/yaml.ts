import { isNode, LineCounter, parseAllDocuments } from 'yaml';
import { RuleError, type RuleProblem } from './errors.ts';

/** One rule document found in a YAML text, with a way to find the line of any of its fields. */
export interface YamlRule {
  raw: unknown;
  lineOf(path: Array<string | number>): number | undefined;
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
      const line = lineCounter.linePos(error.pos[0]).line;
      throw new RuleError({ file, line, field: '', message: `YAML: ${error.message.split('\n')[0]}` });
    }
    const lineOf = (prefix: Array<string | number>) => (path: Array<string | number>) => {
      // The deepest part of the path that exists; a missing field is reported at its parent.
      for (let n = prefix.length + path.length; n >= 0; n--) {
        const node = doc.getIn([...prefix, ...path].slice(0, n), true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    };
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) {
      for (const [i, raw] of value.entries()) rules.push({ raw, lineOf: lineOf([i]) });
    } else rules.push({ raw: value, lineOf: lineOf([]) });
  }
  return rules;
}

/** Adds file and line to a rule problem found while validating a YAML rule. */
export function locate(error: unknown, rule: YamlRule, file?: string): unknown {
  if (!(error instanceof RuleError)) return error;
  const problem: RuleProblem = {
    ...error.problem,
    file,
    line: error.problem.path ? rule.lineOf(error.problem.path) : undefined,
  };
  return new RuleError(problem);
}
