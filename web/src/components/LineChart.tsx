import type { HistoryPoint } from '../api/types.ts';
import { formatNumber } from '../format.ts';

const WIDTH = 640;
const HEIGHT = 260;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

interface LineChartProps {
  label: string;
  unit: string;
  points: HistoryPoint[];
  from: number;
  to: number;
}

/**
 * A property's values over time as a step line: a recorded value holds until the next one, which
 * is what a device's state means (and is right for on/off as well as numbers).
 */
export function LineChart({ label, unit, points, from, to }: LineChartProps) {
  const values = points
    .map((p) => ({ t: Date.parse(p.ts), v: typeof p.value === 'boolean' ? (p.value ? 1 : 0) : p.value }))
    .filter((p): p is { t: number; v: number } => typeof p.v === 'number' && Number.isFinite(p.v));
  if (values.length === 0) return null;
  const boolean = points.some((p) => typeof p.value === 'boolean');
  let min = Math.min(...values.map((p) => p.v));
  let max = Math.max(...values.map((p) => p.v));
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const x = (t: number) => PAD.left + ((t - from) / Math.max(1, to - from)) * (WIDTH - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - (v - min) / (max - min)) * (HEIGHT - PAD.top - PAD.bottom);
  let path = '';
  values.forEach((p, i) => {
    const px = x(Math.max(from, p.t)).toFixed(1);
    path += i === 0 ? `M${px},${y(p.v).toFixed(1)}` : `H${px}V${y(p.v).toFixed(1)}`;
  });
  path += `H${x(Math.min(to, Date.now())).toFixed(1)}`;
  const ticks = boolean ? [0, 1] : [min, (min + max) / 2, max];
  const tickText = (v: number) => (boolean ? (v ? 'On' : 'Off') : `${formatNumber(v)}${unit ? ` ${unit}` : ''}`);
  const span = to - from;
  const timeText = (t: number) =>
    new Date(t).toLocaleString(
      undefined,
      span > 2 * 86_400_000 ? { weekday: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit' },
    );
  const summary = boolean
    ? `${label}: ${values.length} changes`
    : `${label} from ${tickText(Math.min(...values.map((p) => p.v)))} to ${tickText(Math.max(...values.map((p) => p.v)))}, last ${tickText(values[values.length - 1].v)}`;

  return (
    <svg className="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="chart-title">
      <title id="chart-title">{summary}</title>
      {ticks.map((v) => (
        <g key={v} className="chart-grid">
          <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(v)} y2={y(v)} />
          <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end">
            {tickText(v)}
          </text>
        </g>
      ))}
      {[from, (from + to) / 2, to].map((t, i) => (
        <text
          key={t}
          className="chart-axis"
          x={x(t)}
          y={HEIGHT - 8}
          textAnchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}
        >
          {timeText(t)}
        </text>
      ))}
      <path className="chart-line" d={path} />
    </svg>
  );
}
