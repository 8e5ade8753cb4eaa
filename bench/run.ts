// `npm run bench [-- --quick] [--only round-trip,max-rate,ingest,scale,api] [--cpu-prof]`: Triad
// measured side by side with the MQTT broker's floor, an ideal relay and Node-RED 4, in one run.
// --cpu-prof writes a V8 CPU profile of every Triad process to bench/results/profiles/.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { apiFigure, measureApi } from './figures/api.ts';
import { type GoalInputs, goalsFigure, judgeGoals } from './figures/goals.ts';
import { ingestFigure, measureIngest } from './figures/ingest.ts';
import { highestSustainedRate, maxRateFigure, type SustainedRate } from './figures/max-rate.ts';
import {
  type Contestant,
  LEAD_IN_SECONDS,
  measureInterleaved,
  type RoundTripPlan,
  roundTripFigure,
} from './figures/round-trip.ts';
import { measureScale, scaleFigure } from './figures/scale.ts';
import { type Broker, startAedes, startMosquitto } from './lib/brokers.ts';
import { machineLine, writeResults } from './lib/output.ts';
import { killAllNow, ROOT, stopAll } from './lib/processes.ts';
import { progress } from './lib/progress.ts';
import type { FigureResult } from './lib/report.ts';
import { buildId, harnessId, type LoggedRun, readRunLog, withRun, writeRunLog } from './lib/run-log.ts';
import { brokerFloor, idealRelay, isNotMeasured, type NotMeasured, nodeRed, type RuleRunner } from './lib/systems.ts';
import { triadRule } from './lib/triad-rule.ts';

const FIGURES = ['round-trip', 'max-rate', 'ingest', 'scale', 'api'] as const;
type FigureId = (typeof FIGURES)[number];

function parseArgs(argv: string[]): { quick: boolean; only: Set<FigureId> } {
  const quick = argv.includes('--quick');
  if (argv.includes('--cpu-prof')) process.env.TRIAD_BENCH_CPU_PROF = join(ROOT, 'bench/results/profiles');
  const onlyArg = argv.find((a) => a.startsWith('--only'));
  const onlyValue = onlyArg?.includes('=')
    ? onlyArg.split('=')[1]
    : onlyArg
      ? argv[argv.indexOf(onlyArg) + 1]
      : undefined;
  const only = new Set((onlyValue ? onlyValue.split(',') : FIGURES) as FigureId[]);
  for (const id of only)
    if (!FIGURES.includes(id)) throw new Error(`unknown figure ${id}; choose from ${FIGURES.join(', ')}`);
  return { quick, only };
}

/** What each mode runs; the quick plan is written out in every figure's setup line. */
function plans(quick: boolean) {
  return {
    roundTrip: (quick
      ? { rates: [100, 1000, 5000], seconds: () => 3, trials: 1 }
      : { rates: [100, 1000, 5000], seconds: (r: number) => (r <= 100 ? 10 : 5), trials: 3 }) satisfies RoundTripPlan,
    maxRate: quick
      ? { steps: [500, 1000, 5000, 10_000, 20_000, 30_000], seconds: 2 }
      : { steps: [500, 1000, 2000, 5000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000], seconds: 4 },
    ingest: {
      reports: quick ? 50_000 : 200_000,
      pgUrl: process.env.TRIAD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
    scale: quick ? { sizes: [10_000], updateSeconds: 2 } : { sizes: [10_000, 100_000], updateSeconds: 5 },
    api: quick
      ? { connections: 16, httpSeconds: 5, clients: 100, fanoutRate: 100, fanoutSeconds: 3 }
      : { connections: 16, httpSeconds: 15, clients: 100, fanoutRate: 100, fanoutSeconds: 10 },
  };
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  const profiling = Boolean(process.env.TRIAD_BENCH_CPU_PROF);
  const plan = plans(quick);
  const mode = quick ? 'quick' : 'full';
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg()[0];
  const figures: FigureResult[] = [];
  // What the goals table is judged from: each figure's measurements as they come in.
  const judged: GoalInputs = {};
  // A run of every figure joins the run log (bench/results/runs.json); it is read now so that a log
  // the run could not add to stops it before it measures anything, and again at the end.
  const runLog = only.size === FIGURES.length && !profiling ? join(ROOT, 'bench/results/runs.json') : null;
  if (runLog) await readRunLog(runLog);
  // Named now and again at the end (git writes a tree of the files each time): only runs it logs.
  const build = runLog ? buildId(ROOT) : null;
  const harness = runLog ? harnessId(ROOT) : null;

  progress.show('starting brokers (a private Mosquitto and aedes on loopback ports)');
  const mosquitto = await startMosquitto();
  const aedes = await startAedes();
  // Everything runs against Mosquitto when it is installed (the floor the issue names); otherwise
  // against aedes, Triad's own embedded broker.
  const shared: Broker = mosquitto ?? aedes;
  const floors = mosquitto ? [mosquitto, aedes] : [aedes];

  if (only.has('round-trip') || only.has('max-rate')) {
    const rt = plan.roundTrip;
    // Every system on a broker of its own, so all can stay up while their trials take turns (on a
    // shared broker each would answer the others' reports too).
    const ownBroker = async (): Promise<Broker> => {
      if (!mosquitto) return startAedes();
      const broker = await startMosquitto();
      if (!broker) throw new Error('Mosquitto started once but not a second time');
      return broker;
    };
    const systems: Array<[string, (broker: Broker) => Promise<RuleRunner | NotMeasured>]> = [
      ['ideal relay', idealRelay],
      ['Node-RED 4', nodeRed],
      ['Triad', (broker) => triadRule(broker)],
    ];
    const contestants: Contestant[] = floors.map((broker) => ({
      broker,
      runner: brokerFloor(broker),
      label: `${broker.kind} relay (floor)`,
    }));
    const own: Broker[] = [];
    try {
      for (const [label, start] of systems) {
        progress.show(`starting ${label}`);
        const broker = await ownBroker();
        own.push(broker);
        contestants.push({ broker, runner: await start(broker), label });
      }
      const outcomes = only.has('round-trip') ? await measureInterleaved(contestants, rt) : [];
      const sustained: SustainedRate[] = [];
      if (only.has('max-rate')) {
        for (const { broker, runner, label } of contestants.slice(floors.length)) {
          if (isNotMeasured(runner)) {
            sustained.push({
              name: label,
              notMeasured: runner.notMeasured,
              highest: 0,
              failedAt: null,
              why: '',
              generatorBound: false,
              trials: [],
            });
          } else sustained.push(await highestSustainedRate(broker, runner, plan.maxRate.steps, plan.maxRate.seconds));
        }
      }
      const rtSetup = `${mode}: ${rt.rates.join(', ')} reports/s, ${rt.rates.map((r) => `${rt.seconds(r)} s`).join(' / ')} per trial after a ${LEAD_IN_SECONDS} s lead-in at the same rate, median of ${rt.trials} trial(s) by p50, trials interleaved across systems, QoS 0, broker ${shared.kind}`;
      if (only.has('round-trip')) judged.roundTrip = outcomes;
      if (only.has('max-rate')) judged.sustained = sustained;
      if (only.has('round-trip')) figures.push(roundTripFigure(outcomes, rt, shared.kind, rtSetup));
      if (only.has('max-rate')) {
        figures.push(
          maxRateFigure(
            sustained,
            `${mode}: steps ${plan.maxRate.steps.join(', ')} reports/s then one halfway step, ${plan.maxRate.seconds} s each, each system on a broker of its own (${shared.kind})`,
          ),
        );
      }
    } finally {
      for (const { runner } of contestants) if (!isNotMeasured(runner)) await runner.stop();
      for (const broker of own) await broker.stop();
    }
  }

  if (only.has('ingest')) {
    const result = await measureIngest(shared, plan.ingest);
    judged.ingest = result;
    figures.push(
      ingestFigure(
        result,
        shared.kind,
        `${mode}: ${plan.ingest.reports.toLocaleString('en-US')} reports per store, QoS 0, broker ${shared.kind}`,
      ),
    );
  }

  if (only.has('scale')) {
    const result = await measureScale(plan.scale.sizes, plan.scale.updateSeconds);
    judged.scale = result;
    figures.push(
      scaleFigure(
        result,
        `${mode}: ${plan.scale.sizes.map((s) => s.toLocaleString('en-US')).join(' and ')} things, ${plan.scale.updateSeconds} s of updates each, SQLite`,
      ),
    );
  }

  if (only.has('api')) {
    const result = await measureApi(shared, plan.api);
    figures.push(
      apiFigure(
        result,
        shared.kind,
        plan.api,
        `${mode}: ${plan.api.httpSeconds} s of GETs, fan-out ${plan.api.fanoutSeconds} s, broker ${shared.kind}`,
      ),
    );
  }

  // The verdicts first: what a reader wants to know before the figures that back them.
  const goals = judgeGoals(judged);
  // Runs on aedes (no Mosquitto installed) measure against another floor: not counted with the rest.
  const logFile = runLog && mosquitto ? runLog : null;
  let run: LoggedRun | undefined;
  let loggedRuns: LoggedRun[] | undefined;
  if (logFile) {
    // Files edited while the run measured: no build can be named for it.
    const same = buildId(ROOT) === build && harnessId(ROOT) === harness;
    run = {
      startedAt,
      mode,
      build: same ? build : null,
      harness: same ? harness : null,
      machine: machineLine(),
      goals: goals.map((g) => ({ goal: g.goal, verdict: g.verdict })),
    };
    try {
      loggedRuns = withRun(await readRunLog(logFile), run);
    } catch (error) {
      process.stderr.write(`\nThis run is not added to the run log: ${(error as Error).message}\n`);
    }
  }
  figures.unshift(goalsFigure(goals, mode, run && loggedRuns ? { runs: loggedRuns, build: run.build } : undefined));

  progress.show('stopping brokers');
  await stopAll();
  progress.done(`finished in ${Math.round((performance.now() - started) / 1000)} s`);
  const dir = await writeResults(figures, {
    quick,
    startedAt,
    wallSeconds: (performance.now() - started) / 1000,
    command: `npm run bench${quick ? ' -- --quick' : ''}`,
    loadAtStart,
  });
  process.stdout.write(
    `\nWrote ${dir}/latest.json, latest.md and ${figures.filter((f) => f.chart).length} SVG charts.\n`,
  );
  // After the results: a log that cannot be written costs this run its place in it, not its figures.
  if (logFile && loggedRuns && run) {
    try {
      // Read again: another run may have finished while this one stopped its brokers and wrote.
      await writeRunLog(logFile, withRun(await readRunLog(logFile), run));
      process.stdout.write(`Added this run to ${logFile} (build ${run.build ?? 'unknown'}).\n`);
    } catch (error) {
      process.stderr.write(`Could not add this run to the run log: ${(error as Error).message}\n`);
    }
  } else if (!logFile) {
    const why = !runLog
      ? profiling
        ? 'it was profiled'
        : 'it ran some figures only'
      : 'it ran on aedes, not Mosquitto';
    process.stdout.write(`This run is not added to the run log: ${why}.\n`);
  }
}

// Ctrl-C or a crash must not leave brokers, Node-RED or hubs running: stop exactly what we started.
let interrupted = false;
const interrupt = (signal: string) => {
  if (interrupted) {
    killAllNow();
    process.exit(130);
  }
  interrupted = true;
  process.stderr.write(`\n${signal}: stopping the processes this benchmark started…\n`);
  void stopAll().then(() => process.exit(130));
};
process.on('SIGINT', () => interrupt('SIGINT'));
process.on('SIGTERM', () => interrupt('SIGTERM'));
process.on('exit', killAllNow);

main().catch(async (error: unknown) => {
  progress.done('failed');
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  await stopAll();
  process.exit(1);
});
