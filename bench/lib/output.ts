import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.ts';
import { type FigureResult, markdownTable, textTable } from './report.ts';
import { drawChart } from './svg.ts';

export interface RunInfo {
  quick: boolean;
  startedAt: string;
  wallSeconds: number;
  command: string;
  /** The 1-minute load average when the run began: above the core count, other work shared the machine. */
  loadAtStart: number;
}

/** Cores and CPU model, as a run's header and the run log give them. */
export function machineLine(): string {
  const m = machine();
  return `${m.cores} × ${m.cpu}`;
}

function machine() {
  const list = cpus();
  return {
    cpu: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** Writes the table to stdout and latest.json, latest.md and one SVG per figure to bench/results/. */
export async function writeResults(figures: FigureResult[], info: RunInfo): Promise<string> {
  const dir = join(ROOT, 'bench/results');
  await mkdir(dir, { recursive: true });
  const m = machine();
  const load = `load average ${info.loadAtStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`;
  const header = `Triad benchmark · ${info.quick ? 'quick run' : 'full run'} · ${info.startedAt} · ${machineLine()}, ${m.memoryGiB} GiB, Node ${m.node} · ${Math.round(info.wallSeconds)} s · ${load}`;
  process.stdout.write(`\n${header}\n\n${figures.map(textTable).join('\n\n')}\n`);
  await writeFile(
    join(dir, 'latest.json'),
    `${JSON.stringify({ ...info, machine: m, figures }, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 2)}\n`,
  );
  const md = [
    `## Performance`,
    '',
    `${header}. Reproduce with \`${info.command}\`; every ratio is against a reference measured in the same run.`,
    '',
    figures.map(markdownTable).join('\n\n'),
    '',
  ].join('\n');
  await writeFile(join(dir, 'latest.md'), md);
  for (const figure of figures)
    if (figure.chart) await writeFile(join(dir, `${figure.id}.svg`), drawChart(figure.chart));
  return dir;
}
