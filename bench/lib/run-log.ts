import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a run says of one goal (the goals table's verdicts: bench/figures/goals.ts). */
export type Verdict = 'met' | 'not met' | 'undecided';

/**
 * One run's verdicts as the run log keeps them (bench/results/runs.json). One full run decides
 * nothing on a shared machine, where the same build's p50 ratio at 5,000/s moved from 1.06× to 1.4×
 * between two runs an hour apart: the log lets each verdict be read against the runs of the same
 * build before it.
 */
export interface LoggedRun {
  startedAt: string;
  mode: 'full' | 'quick';
  /** The build measured (see buildId); null where git could not tell. */
  build: string | null;
  /** Cores and CPU model, as the run's header gives them. */
  machine: string;
  /**
   * The benchmark's own code that measured it (see harnessId); absent in runs logged before it was
   * kept. Runs are counted by build alone, and the goals table says when they span several.
   */
  harness?: string | null;
  goals: Array<{ goal: string; verdict: Verdict }>;
}

/** Runs of each mode the log keeps: a few builds' worth, so a day of quick runs never pushes out the full ones. */
export const RUN_LOG_KEEP = 40;

/** What a build is made of: the hub's sources, its command line and its locked dependencies. */
const BUILD_PATHS = ['src', 'bin', 'package-lock.json'];
/** What the benchmark is made of: its code and the scripts that build the bundle it starts, not its results. */
const HARNESS_PATHS = ['bench', 'scripts', ':(exclude)bench/results'];

/**
 * The build a run measured, named by git's id of BUILD_PATHS as they are in the working copy,
 * committed or not: the same files give the same id, whatever commit they sit in, and a change
 * not yet committed gets an id of its own. The benchmark's own code is not part of it (see
 * harnessId): most of its changes (this log, the charts, the tables) leave the figures alone.
 * Null where git cannot tell (no git, not a clone, none of the files).
 */
export function buildId(root: string): string | null {
  return treeId(root, BUILD_PATHS);
}

/** The benchmark's own code as it is in the working copy, named as buildId names a build. */
export function harnessId(root: string): string | null {
  return treeId(root, HARNESS_PATHS);
}

/**
 * git's tree id of `paths` as they are in the working copy, made with an index of its own
 * (`GIT_INDEX_FILE`), so the repository's index is left alone; the files' contents are stored as
 * git objects, as `git add` would.
 */
function treeId(root: string, paths: string[]): string | null {
  const present = paths.filter((path) => path.startsWith(':') || existsSync(join(root, path)));
  // With no path at all, `git add -A` would take the whole repository.
  if (!present.some((path) => !path.startsWith(':'))) return null;
  const index = join(tmpdir(), `triad-bench-index-${process.pid}-${Date.now()}`);
  const git = (...args: string[]) =>
    spawnSync('git', args, { cwd: root, encoding: 'utf8', env: { ...process.env, GIT_INDEX_FILE: index } });
  try {
    if (git('read-tree', '--empty').status !== 0) return null;
    if (git('add', '-A', '--', ...present).status !== 0) return null;
    const tree = git('write-tree');
    return tree.status === 0 ? tree.stdout.trim().slice(0, 12) : null;
  } finally {
    rmSync(index, { force: true });
  }
}

const VERDICTS = new Set<Verdict>(['met', 'not met', 'undecided']);

function isLoggedRun(x: unknown): x is LoggedRun {
  const run = x as LoggedRun;
  return (
    typeof run === 'object' &&
    run !== null &&
    typeof run.startedAt === 'string' &&
    (run.mode === 'full' || run.mode === 'quick') &&
    (run.build === null || typeof run.build === 'string') &&
    (run.harness === undefined || run.harness === null || typeof run.harness === 'string') &&
    typeof run.machine === 'string' &&
    Array.isArray(run.goals) &&
    run.goals.every((g) => typeof g?.goal === 'string' && VERDICTS.has(g.verdict))
  );
}

/**
 * The log as stored: an absent file is an empty log; a file that is not a log (edited by hand, cut
 * short) is an error, so a run does not silently overwrite what it could not read.
 */
export async function readRunLog(file: string): Promise<LoggedRun[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not JSON (${(error as Error).message}); move it aside to start a new log`);
  }
  const runs = (parsed as { runs?: unknown })?.runs;
  if (!Array.isArray(runs)) throw new Error(`${file} holds no "runs" list; move it aside to start a new log`);
  const bad = runs.findIndex((run) => !isLoggedRun(run));
  if (bad >= 0) throw new Error(`${file}: run ${bad + 1} is not a logged run; move the file aside to start a new log`);
  return runs;
}

/** Writes the log whole, through a file beside it: cut short, a log would stop every later run. */
export async function writeRunLog(file: string, runs: LoggedRun[]): Promise<void> {
  const next = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(next, `${JSON.stringify({ runs }, null, 1)}\n`);
    await rename(next, file);
  } finally {
    await rm(next, { force: true });
  }
}

/** The log with `run` added last, the oldest runs of its mode dropped past `keep`. */
export function withRun(runs: LoggedRun[], run: LoggedRun, keep = RUN_LOG_KEEP): LoggedRun[] {
  const all = [...runs, run];
  const excess = all.filter((r) => r.mode === run.mode).length - keep;
  if (excess <= 0) return all;
  let dropped = 0;
  return all.filter((r) => r.mode !== run.mode || ++dropped > excess);
}

/** How one goal fared in the logged runs of one build and mode: met in `met` of the `judged` runs that could tell. */
export interface Tally {
  met: number;
  judged: number;
  runs: number;
  /** Versions of the benchmark's own code among those runs (an unrecorded one counts as one more). */
  harnesses: number;
}

export function tally(runs: LoggedRun[], goal: string, mode: LoggedRun['mode'], build: string | null): Tally {
  const same = build === null ? [] : runs.filter((r) => r.mode === mode && r.build === build);
  const verdicts = same.map((r) => r.goals.find((g) => g.goal === goal)?.verdict ?? 'undecided');
  return {
    met: verdicts.filter((v) => v === 'met').length,
    judged: verdicts.filter((v) => v !== 'undecided').length,
    runs: same.length,
    harnesses: new Set(same.map((r) => r.harness ?? null)).size,
  };
}

/** A tally as the goals table shows it. */
export function tallyText(t: Tally, mode: LoggedRun['mode']): string {
  const runs = `${t.runs} ${mode} run${t.runs === 1 ? '' : 's'}`;
  if (t.runs === 0) return 'none counted: no build could be named (no git, or files changed during the run)';
  if (t.judged === 0) return `undecided in ${runs}`;
  if (t.judged === t.runs) return `met in ${t.met} of ${runs}`;
  return `met in ${t.met} of the ${t.judged} that could tell (${runs})`;
}
