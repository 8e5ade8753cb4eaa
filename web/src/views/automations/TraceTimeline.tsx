import type { Automation, Trace, TraceStep } from '../../api/types.ts';
import { Empty, Loading, NotShared, Problem } from '../../components/states.tsx';
import { counted, formatClock, formatDuration, formatNumber, formatTime } from '../../format.ts';
import { useResource } from '../../live/context.ts';
import { toMs } from '../../time.ts';

/** A rule's runs, newest first, each as a timeline: trigger → conditions → steps → commands. */
export function TraceTimeline({ rule, onClose }: { rule: Automation; onClose(): void }) {
  const [traces, reload] = useResource<Trace[]>(
    '/api/automations/{id}/traces',
    `/api/automations/${encodeURIComponent(rule.id)}/traces?limit=20`,
  );
  return (
    <section className="card panel" aria-labelledby="traces-heading">
      <h2 id="traces-heading">Traces of {rule.name}</h2>
      <div className="button-row">
        <button type="button" onClick={reload}>
          Refresh traces
        </button>
        <button type="button" onClick={onClose}>
          Close traces
        </button>
      </div>
      {traces.state === 'loading' ? <Loading what="traces" /> : null}
      {traces.state === 'missing' ? <Empty>This hub keeps no traces.</Empty> : null}
      {traces.state === 'not-shared' ? <NotShared what="Traces are" /> : null}
      {traces.state === 'error' ? <Problem>Could not load traces: {traces.message}</Problem> : null}
      {traces.state === 'ready' && traces.data.length === 0 ? <Empty>This rule has not run yet.</Empty> : null}
      {traces.state === 'ready' ? (
        <ol className="traces">
          {traces.data.map((trace) => (
            <li key={trace.id}>
              <TraceRun trace={trace} />
            </li>
          ))}
        </ol>
      ) : null}
    </section>
  );
}

/** How long a run waited in its rule's queue: "0.4 s", "3 s", "2 min". */
function waitText(ms: number): string {
  return ms < 1000 ? `${formatNumber(Math.max(ms, 100) / 1000)} s` : formatDuration(ms / 1000);
}

/** One step of a run: when it was taken, how it went, and the commands it sent. */
function stepItem(step: TraceStep) {
  const at = toMs(step.at);
  return (
    <li
      key={`${step.path}-${String(step.at)}`}
      className={step.status === 'ok' ? 'ok' : step.status === 'error' ? 'failed' : ''}
    >
      <strong>
        {at !== null ? `${formatClock(at)} ` : ''}
        {step.action}
      </strong>{' '}
      {step.status}
      {step.detail ? ` · ${step.detail}` : ''}
      {step.error ? ` · ${step.error}` : ''}
      {step.commands?.length ? (
        <ul>
          {step.commands.map((command) => (
            <li key={command.id ?? `${command.thing}-${command.action}`}>
              {command.action} {command.thing}: {command.status}
              {command.error ? ` (${command.error})` : ''}
            </li>
          ))}
        </ul>
      ) : null}
    </li>
  );
}

export function TraceRun({ trace }: { trace: Trace }) {
  const started = toMs(trace.startedAt);
  const queued = toMs(trace.queuedAt);
  // A run that waited its turn (mode: queued): when it came in, and for how long it waited.
  const waited = queued !== null && started !== null && started > queued ? started - queued : null;
  // A long run keeps its first and last steps only (the hub's TRACE_STEPS): the gap is shown where it is.
  const omitted = trace.omittedSteps;
  const head = omitted ? trace.steps.slice(0, omitted.after) : trace.steps;
  const tail = omitted ? trace.steps.slice(omitted.after) : [];
  return (
    <details className="trace">
      <summary>
        <span className={`badge ${trace.status}`}>{trace.status.replace(/_/g, ' ')}</span> {formatTime(started)} ·{' '}
        {trace.trigger.description ?? trace.trigger.type ?? 'triggered'}
        {waited !== null && queued !== null
          ? ` · queued ${formatClock(queued)}, waited ${waitText(waited)} to start`
          : ''}
      </summary>
      <ol className="timeline">
        <li>
          <strong>Trigger</strong> {trace.trigger.description ?? trace.trigger.type}
        </li>
        {waited !== null && queued !== null && started !== null ? (
          <li>
            <strong>{formatClock(queued)} Queued</strong>{' '}
            {`behind the rule's earlier runs; waited ${waitText(waited)} for its turn, until ${formatClock(started)}`}
          </li>
        ) : null}
        {trace.conditions.map((c) => (
          <li key={c.path} className={c.result ? 'ok' : 'failed'}>
            <strong>Condition {c.path}</strong> {c.condition}: {c.result ? 'passed' : 'failed'}
            {c.detail ? ` (${c.detail})` : ''}
          </li>
        ))}
        {head.map(stepItem)}
        {omitted ? <li className="help omitted-steps">… {counted(omitted.count, 'step')} not kept …</li> : null}
        {tail.map(stepItem)}
        {trace.error ? <li className="failed">Error: {trace.error}</li> : null}
      </ol>
    </details>
  );
}
