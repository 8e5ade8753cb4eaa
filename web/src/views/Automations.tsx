import { useState } from 'react';
import { routeRefusal } from '../api/client.ts';
import type { Automation } from '../api/types.ts';
import { Empty, Loading, NotShared, Problem } from '../components/states.tsx';
import { useResource, useSession } from '../live/context.ts';
import { ReplayPanel } from './automations/ReplayPanel.tsx';
import { RuleEditor } from './automations/RuleEditor.tsx';
import { FileOverride, RuleWarnings } from './automations/RuleNotices.tsx';
import { TraceTimeline } from './automations/TraceTimeline.tsx';

type Panel =
  | { kind: 'edit'; rule: Automation | null }
  | { kind: 'traces'; rule: Automation }
  | { kind: 'replay'; rule: Automation };

export function Automations() {
  const [rules, reload] = useResource<Automation[]>('/api/automations', '/api/automations');
  const [panel, setPanel] = useState<Panel | null>(null);
  // Children may read the rules and their traces; changing or replaying them is for adults and
  // owners. Whether this person may write a rule is the hub's word (GET /api/session).
  const { me } = useSession();
  const canEdit = routeRefusal(me, 'POST /api/automations') === null;

  return (
    <div className="view">
      <h1>Automations</h1>
      {rules.state === 'loading' ? <Loading what="automations" /> : null}
      {rules.state === 'missing' ? <Empty>Automations are not available on this hub yet.</Empty> : null}
      {rules.state === 'not-shared' ? <NotShared what="The automations are" /> : null}
      {rules.state === 'error' ? <Problem>Could not load the automations: {rules.message}</Problem> : null}
      {rules.state === 'ready' ? (
        <>
          {canEdit ? (
            <button type="button" className="primary" onClick={() => setPanel({ kind: 'edit', rule: null })}>
              New rule
            </button>
          ) : (
            <p className="help">You can read the rules and their traces; an adult or owner can change them.</p>
          )}
          {rules.data.length === 0 ? (
            <Empty>No rules yet. Write one with “New rule”, or put YAML files in the hub's automations folder.</Empty>
          ) : null}
          <ul className="rules">
            {rules.data.map((rule) => (
              <RuleRow key={rule.id} rule={rule} canEdit={canEdit} onChanged={reload} onOpen={setPanel} />
            ))}
          </ul>
        </>
      ) : null}
      {panel?.kind === 'edit' ? (
        <RuleEditor
          key={panel.rule?.id ?? 'new'}
          rule={panel.rule}
          onSaved={() => {
            reload();
          }}
          onClose={() => setPanel(null)}
        />
      ) : null}
      {panel?.kind === 'traces' ? (
        <TraceTimeline key={panel.rule.id} rule={panel.rule} onClose={() => setPanel(null)} />
      ) : null}
      {panel?.kind === 'replay' ? (
        <ReplayPanel key={panel.rule.id} rule={panel.rule} onClose={() => setPanel(null)} />
      ) : null}
    </div>
  );
}

function RuleRow({
  rule,
  canEdit,
  onChanged,
  onOpen,
}: {
  rule: Automation;
  canEdit: boolean;
  onChanged(): void;
  onOpen(panel: Panel): void;
}) {
  const { client } = useSession();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const switchTo = (enabled: boolean) => {
    setBusy(true);
    setProblem(null);
    client
      .send('POST', `/api/automations/${encodeURIComponent(rule.id)}/${enabled ? 'enable' : 'disable'}`)
      .then(onChanged)
      .catch((error: unknown) => setProblem(error instanceof Error ? error.message : String(error)))
      .finally(() => setBusy(false));
  };
  return (
    <li className="card rule">
      <div className="rule-head">
        <h2 className="rule-name">{rule.name}</h2>
        <span className={`badge ${rule.status}`}>
          {{ active: 'Active', disabled: 'Disabled', invalid: 'Invalid' }[rule.status]}
        </span>
        {rule.running > 0 ? <span className="badge">Running</span> : null}
      </div>
      {rule.file ? <p className="help">From {rule.file}</p> : null}
      {rule.problem ? <Problem>{rule.problem}</Problem> : null}
      <RuleWarnings rule={rule} />
      <FileOverride rule={rule} canEdit={canEdit} busy={busy} onUseFile={switchTo} />
      <div className="button-row">
        <button
          type="button"
          role="switch"
          className="switch"
          aria-checked={rule.enabled}
          aria-busy={busy}
          aria-label={`${rule.name} enabled`}
          disabled={!canEdit}
          onClick={() => {
            if (!busy) switchTo(!rule.enabled);
          }}
        >
          <span className="switch-track" aria-hidden="true">
            <span className="switch-thumb" />
          </span>
          <span className="switch-text" aria-hidden="true">
            {rule.enabled ? 'Enabled' : 'Disabled'}
          </span>
        </button>
        {canEdit ? (
          <button type="button" aria-label={`Edit ${rule.name}`} onClick={() => onOpen({ kind: 'edit', rule })}>
            Edit
          </button>
        ) : null}
        <button type="button" aria-label={`Traces of ${rule.name}`} onClick={() => onOpen({ kind: 'traces', rule })}>
          Traces
        </button>
        {canEdit ? (
          <button type="button" aria-label={`Replay ${rule.name}`} onClick={() => onOpen({ kind: 'replay', rule })}>
            Replay
          </button>
        ) : null}
      </div>
      {problem ? <Problem>{problem}</Problem> : null}
    </li>
  );
}
