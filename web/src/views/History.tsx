import { useEffect, useMemo, useRef, useState } from 'react';
import type { DownsampledHistory, HistoryPoint, PropertyInfo, Thing } from '../api/types.ts';
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
type RangeId = (typeof RANGES)[number]['id'];

const isRange = (id: string | null | undefined): id is RangeId => RANGES.some((r) => r.id === id);

/** A property the view can chart: `key` is `<thing id>|<property>`. */
interface Charted {
  key: string;
  thing: Thing;
  property: string;
  info: PropertyInfo;
  label: string;
}

/** What the user last looked at: a property (its key) and a range, either of which may be unknown. */
interface Choice {
  key: string | null;
  range: RangeId | null;
}

const REMEMBERED = 'triad.history';

/** The choice in the address (`#/history?thing=…&property=…&range=…`), which a link or bookmark carries. */
function choiceInAddress(): Partial<Choice> {
  const query = location.hash.split('?')[1];
  if (!query) return {};
  const params = new URLSearchParams(query);
  const thing = params.get('thing');
  const property = params.get('property');
  const range = params.get('range');
  return { key: thing && property ? `${thing}|${property}` : undefined, range: isRange(range) ? range : undefined };
}

/** The choice kept in this browser the last time the user changed it. */
function choiceKept(): Partial<Choice> {
  try {
    const kept = JSON.parse(localStorage.getItem(REMEMBERED) ?? '{}') as Record<string, unknown>;
    return {
      key: typeof kept.key === 'string' ? kept.key : undefined,
      range: typeof kept.range === 'string' && isRange(kept.range) ? kept.range : undefined,
    };
  } catch {
    return {};
  }
}

/** The address first (it is what was asked for), else what this browser kept. */
function rememberedChoice(): Choice {
  const address = choiceInAddress();
  const kept = choiceKept();
  return { key: address.key ?? kept.key ?? null, range: address.range ?? kept.range ?? null };
}

/** Keeps the choice for the next visit and puts it in the address. */
function rememberChoice(choice: Choice): void {
  try {
    localStorage.setItem(REMEMBERED, JSON.stringify(choice));
  } catch {
    // Storage full or refused (a private window): the address still carries the choice.
  }
  showInAddress(choice);
}

/** The choice in the address, in place of the one there (no new entry in the browser's history). */
function showInAddress(choice: Choice): void {
  const params = new URLSearchParams();
  const bar = choice.key?.indexOf('|') ?? -1;
  if (choice.key && bar > 0) {
    params.set('thing', choice.key.slice(0, bar));
    params.set('property', choice.key.slice(bar + 1));
  }
  if (choice.range) params.set('range', choice.range);
  const query = params.toString();
  window.history.replaceState(window.history.state, '', `#/history${query ? `?${query}` : ''}`);
}

/** How far back, and how many recorded values at most, the view reads to find the busiest property. */
const BUSY_SPAN_MS = 86_400_000;
const BUSY_SAMPLE = 5000;

/** Parts of a position: numbers that change as a car drives, but are read on a map, not a chart. */
const NOT_A_FIRST_CHART = new Set(['location.latitude', 'location.longitude', 'location.heading', 'location.accuracy']);

const isNumber = (c: Charted) => c.info.type === 'number' || c.info.type === 'integer';
const isTemperature = (c: Charted) => c.property.includes('temperature') && c.thing.kind !== 'person';

/**
 * What the view opens on when the user has not chosen: the number recorded most often in the last
 * day (a chart with something in it), a temperature among equals; one value is as flat as none.
 */
function firstChart(charted: Charted[], recent: Map<string, Recent> | undefined): Charted | undefined {
  const score = (c: Charted) => {
    const count = recent?.get(c.key)?.count ?? 0;
    return count > 1 ? count : 0;
  };
  const candidates = charted.filter((c) => isNumber(c) && !NOT_A_FIRST_CHART.has(c.property));
  // A stable sort: among equals the selector's own order stands.
  const ranked = [...candidates].sort(
    (a, b) => score(b) - score(a) || Number(isTemperature(b)) - Number(isTemperature(a)),
  );
  return ranked[0] ?? charted[0];
}

/** What a property recorded in the last day: how many values, and when the first of them was. */
interface Recent {
  count: number;
  first: number;
}

/**
 * How many values each property recorded in the last day, from one page of the household's state
 * changes (every recorded value is one); `loading` until they are read, null if they could not be.
 */
function useRecent(wanted: boolean): Map<string, Recent> | null | 'loading' {
  const { client } = useSession();
  const [recent, setRecent] = useState<Map<string, Recent> | null | 'loading'>('loading');
  useEffect(() => {
    if (!wanted) return;
    let current = true;
    const query = new URLSearchParams({
      type: 'state',
      since: new Date(Date.now() - BUSY_SPAN_MS).toISOString(),
      limit: String(BUSY_SAMPLE),
    });
    client.get<Array<{ thing?: string; property?: string; ts?: string }>>(`/api/events?${query}`).then(
      (events) => {
        const out = new Map<string, Recent>();
        for (const e of events) {
          if (!e.thing || !e.property) continue;
          const key = `${e.thing}|${e.property}`;
          const seen = out.get(key);
          // Oldest first: the first event of a property is its first value of the day.
          if (seen) seen.count += 1;
          else out.set(key, { count: 1, first: Date.parse(e.ts ?? '') });
        }
        if (current) setRecent(out);
      },
      () => current && setRecent(null),
    );
    return () => {
      current = false;
    };
  }, [client, wanted]);
  return recent;
}

/**
 * The range the view opens on when the user has not chosen one: the last day, or the last hour when
 * the property it opens on recorded nothing older than that (on a hub just started, say), so its
 * values are not squeezed into the day's last few pixels.
 */
function firstRange(recent: Recent | undefined): RangeId {
  return recent && recent.count > 1 && recent.first > Date.now() - RANGES[0].ms ? 'hour' : 'day';
}

type Load =
  | { state: 'idle' }
  | { state: 'loading' }
  /** `whileAway`: the hub was not there when the load was asked for or when it failed. */
  | { state: 'error'; message: string; whileAway: boolean }
  /**
   * `points` are buckets of the range (the hub downsamples it to about the chart's width);
   * `total` is how many values the range held, `last` the last of them.
   */
  | { state: 'ready'; points: HistoryPoint[]; total: number; last: HistoryPoint | null; bucketMs: number };

/** The most points one history query may be downsampled to (the hub's limit). */
const MAX_POINTS = 5000;

export function History() {
  const { things, loaded, connection } = useLive();
  const { client } = useSession();
  const charted = useMemo(
    (): Charted[] =>
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
  // What the user chose, here or on an earlier visit; until then the view picks (see firstChart).
  const [remembered] = useState(rememberedChoice);
  const [choice, setChoice] = useState(remembered.key ?? '');
  const [rangeChoice, setRange] = useState<RangeId | null>(remembered.range);
  // Back at the view from its link (`#/history`), the address says what it shows again.
  useEffect(() => {
    if (remembered.key || remembered.range) showInAddress(remembered);
  }, [remembered]);
  const [customFrom, setCustomFrom] = useState(() => localInput(Date.now() - 86_400_000));
  const [customTo, setCustomTo] = useState(() => localInput(Date.now() + 60_000));
  const [load, setLoad] = useState<Load>({ state: 'idle' });
  // The chart's box: the history is asked for in about one point per pixel of its width.
  const card = useRef<HTMLElement>(null);
  // A load that failed while the hub was away is tried again once the stream is back: not one that
  // failed while it was there (a 403 or a 404 would be asked for in a loop).
  const [retry, setRetry] = useState(0);
  const connectionNow = useRef(connection);
  connectionNow.current = connection;
  const failedWhileAway = load.state === 'error' && load.whileAway;
  useEffect(() => {
    if (connection === 'live' && failedWhileAway) setRetry((n) => n + 1);
  }, [connection, failedWhileAway]);

  const chosen = charted.find((c) => c.key === choice);
  const recent = useRecent(loaded && !chosen);
  const picked = recent === 'loading' ? undefined : firstChart(charted, recent ?? undefined);
  const selected = chosen ?? picked;
  // The range follows what the view opened on, not a property the user chose.
  const range =
    rangeChoice ?? (chosen || recent === 'loading' || !picked ? 'day' : firstRange(recent?.get(picked.key)));
  const choose = (next: Partial<Choice>) => {
    // The range shown is kept with the property, chosen or not: it does not change under the user.
    const kept = { key: choice || null, range, ...next };
    if (next.key !== undefined) setChoice(next.key ?? '');
    setRange(kept.range);
    rememberChoice(kept);
  };
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
    const width = card.current?.clientWidth || 640;
    const query = new URLSearchParams({
      property,
      from: new Date(span.from).toISOString(),
      to: new Date(span.to).toISOString(),
      points: String(Math.min(MAX_POINTS, Math.max(2, Math.round(width)))),
    });
    client
      .get<DownsampledHistory>(`/api/things/${encodeURIComponent(thingId)}/history?${query}`)
      .then(
        (body) =>
          current &&
          setLoad({
            state: 'ready',
            points: body.points,
            total: body.downsampled.count,
            last: body.downsampled.last,
            bucketMs: body.downsampled.bucketMs,
          }),
      )
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
  if (!selected && charted.length > 0) return <Loading what="history" />;
  if (!selected) return <Empty>Nothing has been recorded yet.</Empty>;
  const label = `${selected.thing.name} ${inSentence(selected.label)}`;

  return (
    <div className="view">
      <h1>History</h1>
      <form className="history-form" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="history-property">Property</label>
          <select id="history-property" value={selected.key} onChange={(e) => choose({ key: e.currentTarget.value })}>
            {charted.map((c) => (
              <option key={c.key} value={c.key}>
                {c.thing.name} · {c.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="history-range">Range</label>
          <select
            id="history-range"
            value={range}
            onChange={(e) => {
              const next = e.currentTarget.value;
              if (isRange(next)) choose({ range: next });
            }}
          >
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
      <section className="card" aria-labelledby="chart-heading" ref={card}>
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
              total={load.total}
              bucketMs={load.bucketMs}
              last={load.last?.value}
            />
            <p className="summary">
              {counted(load.total, 'value')}
              {load.last ? (
                <>
                  {' '}
                  · last {formatReading(selected.property, load.last.value, selected.info)} at{' '}
                  {formatTime(load.last.ts)}
                </>
              ) : null}
            </p>
          </>
        ) : null}
      </section>
    </div>
  );
}
