import { formatNumber } from './format.ts';

/** Round steps (1, 2, 2.5 or 5 times a power of ten) from min to max, at most `count` of them and mostly 3 or more. */
export function niceTicks(min: number, max: number, count = 5): { ticks: number[]; step: number } {
  const rough = (max - min) / Math.max(1, count - 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  // Each from its index, not by adding steps up: the sum's rounding errors would show in labels.
  for (let i = first; i * step <= max + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/**
 * How the axis writes a value: with as many decimals as its step needs (three latitude ticks no
 * longer all read "52.1"), and distances of a kilometre and more in km, as the dashboard writes
 * them elsewhere.
 */
export function axisFormat(unit: string, step: number, largest: number): (v: number) => string {
  const kilometres = unit === 'm' && Math.abs(largest) >= 1000;
  const scale = kilometres ? 1000 : 1;
  const shown = kilometres ? 'km' : unit === 'deg' ? '°' : unit;
  // The step's own decimals (2.5 has one, 0.25 two): a power of ten's would show 22.5 as "23".
  const unitStep = step / scale;
  let digits = 0;
  while (digits < 6 && Math.abs(unitStep * 10 ** digits - Math.round(unitStep * 10 ** digits)) > 1e-6) digits++;
  const gap = shown === '°' ? '' : ' ';
  return (v) => `${formatNumber(v / scale, digits)}${shown ? `${gap}${shown}` : ''}`;
}

/** One bucket's stretch of a min–max band, in the chart's coordinates (SVG numbers as text). */
export interface BandEdge {
  x0: string;
  x1: string;
  top: string;
  bottom: string;
}

/**
 * The SVG path of a min–max band: along each bucket's top from its start to the next bucket's,
 * then back along the bottoms, closed. Each bucket after the first starts where the one before
 * ended, so only the climb to its own top is drawn there: a stray x in that `V` read as a y once
 * (`V656.6172.0` is `V656.6172 V.0`) and filled every band up to the chart's top edge.
 */
export function bandPath(edges: BandEdge[]): string {
  if (edges.length === 0) return '';
  let path = '';
  edges.forEach((e, i) => {
    path += i === 0 ? `M${e.x0},${e.top}` : `V${e.top}`;
    path += `H${e.x1}`;
  });
  for (let i = edges.length - 1; i >= 0; i--) path += `V${edges[i].bottom}H${edges[i].x0}`;
  return `${path}Z`;
}
