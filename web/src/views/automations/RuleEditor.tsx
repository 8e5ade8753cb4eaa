import { useEffect, useRef, useState } from 'react';
import type { Automation } from '../../api/types.ts';
import { useSession } from '../../live/context.ts';

/** A new rule starts from the shape the hub expects, with the user's own things to fill in. */
const TEMPLATE = `id: my-rule
name: My rule
mode: single
triggers:
  - trigger: state
    thing: hall-light
    property: light.on
    to: true
conditions: []
actions:
  - action: turn_off
    thing: hall-light
`;

interface RuleEditorProps {
  rule: Automation | null;
  onSaved(): void;
  onClose(): void;
}

/**
 * Edits a rule as text (YAML or JSON, which is also YAML) and lets the hub validate it: its
 * message names the field that is wrong, and nothing is saved until the whole rule is valid.
 */
export function RuleEditor({ rule, onSaved, onClose }: RuleEditorProps) {
  const { client } = useSession();
  const [text, setText] = useState(() => (rule ? JSON.stringify(rule.rule, null, 2) : TEMPLATE));
  const [problem, setProblem] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  // A new rule once saved is that rule: saving it again changes it (a second POST is a 409).
  const [savedId, setSavedId] = useState<string | null>(rule?.id ?? null);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);

  const save = () => {
    setBusy(true);
    setProblem(null);
    setSaved(false);
    const request = savedId
      ? client.send('PUT', `/api/automations/${encodeURIComponent(savedId)}`, text)
      : client.send<{ id?: string }>('POST', '/api/automations', text).then((answer) => {
          if (answer?.id) setSavedId(answer.id);
        });
    request
      .then(() => {
        setSaved(true);
        onSaved();
      })
      .catch((error: unknown) => setProblem(error instanceof Error ? error.message : String(error)))
      .finally(() => setBusy(false));
  };

  const title = rule ? `Edit ${rule.name}` : 'New rule';
  return (
    <section className="card panel" aria-labelledby="editor-heading">
      <h2 id="editor-heading" ref={heading} tabIndex={-1}>
        {title}
      </h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          save();
        }}
      >
        <label htmlFor="rule-text">Rule (YAML or JSON)</label>
        <textarea
          id="rule-text"
          className="code"
          rows={16}
          spellCheck={false}
          value={text}
          aria-invalid={problem !== null}
          aria-describedby="rule-message"
          onChange={(e) => setText(e.currentTarget.value)}
        />
        <div id="rule-message" aria-live="polite">
          {problem ? (
            <p className="error" role="alert">
              {problem}
            </p>
          ) : saved ? (
            <p className="ok">Saved.</p>
          ) : null}
        </div>
        <div className="button-row">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save rule'}
          </button>
          <button type="button" onClick={onClose}>
            Close editor
          </button>
        </div>
      </form>
    </section>
  );
}
