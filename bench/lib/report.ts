import type { Verdict } from './run-log.ts';

/** One figure's outcome: a table for people, raw numbers for machines, a chart for the README. */
export interface FigureResult {
  id: string;
  title: string;
  /** What was run, so a reader can tell a quick run from a full one. */
  setup: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  notes: string[];
  /** The raw measurements behind the table, for bench/results/latest.json. */
  raw: unknown;
  chart?: ChartSpec;
}

/** What a figure's chart shows: bars of values, or the goals' verdicts run by run. */
export type ChartSpec = BarChartSpec | VerdictChartSpec;

export interface BarChartSpec {
  kind?: 'bars';
  title: string;
  /** Unit of the values, shown on the axis. */
  unit: string;
  /** Groups along the x axis (e.g. rates), each with one bar per series. */
  groups: string[];
  series: Array<{ name: string; values: Array<number | null> }>;
  /** Draw the value axis logarithmically, for figures that span orders of magnitude. */
  log?: boolean;
}

/**
 * Each goal's verdict in each logged run, oldest run first: how a goal fares from run to run, and
 * from build to build, on a shared machine where one run decides nothing.
 */
export interface VerdictChartSpec {
  kind: 'verdicts';
  title: string;
  goals: string[];
  /** Each run's verdict of each goal, in the order of `goals`; null where the run did not judge it. */
  runs: Array<{ label: string; build: string | null; verdicts: Array<Verdict | null> }>;
}

/** A number rounded for reading: three significant figures, thousands kept whole. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs === 0) return '0';
  return Number(value.toPrecision(digits)).toString();
}

export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${fmt(value)}×` : '–';
}

function widths(figure: FigureResult): number[] {
  return figure.columns.map((c, i) => Math.max(c.length, ...figure.rows.map((r) => String(r[i] ?? '').length)));
}

export function textTable(figure: FigureResult): string {
  const w = widths(figure);
  const line = (cells: Array<string | number>) => cells.map((c, i) => String(c ?? '').padEnd(w[i])).join('  ');
  const out = [`${figure.title}`, `  (${figure.setup})`, line(figure.columns), w.map((n) => '-'.repeat(n)).join('  ')];
  for (const row of figure.rows) out.push(line(row));
  for (const note of figure.notes) out.push(`  * ${note}`);
  return out.join('\n');
}

export function markdownTable(figure: FigureResult): string {
  const esc = (c: string | number) => String(c ?? '').replace(/\|/g, '\\|');
  const out = [`### ${figure.title}`, '', `_${figure.setup}_`, ''];
  out.push(`| ${figure.columns.map(esc).join(' | ')} |`);
  out.push(`|${figure.columns.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const row of figure.rows) out.push(`| ${row.map(esc).join(' | ')} |`);
  if (figure.notes.length) out.push('', ...figure.notes.map((n) => `- ${n}`));
  if (figure.chart) out.push('', `![${figure.chart.title}](bench/results/${figure.id}.svg)`);
  return out.join('\n');
}
