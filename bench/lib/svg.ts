import type { BarChartSpec, ChartSpec, VerdictChartSpec } from './report.ts';
import { fmt } from './report.ts';

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#9c755f', '#edc948'];

const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** "Nice" tick values (1, 2, 5 × 10^n) covering 0..max. */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? power * 10;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(v);
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks;
}

/**
 * A grouped bar chart as a standalone SVG: one group per x label, one bar per series, value
 * axis with ticks, a legend, and each bar labelled with its value so the chart reads without
 * the table. Missing values are drawn as a labelled gap ("n/m"), never as zero.
 */
export function barChart(spec: BarChartSpec): string {
  const width = 860;
  const height = 420;
  const margin = { top: 48, right: 20, bottom: 64 + 18 * Math.ceil(spec.series.length / 3), left: 78 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const values = spec.series
    .flatMap((s) => s.values)
    .filter((v): v is number => v !== null && Number.isFinite(v) && v > 0);
  const max = values.length ? Math.max(...values) : 1;
  const min = values.length ? Math.min(...values) : 1;
  const useLog = Boolean(spec.log) && values.length > 0;
  const ticks = useLog ? logTicks(min, max) : linearTicks(max);
  const top = ticks[ticks.length - 1];
  const bottom = useLog ? ticks[0] : 0;
  const y = (v: number) => {
    const t = useLog
      ? (Math.log10(v) - Math.log10(bottom)) / (Math.log10(top) - Math.log10(bottom))
      : (v - bottom) / (top - bottom);
    return margin.top + plotH - Math.max(0, Math.min(1, t)) * plotH;
  };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${xml(spec.title)}</text>`,
  );
  for (const tick of ticks) {
    const ty = y(tick);
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${ty}" y2="${ty}" stroke="#e3e3e3"/>`,
      `<text x="${margin.left - 6}" y="${ty + 4}" text-anchor="end" fill="#444">${xml(fmt(tick))}</text>`,
    );
  }
  parts.push(
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<line x1="${margin.left}" x2="${width - margin.right}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="#333"/>`,
    `<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">${xml(spec.unit)}${useLog ? ' (log scale)' : ''}</text>`,
  );
  const groupW = plotW / Math.max(1, spec.groups.length);
  const barW = Math.min(48, (groupW * 0.8) / Math.max(1, spec.series.length));
  spec.groups.forEach((group, g) => {
    const gx = margin.left + g * groupW + (groupW - barW * spec.series.length) / 2;
    parts.push(
      `<text x="${margin.left + g * groupW + groupW / 2}" y="${margin.top + plotH + 18}" text-anchor="middle" fill="#222">${xml(group)}</text>`,
    );
    spec.series.forEach((series, s) => {
      const value = series.values[g];
      const x = gx + s * barW;
      if (value === null || value === undefined || !Number.isFinite(value) || (useLog && value <= 0)) {
        parts.push(
          `<text x="${x + barW / 2}" y="${margin.top + plotH - 4}" text-anchor="middle" fill="#999" font-size="10">n/m</text>`,
        );
        return;
      }
      const by = y(value);
      parts.push(
        `<rect x="${x + 1}" y="${by}" width="${barW - 2}" height="${Math.max(0.5, margin.top + plotH - by)}" fill="${PALETTE[s % PALETTE.length]}"><title>${xml(`${series.name} · ${group}: ${fmt(value)} ${spec.unit}`)}</title></rect>`,
        `<text x="${x + barW / 2}" y="${by - 4}" text-anchor="middle" fill="#333" font-size="10">${xml(fmt(value))}</text>`,
      );
    });
  });
  spec.series.forEach((series, s) => {
    const lx = margin.left + (s % 3) * (plotW / 3);
    const ly = margin.top + plotH + 40 + Math.floor(s / 3) * 18;
    parts.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${PALETTE[s % PALETTE.length]}"/>`,
      `<text x="${lx + 18}" y="${ly}" fill="#222">${xml(series.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export function drawChart(spec: ChartSpec): string {
  return spec.kind === 'verdicts' ? verdictChart(spec) : barChart(spec);
}

const VERDICT_FILL = { met: '#59a14f', 'not met': '#e15759', undecided: '#c9c9c9' } as const;

/**
 * A grid of verdicts as a standalone SVG: a row per goal, a column per run (oldest left), each
 * cell coloured by the run's verdict and titled with it; a line between runs of different builds,
 * and each build's short id under its first run. A goal a run did not judge is left blank.
 */
export function verdictChart(spec: VerdictChartSpec): string {
  // Room for the longest goal at ~6.6 px a character of 12 px text.
  const labelW = Math.max(160, Math.ceil(Math.max(0, ...spec.goals.map((g) => g.length)) * 6.6) + 24);
  const cell = 26;
  const gap = 3;
  const top = 84;
  const columns = Math.max(1, spec.runs.length);
  const width = Math.max(labelW + 380, labelW + columns * (cell + gap) + 40);
  const gridBottom = top + spec.goals.length * (cell + gap);
  const height = gridBottom + 90;
  const x = (run: number) => labelW + run * (cell + gap);
  const y = (goal: number) => top + goal * (cell + gap);
  const short = (build: string | null) => build?.slice(0, 7) ?? '?';
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${xml(spec.title)}</text>`,
    `<text x="${labelW}" y="${top - 10}" fill="#444">runs, oldest first →, builds apart</text>`,
  ];
  (['met', 'not met', 'undecided'] as const).forEach((verdict, i) => {
    const lx = labelW + i * 110;
    parts.push(
      `<rect x="${lx}" y="40" width="12" height="12" rx="2" fill="${VERDICT_FILL[verdict]}"/>`,
      `<text x="${lx + 18}" y="50" fill="#222">${verdict}</text>`,
    );
  });
  spec.goals.forEach((goal, g) => {
    parts.push(`<text x="${labelW - 10}" y="${y(g) + cell / 2 + 4}" text-anchor="end" fill="#222">${xml(goal)}</text>`);
  });
  spec.runs.forEach((run, r) => {
    // A build git could not name is never taken for the one before it.
    const newBuild = r === 0 || run.build === null || spec.runs[r - 1].build !== run.build;
    if (newBuild) {
      if (r > 0)
        parts.push(
          `<line x1="${x(r) - gap / 2}" x2="${x(r) - gap / 2}" y1="${top - 4}" y2="${gridBottom + 4}" stroke="#333" stroke-width="1.5"/>`,
        );
      parts.push(
        `<text transform="translate(${x(r) + cell / 2 - 3} ${gridBottom + 8}) rotate(60)" fill="#444" font-size="10"><title>${xml(`build ${run.build ?? 'unknown'}`)}</title>${xml(short(run.build))}</text>`,
      );
    }
    run.verdicts.forEach((verdict, g) => {
      if (verdict === null) return;
      parts.push(
        `<rect x="${x(r)}" y="${y(g)}" width="${cell}" height="${cell}" rx="3" fill="${VERDICT_FILL[verdict]}"><title>${xml(`${run.label} · ${spec.goals[g]}: ${verdict}`)}</title></rect>`,
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
