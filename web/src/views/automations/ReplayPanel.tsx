import { type FormEvent, useState } from 'react';
import type { Automation, ReplayResult } from '../../api/types.ts';
import { Empty, Problem } from '../../components/states.tsx';
import { counted, formatTime } from '../../format.ts';
import { useSession } from '../../live/context.ts';
import { localInput } from '../../time.ts';

type Outcome =
  | { state: 'idle' }
  | { state: 'running' }
  | { state: 'error'; message: string }
  | { state: 'done'; result: ReplayResult };

/** Runs the rule over recorded history on the hub (sending nothing) and lists the runs it would have made. */
export function ReplayPanel({ rule, onClose }: { rule: Automation; onClose(): void }) {
  const { client } = useSession();
  const [from, setFrom] = useState(() => localInput(Date.now() - 86_400_000));
  const [to, setTo] = useState(() => localInput(Date.now() + 60_000));
  const [outcome, setOutcome] = useState<Outcome>({ state: 'idle' });

  const replay = (event: FormEvent) => {
    event.preventDefault();
    const fromMs = Date.parse(from);
    const toMs = Date.parse(to);
    if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) {
      setOutcome({ state: 'error', message: 'Choose a start before the end.' });
      return;
    }
    setOutcome({ state: 'running' });
    client
      .send<ReplayResult>('POST', '/api/automations/replay', {
        rule: rule.rule,
        from: new Date(fromMs).toISOString(),
        to: new Date(toMs).toISOString(),
      })
      .then((result) => setOutcome({ state: 'done', result }))
      .catch((error: unknown) =>
        setOutcome({ state: 'error', message: error instanceof Error ? error.message : String(error) }),
      );
  };

  return (
    <section className="card panel" aria-labelledby="replay-heading">
      <h2 id="replay-heading">Replay {rule.name}</h2>
      <p className="help">
        Runs the rule against what was recorded, on a virtual clock. Nothing is sent to any device.
      </p>
      <form className="history-form" onSubmit={replay}>
        <div className="field">
          <label htmlFor="replay-from">From</label>
          <input id="replay-from" type="datetime-local" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        </div>
        <div className="field">
          <label htmlFor="replay-to">To</label>
          <input id="replay-to" type="datetime-local" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        </div>
        <div className="button-row">
          <button type="submit" className="primary" disabled={outcome.state === 'running'}>
            {outcome.state === 'running' ? 'Replaying…' : 'Replay'}
          </button>
          <button type="button" onClick={onClose}>
            Close replay
          </button>
        </div>
      </form>
      <div aria-live="polite">
        {outcome.state === 'error' ? <Problem>{outcome.message}</Problem> : null}
        {outcome.state === 'done' ? <ReplayRuns result={outcome.result} /> : null}
      </div>
    </section>
  );
}

function ReplayRuns({ result }: { result: ReplayResult }) {
  return (
    <>
      <p className="summary">
        {counted(result.runs.length, 'would-be run')} from {counted(result.events, 'recorded event')}
        {result.conditionFailed ? ` · ${result.conditionFailed} stopped by conditions` : ''}
        {result.skipped ? ` · ${result.skipped} skipped by the mode` : ''}
        {result.truncated ? ' · list shortened' : ''}
      </p>
      {result.note ? <p className="note">{result.note}</p> : null}
      {result.runs.length === 0 ? <Empty>The rule would not have run in this range.</Empty> : null}
      <ol className="timeline">
        {result.runs.map((run) => (
          <li key={`${run.at}-${run.trigger.description ?? ''}`}>
            <strong>{formatTime(run.at)}</strong> {run.trigger.description}
            <ul>
              {run.actions.map((action, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: a run's actions are a fixed, ordered list
                <li key={i}>
                  {action.message ??
                    `${action.action}${action.thing ? ` ${action.thing}` : ''}${action.input && Object.keys(action.input).length ? ` ${JSON.stringify(action.input)}` : ''}`}
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ol>
    </>
  );
}
