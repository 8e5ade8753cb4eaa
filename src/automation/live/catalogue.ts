import type { Thing } from '../../model/thing.ts';
import type { Rule, RuleOrigin } from '../model.ts';
import { describeProblem, RuleError, type RuleProblem } from '../parse/errors.ts';
import { parseRule } from '../parse/rule.ts';
import { locate, readRulesYaml } from '../parse/yaml.ts';

/** A rule as the engine knows it: valid and loaded, or waiting for a thing that is not there yet. */
export interface RuleEntry {
  householdId: string;
  id: string;
  origin: RuleOrigin;
  source: Record<string, unknown>;
  rule: Rule | null;
  problem: RuleProblem | null;
}

/** A rules file whose latest text could not be used; its previous rules keep running. */
export interface FileProblem {
  file: string;
  problem: RuleProblem;
  message: string;
}

export interface CatalogueContext {
  thing(householdId: string, id: string): Thing | undefined;
  hasLocation(householdId: string): boolean;
}

/**
 * Validates a document into a rule for a household, throwing a RuleError naming the field.
 * `legacy`: `refuse` for a rule being written now (over the API); left out, what older versions
 * accepted (see RuleContext.legacy) is ignored with a warning, as for rules stored or in files.
 */
export function validateRule(
  raw: unknown,
  householdId: string,
  origin: RuleOrigin,
  ctx: CatalogueContext,
  legacy: 'refuse' | 'ignore' = 'ignore',
): Rule {
  return parseRule(raw, {
    householdId,
    origin,
    thing: (id) => ctx.thing(householdId, id),
    hasLocation: ctx.hasLocation(householdId),
    legacy,
  });
}

/** Parses every rule in a YAML file; any problem fails the whole file, with file, line and field. */
export function rulesFromFile(text: string, file: string, householdId: string, ctx: CatalogueContext): Rule[] {
  const docs = readRulesYaml(text, file);
  const rules: Rule[] = [];
  const ids = new Set<string>();
  for (const doc of docs) {
    try {
      const rule = validateRule(doc.raw, householdId, { kind: 'file', file }, ctx);
      if (ids.has(rule.id)) {
        throw new RuleError({
          field: 'id',
          path: ['id'],
          message: `rule id ${JSON.stringify(rule.id)} appears twice in this file`,
        });
      }
      ids.add(rule.id);
      rules.push(rule);
    } catch (error) {
      throw locate(error, doc, file);
    }
  }
  return rules;
}

export function fileProblem(file: string, error: unknown): FileProblem {
  const problem: RuleProblem =
    error instanceof RuleError
      ? error.problem
      : { file, field: '', message: error instanceof Error ? error.message : String(error) };
  return { file, problem, message: describeProblem(problem) };
}
