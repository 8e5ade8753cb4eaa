import { useEffect, useMemo, useRef, useState } from 'react';
import type { HistoryPoint } from '../api/types.ts';
import { LineChart } from '../components/LineChart.tsx';
import { Empty, Loading, Problem } from '../components/states.tsx';
import { counted, formatReading, formatTime } from '../format.ts';
import { inSentence, propertyLabels, valueWords } from '../labels.ts';
import { useLive, useSession } from '../live/context.ts';
import { localInput } from '../time.ts';

const RANGES = [
  { id: 'hour', label: 'Last hour', ms: 3_600_000 },
  { id: 'day', label: 'Last day', ms: 86_400_000 },
  { id: 'week', label: 'Last week', ms: 7 * 86_400_000 },
  { id: 'custom', label: 'Chosen dates', ms: 0 },
] as const;

type Load =
  | { state: 'idle' }
  | { state: 'loading' }
  /** `whileAway`: the hub was not there when the load was asked for or when it failed. */
  | { state: 'error'; message: string; whileAway: boolean }
  | { state: 'ready'; points: HistoryPoint[] };

export function History() {
  const { things, loaded, connection } = useLive();
  const { client } = useSession();
  const charted = useMemo(
    () =>
      [...things.values()]
        .flatMap((thing) => {
          const labels = propertyLabels(thing);
          return Object.entries(thing.properties)
            .filter(([, info]) => info.type === 'number' || info.type === 'integer' || info.type === 'boolean')
            .map(([property, info]) => ({
              key: `${thing.id}|${property}`,
              thing,
              property,
              info,
              label: labels.get(property) ?? property,
            }));
        })
        // By thing, then by what people read: the options' order follows their words.
        .sort((a, b) => a.thing.name.localeCompare(b.thing.name) || a.label.localeCompare(b.label)),
    [things],
  );
  const [choice, setChoice] = useState('');
  const [range, setRange] = useState<(typeof RANGES)[number]['id']>('day');
  const [customFrom, setCustomFrom] = useState(() => localInput(Date.now() - 86_400_000));
  const [customTo, setCustomTo] = useState(() => localInput(Date.now() + 60_000));
  const [load, setLoad] = useState<Load>({ state: 'idle' });
  // A load that failed while the hub was away is tried again once the stream is back: not one that
  // failed while it was there (a 403 or a 404 would be asked for in a loop).
  const [retry, setRetry] = useState(0);
  const connectionNow = useRef(connection);
  connectionNow.current = connection;
  const failedWhileAway = load.state === 'error' && load.whileAway;
  useEffect(() => {
    if (connection === 'live' && failedWhileAway) setRetry((n) => n + 1);
  }, [connection, failedWhileAway]);

  // Until the user picks, show what people most often look back at: a temperature or a battery.
  const selected =
    charted.find((c) => c.key === choice) ??
    charted.find((c) => /temperature|battery\.level/.test(c.property) && c.thing.kind !== 'person') ??
    charted[0];
  const span = useMemo(() => {
    if (range === 'custom') return { from: Date.parse(customFrom), to: Date.parse(customTo) };
    const now = Date.now();
    return { from: now - (RANGES.find((r) => r.id === range)?.ms ?? 86_400_000), to: now };
  }, [range, customFrom, customTo]);
  const spanProblem =
    !Number.isFinite(span.from) || !Number.isFinite(span.to)
      ? 'Choose both dates.'
      : span.from >= span.to
        ? 'The start must be before the end.'
        : null;

  const thingId = selected?.thing.id;
  const property = selected?.property;
  useEffect(() => {
    if (!thingId || !property || spanProblem) return;
    void retry; // read so that a retry runs this effect again
    let current = true;
    const askedWhileAway = connectionNow.current !== 'live';
    setLoad({ state: 'loading' });
    const query = new URLSearchParams({
      property,
      from: new Date(span.from).toISOString(),
      to: new Date(span.to).toISOString(),
    });
    client
      .get<{ points: HistoryPoint[] }>(`/api/things/${encodeURIComponent(thingId)}/history?${query}`)
      .then((body) => current && setLoad({ state: 'ready', points: body.points }))
      .catch(
        (error: unknown) =>
          current &&
          setLoad({
            state: 'error',
            message: error instanceof Error ? error.message : String(error),
            whileAway: askedWhileAway || connectionNow.current !== 'live',
          }),
      );
    return () => {
      current = false;
    };
  }, [client, thingId, property, span, spanProblem, retry]);

  if (!loaded) return <Loading what="properties" />;
  if (!selected) return <Empty>Nothing has been recorded yet.</Empty>;
  const label = `${selected.thing.name} ${inSentence(selected.label)}`;

  return (
    <div className="view">
      <h1>History</h1>
      <form className="history-form" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="history-property">Property</label>
          <select id="history-property" value={selected.key} onChange={(e) => setChoice(e.currentTarget.value)}>
            {charted.map((c) => (
              <option key={c.key} value={c.key}>
                {c.thing.name} · {c.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="history-range">Range</label>
          <select id="history-range" value={range} onChange={(e) => setRange(e.currentTarget.value as typeof range)}>
            {RANGES.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        {range === 'custom' ? (
          <>
            <div className="field">
              <label htmlFor="history-from">From</label>
              <input
                id="history-from"
                type="datetime-local"
                value={customFrom}
                onChange={(e) => setCustomFrom(e.currentTarget.value)}
              />
            </div>
            <div className="field">
              <label htmlFor="history-to">To</label>
              <input
                id="history-to"
                type="datetime-local"
                value={customTo}
                onChange={(e) => setCustomTo(e.currentTarget.value)}
              />
            </div>
          </>
        ) : null}
      </form>
      <section className="card" aria-labelledby="chart-heading">
        <h2 id="chart-heading">{label}</h2>
        {spanProblem ? <Problem>{spanProblem}</Problem> : null}
        {spanProblem ? null : (
          <>
            {load.state === 'loading' ? <Loading what="history" /> : null}
            {load.state === 'error' ? <Problem>Could not load the history: {load.message}</Problem> : null}
            {load.state === 'ready' && load.points.length === 0 ? (
              <Empty>No values recorded in this range.</Empty>
            ) : null}
          </>
        )}
        {!spanProblem && load.state === 'ready' && load.points.length > 0 ? (
          <>
            <LineChart
              label={label}
              unit={selected.info.unit ?? ''}
              words={valueWords(selected.property)}
              points={load.points}
              from={span.from}
              to={span.to}
            />
            <p className="summary">
              {counted(load.points.length, 'value')} · last{' '}
              {formatReading(selected.property, load.points[load.points.length - 1].value, selected.info)} at{' '}
              {formatTime(load.points[load.points.length - 1].ts)}
            </p>
          </>
        ) : null}
      </section>
    </div>
  );
}
