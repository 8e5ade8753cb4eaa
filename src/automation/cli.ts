import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type Clock, SystemClock } from '../core/clock.ts';
import { DEFAULT_HOUSEHOLD_ID } from '../core/households.ts';
import { householdTimeZone, SITE_THING, siteTariffZone } from '../core/wall-time.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/store.ts';
import { rulesFromFile } from './live/catalogue.ts';
import { locationFromSettings } from './live/world.ts';
import { noteClamped, REPLAY_MAX_RUNS, REPLAY_MAX_STEPS, recordedRange, replayRules, storeSource } from './replay.ts';

export interface ReplayCommandArgs {
  file: string;
  /** Required; absent is a one-line problem (so the command line may leave checking it here). */
  from?: string;
  to?: string;
  data?: string;
  pgUrl?: string;
  household?: string;
  /** Where progress goes; default stderr. */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  out?: NodeJS.WritableStream;
  /** What "now" is, where recorded history ends; default the wall clock. */
  clock?: Clock;
}

/** Ranges longer than this get a progress bar. */
const LONG_RANGE_MS = 86_400_000;

/**
 * `triad replay RULE.yaml --from … --to …`: runs the file's rules against the recorded history
 * of the data folder (or PostgreSQL), prints `{"runs": [...]}` on stdout, sends nothing. It
 * judges every trigger in the range (it holds up no hub), but stops at REPLAY_MAX_RUNS runs, as
 * the API does, with `until`. Returns the process exit code.
 */
export async function runReplayCommand(args: ReplayCommandArgs): Promise<number> {
  const err = args.progress ?? process.stderr;
  const out = args.out ?? process.stdout;
  const missing = (['from', 'to'] as const).filter((flag) => args[flag] === undefined);
  if (missing.length) {
    err.write(
      `triad replay: ${missing.map((f) => `--${f}`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required (ISO 8601 times)\n`,
    );
    return 2;
  }
  const from = Date.parse(args.from ?? '');
  const requestedTo = Date.parse(args.to ?? '');
  if (!Number.isFinite(from) || !Number.isFinite(requestedTo)) {
    err.write('triad replay: --from and --to must be ISO 8601 times\n');
    return 2;
  }
  if (from > requestedTo) {
    err.write('triad replay: --from must not be after --to\n');
    return 2;
  }
  // Recorded history ends now: a `--to` in the future is replayed up to now, and the answer says so.
  const range = recordedRange(from, requestedTo, (args.clock ?? new SystemClock()).now());
  if ('problem' in range) {
    err.write(`triad replay: --${range.problem}\n`);
    return 2;
  }
  const to = range.to;
  // The rule file first: a mistyped path is the likeliest mistake, and needs no history to find.
  let text: string;
  try {
    text = await readFile(args.file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT'
        ? `file not found: ${args.file}`
        : code === 'EISDIR'
          ? `${args.file} is a folder, not a rule file`
          : `cannot read ${args.file}: ${(error as Error).message}`;
    err.write(`triad replay: ${problem}\n`);
    return 2;
  }
  const opened = await openHistory(args);
  if ('problem' in opened) {
    err.write(`triad replay: ${opened.problem}\n`);
    return 2;
  }
  const { store } = opened;
  try {
    const householdId = args.household ?? DEFAULT_HOUSEHOLD_ID;
    const things = new Map((await store.listThings(householdId)).map((t) => [t.id, t]));
    const household = await store.getHousehold(householdId);
    const location = household ? locationFromSettings(household.settings) : null;
    let rules: ReturnType<typeof rulesFromFile>;
    try {
      rules = rulesFromFile(text, args.file, householdId, {
        thing: (_h, id) => things.get(id),
        hasLocation: () => location !== null,
      });
    } catch (error) {
      err.write(`triad replay: ${error instanceof Error ? error.message : String(error)}\n`);
      return 2;
    }
    // A file's rule loads without fields that mean nothing (as the hub loads it); say which.
    for (const rule of rules)
      for (const warning of rule.warnings) err.write(`triad replay: ${args.file}: rule ${rule.id}: ${warning}\n`);
    const bar = to - from > LONG_RANGE_MS ? progressBar(err, from, to) : null;
    const result = await replayRules({
      rules,
      householdId,
      from,
      to,
      source: storeSource(store, householdId, from, to),
      thing: (id) => things.get(id),
      location,
      timeZone: householdTimeZone(siteTariffZone(things.get(SITE_THING))),
      onProgress: bar ?? undefined,
    });
    // A replay that stopped at a bound (runs, or steps) says so where a person reading the bar looks.
    if (bar) bar(result.events, result.until ? Date.parse(result.until) : to, true);
    noteClamped(result, range);
    if (range.note) err.write(`triad replay: ${range.note}\n`);
    if (result.truncated && result.until) {
      // Its bound on steps cuts the run it was in, which is then the last: that one is not whole.
      const bound =
        result.runs.length >= REPLAY_MAX_RUNS
          ? 'its bound on runs'
          : `its bound of ${REPLAY_MAX_STEPS} steps and commands (the last run stopped there)`;
      err.write(
        `triad replay: stopped at ${bound}; the ${result.runs.length} runs are those of a replay up to ${result.until}\n`,
      );
    }
    out.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

/**
 * The recorded history to replay: the data folder's database, which must already be there (a
 * replay never makes an empty one), or PostgreSQL. A problem is one line that says what to change.
 */
async function openHistory(args: ReplayCommandArgs): Promise<{ store: Store } | { problem: string }> {
  if (args.pgUrl) {
    try {
      return { store: await openStore({ kind: 'postgres', url: args.pgUrl }) };
    } catch (error) {
      return { problem: `cannot read history from PostgreSQL (--pg-url): ${(error as Error).message}` };
    }
  }
  const folder = resolve(args.data ?? './triad-data');
  const named = args.data === undefined ? 'the default data folder' : 'the data folder';
  const point = "point at the hub's data folder with --data DIR (or at PostgreSQL with --pg-url URL)";
  const found = await stat(folder).catch(() => null);
  if (!found) return { problem: `${named} ${folder} does not exist; ${point}` };
  if (!found.isDirectory()) return { problem: `${folder} is a file, not a data folder; ${point}` };
  const file = join(folder, 'triad.db');
  if (!(await stat(file).catch(() => null)))
    return { problem: `${folder} holds no recorded history (no triad.db); ${point}` };
  try {
    return { store: await openStore({ kind: 'sqlite', file }) };
  } catch (error) {
    return { problem: `cannot read ${file}: ${(error as Error).message}` };
  }
}

/** A one-line bar redrawn in place: how far through the time range, and events so far. */
function progressBar(stream: NodeJS.WritableStream & { isTTY?: boolean }, from: number, to: number) {
  let lastPercent = -1;
  return (events: number, at: number, final = false) => {
    const percent = Math.min(100, Math.floor(((at - from) / Math.max(1, to - from)) * 100));
    if (percent === lastPercent && !final) return;
    lastPercent = percent;
    const width = 30;
    const filled = Math.round((percent / 100) * width);
    const line = `replay [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(percent).padStart(3)}%  ${events} events`;
    stream.write(stream.isTTY ? `\r${line}${final ? '\n' : ''}` : `${line}\n`);
  };
}
