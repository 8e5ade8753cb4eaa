import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseBuild } from '../../scripts/cli-bundle.mjs';
import { residentBytes, sleep, startProcess, tsNode } from '../lib/processes.ts';
import { progress } from '../lib/progress.ts';
import { type FigureResult, fmt, fmtRatio } from '../lib/report.ts';
import { ratio } from '../lib/stats.ts';
import { startTriad } from '../lib/triad.ts';

interface ProbeResult {
  things: number;
  fillSeconds: number;
  updates: number;
  updatesPerSecond: number;
  rss: number;
  heapUsed: number;
}

export interface ScalePoint {
  things: number;
  /** `triad start` on a store already holding the things: spawn to "is running". */
  startMs: number;
  /** Resident memory of that process once started. */
  rssBytes: number;
  /** State updates per second through the core into history, with that many things loaded. */
  updatesPerSecond: number;
  fillSeconds: number;
  /** Whether that start loaded the bundle `npm install` built (dist/) rather than the sources through tsx. */
  fromBundle: boolean;
}

/** Fills a store through an in-process hub (the probe), then starts the real process on it. */
async function measureSize(things: number, updateSeconds: number): Promise<ScalePoint> {
  const dataDir = await mkdtemp(join(tmpdir(), `triad-bench-scale-${things}-`));
  try {
    progress.show(`scale · filling a hub with ${things.toLocaleString('en-US')} things × 10 properties`);
    const { command, args } = tsNode('scale-probe.ts', [dataDir, String(things), String(updateSeconds)]);
    const probe = await startProcess({
      name: 'scale probe',
      command,
      args,
      ready: /"updatesPerSecond"/,
      timeoutMs: 900_000,
    });
    const line = probe
      .output()
      .split('\n')
      .find((l) => l.startsWith('{"things"'));
    await probe.stop();
    if (!line) throw new Error(`the scale probe printed no result:\n${probe.output().slice(-2000)}`);
    const result = JSON.parse(line) as ProbeResult;
    progress.show(`scale · starting triad with ${things.toLocaleString('en-US')} things in its store`);
    // The choice bin/triad.js makes, just before it makes it.
    const fromBundle = chooseBuild().kind === 'bundle';
    const triad = await startTriad({ dataDir });
    // Let start-up garbage be collected the way it would be in the first seconds of real life.
    await sleep(1500);
    const rssBytes = residentBytes(triad.process.pid);
    await triad.stop();
    return {
      things,
      startMs: triad.startMs,
      rssBytes,
      updatesPerSecond: result.updatesPerSecond,
      fillSeconds: result.fillSeconds,
      fromBundle,
    };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function measureScale(
  sizes: number[],
  updateSeconds: number,
): Promise<{ floor: ScalePoint; points: ScalePoint[] }> {
  // The floor: the same hub with a handful of things, so each size is read as a ratio to it.
  const floor = await measureSize(10, updateSeconds);
  const points: ScalePoint[] = [];
  for (const size of sizes) points.push(await measureSize(size, updateSeconds));
  return { floor, points };
}

const MiB = 1024 * 1024;

/** Which build the measured starts loaded: they are only comparable when it was the same one. */
function loadedFrom(points: ScalePoint[]): string {
  if (points.every((p) => p.fromBundle)) return 'Every start loaded the bundle `npm install` built (dist/).';
  if (points.every((p) => !p.fromBundle))
    return 'Every start loaded the TypeScript sources through tsx (the bundle in dist/ was missing or older than a source), about half a second slower than the bundle.';
  return 'Some starts loaded the bundle in dist/ and some the sources through tsx (a source changed during the run): compare them with care.';
}

export function scaleFigure(result: { floor: ScalePoint; points: ScalePoint[] }, setup: string): FigureResult {
  const { floor } = result;
  const all = [floor, ...result.points];
  const rows = all.map((p) => [
    p.things.toLocaleString('en-US'),
    fmt(p.rssBytes / MiB),
    p === floor ? '–' : fmt((p.rssBytes - floor.rssBytes) / (p.things - floor.things)),
    fmt(p.startMs / 1000),
    fmt(p.updatesPerSecond),
    p === floor
      ? '1× / 1× / 1×'
      : `${fmtRatio(ratio(p.rssBytes, floor.rssBytes))} / ${fmtRatio(ratio(p.startMs, floor.startMs))} / ${fmtRatio(ratio(p.updatesPerSecond, floor.updatesPerSecond))}`,
  ]);
  return {
    id: 'scale',
    title: 'Figure 4 · Scale in one process (things of ten properties each)',
    setup,
    columns: ['things', 'RSS MiB', 'bytes/thing', 'start s', 'updates/s', '÷ 10-thing hub (RSS / start / updates)'],
    rows,
    notes: [
      `Start = spawning \`triad start\` on a store that already holds the things and their latest values, until it prints "is running" (includes Node.js start-up and loading the command line, which the 10-thing hub pays too). ${loadedFrom(all)}`,
      'Updates/s = reports to random things through core.ingest (twin, bus, history) until committed, in one process.',
      'Goal (issue 9): 100,000 things in under 1 GiB, started in under 5 s.',
    ],
    raw: result,
    chart: {
      title: 'Start-up time by number of things (s), lower is better',
      unit: 'seconds to "is running"',
      groups: all.map((p) => `${p.things.toLocaleString('en-US')} things`),
      series: [{ name: 'triad start', values: all.map((p) => p.startMs / 1000) }],
    },
  };
}
