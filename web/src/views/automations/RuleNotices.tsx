import type { Automation } from '../../api/types.ts';

/**
 * What the hub ignored as it loaded the rule (a `max` an older version accepted on a single rule, a
 * template naming a thing that is not there), listed so the user knows to edit it. Not a problem:
 * the rule runs, without those settings.
 */
export function RuleWarnings({ rule }: { rule: Automation }) {
  const warnings = rule.warnings ?? [];
  if (warnings.length === 0) return null;
  const where = rule.file ? `Edit ${rule.file}` : 'Edit the rule and save it';
  return (
    <div className="notice rule-warnings" role="note" aria-label={`Notes on ${rule.name}`}>
      <p>
        {warnings.length === 1 ? 'Part of this rule is' : 'Parts of this rule are'} ignored; it runs without{' '}
        {warnings.length === 1 ? 'it' : 'them'}:
      </p>
      <ul>
        {warnings.map((warning) => (
          <li key={warning}>{warning}</li>
        ))}
      </ul>
      <p className="help">{where} to remove or correct this, and this note goes away.</p>
    </div>
  );
}

/** What a rule's file says of `enabled:` (true unless it says `enabled: false`). */
export function fileEnabled(rule: Automation): boolean {
  return rule.rule.enabled !== false;
}

const word = (enabled: boolean) => (enabled ? 'enabled' : 'disabled');

/**
 * A file's rule switched here (or over the API): the switch wins over the file's `enabled:`, so
 * the user editing the file is told why changing it seems to do nothing, and may go back to it.
 */
export function FileOverride({
  rule,
  canEdit,
  busy,
  onUseFile,
}: {
  rule: Automation;
  canEdit: boolean;
  busy: boolean;
  onUseFile(enabled: boolean): void;
}) {
  if (rule.origin !== 'file' || rule.override === null || rule.override === undefined) return null;
  const file = rule.file ?? 'its file';
  const fromFile = fileEnabled(rule);
  const here = `${word(rule.override).charAt(0).toUpperCase()}${word(rule.override).slice(1)} here`;
  return (
    <div className="notice rule-override" role="note" aria-label={`How ${rule.name} is switched`}>
      <p>
        {rule.override === fromFile
          ? `${here}, and ${file} now says the same (enabled: ${fromFile}); while this switch is set, changing enabled: in the file has no effect.`
          : `${here}, which overrides enabled: ${fromFile} in ${file}; changing enabled: in the file has no effect until you use the file’s setting again.`}
      </p>
      {canEdit ? (
        <button
          type="button"
          aria-label={`Use the file’s setting for ${rule.name}`}
          aria-busy={busy}
          onClick={() => {
            if (!busy) onUseFile(fromFile);
          }}
        >
          Use the file’s setting ({word(fromFile)})
        </button>
      ) : null}
    </div>
  );
}
