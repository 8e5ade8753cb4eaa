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
  const where = problem.file ? `${problem.file}${problem.line ? `:${problem.line}` : ''}: ` : '';
  return `${where}${problem.field ? `${problem.field}: ` : ''}${problem.message}`;
}

/** `['triggers', 0, 'thing']` → `triggers[0].thing`. */
export function fieldName(path: Array<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}
