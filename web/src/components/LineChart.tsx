import { useEffect, useRef, useState } from 'react';
import type { HistoryPoint } from '../api/types.ts';
import { axisFormat, niceTicks } from '../chart-scale.ts';
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
  points: HistoryPoint[];
  from: number;
  to: number;
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
 * is what a device's state means (and is right for on/off as well as numbers).
 */
export function LineChart({ label, unit, words, points, from, to }: LineChartProps) {
  const [box, width] = useWidth();
  const values = points
    .map((p) => ({ t: Date.parse(p.ts), v: typeof p.value === 'boolean' ? (p.value ? 1 : 0) : p.value }))
    .filter((p): p is { t: number; v: number } => typeof p.v === 'number' && Number.isFinite(p.v));
  if (values.length === 0) return null;
  const boolean = points.some((p) => typeof p.value === 'boolean');
  const low = Math.min(...values.map((p) => p.v));
  const high = Math.max(...values.map((p) => p.v));
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
  let path = '';
  values.forEach((p, i) => {
    const px = x(Math.max(from, p.t)).toFixed(1);
    path += i === 0 ? `M${px},${y(p.v).toFixed(1)}` : `H${px}V${y(p.v).toFixed(1)}`;
  });
  path += `H${x(Math.min(to, Date.now())).toFixed(1)}`;
  const span = to - from;
  const timeText = (t: number) =>
    new Date(t).toLocaleString(
      undefined,
      span > 2 * 86_400_000 ? { weekday: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit' },
    );
  // A narrow chart has room for the two ends of the time axis only.
  const times = width < 360 ? [from, to] : [from, (from + to) / 2, to];
  const exact = axisFormat(unit, scale.step / 10, Math.max(Math.abs(min), Math.abs(max)));
  const last = values[values.length - 1].v;
  // A yes/no chart in counts: of the values recorded, and of the times one differed from the one before.
  const changes = values.filter((p, i) => i > 0 && p.v !== values[i - 1].v).length;
  const summary = boolean
    ? `${label}: ${counted(values.length, 'recorded value')}${values.length > 1 ? `, ${counted(changes, 'change')}` : ''}, last ${tickText(last)}`
    : `${label} from ${exact(low)} to ${exact(high)}, last ${exact(last)}`;

  return (
    <div ref={box}>
      <svg
        className="chart"
        viewBox={`0 0 ${width} ${HEIGHT}`}
        width={width}
        height={HEIGHT}
        role="img"
        aria-labelledby="chart-title"
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
        <path className="chart-line" d={path} />
      </svg>
    </div>
  );
}
