import { useEffect, useRef, useState } from 'react';
import type { HistoryPoint } from '../api/types.ts';
import { axisFormat, bandPath, niceTicks } from '../chart-scale.ts';
import { counted } from '../format.ts';
import type { ValueWords } from '../labels.ts';

const HEIGHT = 260;
const PAD = { right: 12, top: 12, bottom: 28 };
/** An axis label's width per character at the chart's 12 px type, generously. */
const CHAR_PX = 7.2;

interface LineChartProps {
  label: string;
  unit: string;
  /** What a yes/no property's values are called ("Locked", "Unlocked"), for its axis. */
  words: ValueWords;
  /** Recorded values, or buckets of them (a downsampled answer: see HistoryPoint). */
  points: HistoryPoint[];
  from: number;
  to: number;
  /** How many values the range held, when the points are buckets of them. */
  total?: number;
  /** Each bucket's span in ms, when the points are buckets. */
  bucketMs?: number;
  /** The range's last recorded value, when the points are buckets (the last bucket's mean is not it). */
  last?: HistoryPoint['value'];
}

/** A point to draw: its time, the value the line holds from then on, and, for a bucket, its extremes and last value. */
interface Drawn {
  t: number;
  v: number;
  low: number;
  high: number;
  /** A bucket of yes/no values that ends on another value than it started with. */
  end?: number;
}

const asNumber = (value: unknown): number | null =>
  typeof value === 'boolean' ? (value ? 1 : 0) : typeof value === 'number' && Number.isFinite(value) ? value : null;

function drawn(p: HistoryPoint): Drawn | null {
  const t = Date.parse(p.ts);
  if (p.count !== undefined && p.first !== undefined) {
    const v = asNumber(p.first);
    const end = asNumber(p.last);
    if (v === null) return null;
    return { t, v, low: Math.min(v, end ?? v), high: Math.max(v, end ?? v), end: end ?? undefined };
  }
  const v = asNumber(p.mean ?? p.value);
  if (v === null) return null;
  return { t, v, low: asNumber(p.min) ?? v, high: asNumber(p.max) ?? v };
}

/**
 * The chart's width in CSS pixels, followed as its box changes: drawn at that width, one unit of
 * the drawing is one pixel, so the 12 px labels stay 12 px on a phone (a fixed 640-unit drawing
 * shrank them to 7) and their width can be reckoned.
 */
function useWidth(): [React.RefObject<HTMLDivElement | null>, number] {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(640);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const measure = () => setWidth(Math.max(240, Math.round(element.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [box, width];
}

/**
 * A property's values over time as a step line: a recorded value holds until the next one, which
 * is what a device's state means (and is right for on/off as well as numbers). Buckets of numbers
 * draw their mean as the line and their min–max as a band behind it.
 */
export function LineChart({ label, unit, words, points, from, to, total, bucketMs, last: lastValue }: LineChartProps) {
  const [box, width] = useWidth();
  const values = points.map(drawn).filter((p): p is Drawn => p !== null);
  if (values.length === 0) return null;
  const boolean = points.some((p) => typeof p.value === 'boolean' || typeof p.first === 'boolean');
  const band = !boolean && points.some((p) => p.min !== undefined);
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const p of values) {
    low = Math.min(low, p.low);
    high = Math.max(high, p.high);
  }
  const spread = high > low ? high - low : Math.max(1, Math.abs(high) * 0.01);
  const scale = boolean
    ? { ticks: [0, 1], step: 1 }
    : niceTicks(high > low ? low : low - spread, high > low ? high : high + spread);
  const min = boolean ? 0 : Math.min(low, scale.ticks[0]);
  const max = boolean ? 1 : Math.max(high, scale.ticks[scale.ticks.length - 1]);
  const numberText = axisFormat(unit, scale.step, Math.max(Math.abs(min), Math.abs(max)));
  const tickText = (v: number) => (boolean ? words[v ? 0 : 1] : numberText(v));
  const left = 10 + Math.ceil(Math.max(...scale.ticks.map((v) => tickText(v).length)) * CHAR_PX);
  const x = (t: number) => left + ((t - from) / Math.max(1, to - from)) * (width - left - PAD.right);
  const y = (v: number) => PAD.top + (1 - (v - min) / (max - min)) * (HEIGHT - PAD.top - PAD.bottom);
  const end = x(Math.min(to, Date.now())).toFixed(1);
  let path = '';
  values.forEach((p, i) => {
    const px = x(Math.max(from, p.t)).toFixed(1);
    path += i === 0 ? `M${px},${y(p.v).toFixed(1)}` : `H${px}V${y(p.v).toFixed(1)}`;
    // A bucket of yes/no values that changed: its last value from its middle on.
    if (p.end !== undefined && p.end !== p.v && bucketMs) {
      path += `H${x(Math.min(to, p.t + bucketMs / 2)).toFixed(1)}V${y(p.end).toFixed(1)}`;
    }
  });
  path += `H${end}`;
  // The band: along each bucket's max, then back along its min.
  let area = '';
  if (band) {
    const edges = values.map((p, i) => ({
      x0: x(Math.max(from, p.t)).toFixed(1),
      x1: i + 1 < values.length ? x(values[i + 1].t).toFixed(1) : end,
      top: y(p.high).toFixed(1),
      bottom: y(p.low).toFixed(1),
    }));
    area = bandPath(edges);
  }
  const span = to - from;
  const timeText = (t: number) =>
    new Date(t).toLocaleString(
      undefined,
      span > 2 * 86_400_000 ? { weekday: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit' },
    );
  // A narrow chart has room for the two ends of the time axis only.
  const times = width < 360 ? [from, to] : [from, (from + to) / 2, to];
  const exact = axisFormat(unit, scale.step / 10, Math.max(Math.abs(min), Math.abs(max)));
  const lastPoint = values[values.length - 1];
  const last = asNumber(lastValue) ?? lastPoint.end ?? lastPoint.v;
  const recorded = total ?? points.reduce((sum, p) => sum + (p.count ?? 1), 0);
  // A yes/no chart in counts: of the values recorded, and of the times one differed from the one before.
  const changes = points.some((p) => p.changes !== undefined)
    ? points.reduce((sum, p) => sum + (p.changes ?? 0), 0)
    : values.filter((p, i) => i > 0 && p.v !== values[i - 1].v).length;
  const summary = boolean
    ? `${label}: ${counted(recorded, 'recorded value')}${recorded > 1 ? `, ${counted(changes, 'change')}` : ''}, last ${tickText(last)}`
    : `${label}: ${counted(recorded, 'recorded value')} from ${exact(low)} to ${exact(high)}, last ${exact(last)}`;

  return (
    <div ref={box}>
      <svg
        className="chart"
        viewBox={`0 0 ${width} ${HEIGHT}`}
        width={width}
        height={HEIGHT}
        role="img"
        aria-labelledby="chart-title"
        data-first={new Date(values[0].t).toISOString()}
        data-last={new Date(lastPoint.t).toISOString()}
        data-points={values.length}
      >
        <title id="chart-title">{summary}</title>
        {scale.ticks.map((v) => (
          <g key={v} className="chart-grid">
            <line x1={left} x2={width - PAD.right} y1={y(v)} y2={y(v)} />
            <text x={left - 6} y={y(v) + 4} textAnchor="end">
              {tickText(v)}
            </text>
          </g>
        ))}
        {times.map((t, i) => (
          <text
            key={t}
            className="chart-axis"
            x={x(t)}
            y={HEIGHT - 8}
            textAnchor={i === 0 ? 'start' : i === times.length - 1 ? 'end' : 'middle'}
          >
            {timeText(t)}
          </text>
        ))}
        {area ? <path className="chart-band" d={area} fill="var(--accent)" fillOpacity={0.18} stroke="none" /> : null}
        <path className="chart-line" d={path} />
      </svg>
    </div>
  );
}
