import { HubError } from '../../core/errors.ts';

/** One problem in a rule, located by its field path (`triggers[0].thing`) and, for files, its line. */
export interface RuleProblem {
  /** The field as people read it: `triggers[0].thing`. */
  field: string;
  /** The same field as keys, to find its line in a YAML document. */
  path?: Array<string | number>;
  message: string;
  file?: string;
  line?: number;
  /** Column (from 1) on that line, where known. */
  column?: number;
}

/**
 * A rule that cannot be used. A 400 over the API; for files, the message names file, line and
 * field so a person can go straight to the mistake.
 */
export class RuleError extends HubError {
  constructor(readonly problem: RuleProblem) {
    super(400, 'invalid_rule', describeProblem(problem));
    this.name = 'RuleError';
  }
}

export function describeProblem(problem: RuleProblem): string {
  // A file's problem reads `file:line: `, as editors and compilers write it; text sent over the
  // API has no file, so its place is said in words, with the column when known.
  const place = problem.line ? `line ${problem.line}${problem.column ? `, column ${problem.column}` : ''}` : '';
  const where = problem.file ? `${problem.file}${problem.line ? `:${problem.line}` : ''}: ` : place ? `${place}: ` : '';
  return `${where}${problem.field ? `${problem.field}: ` : ''}${problem.message}`;
}

/** `['triggers', 0, 'thing']` → `triggers[0].thing`. */
export function fieldName(path: Array<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}
