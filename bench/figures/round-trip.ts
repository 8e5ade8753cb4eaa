import type { Broker } from '../lib/brokers.ts';
import { type RoundTripResult, roundTrip, settle } from '../lib/mqtt-load.ts';
import { cpuSeconds, mainThreadCpuSeconds } from '../lib/processes.ts';
import { progress } from '../lib/progress.ts';
import { type FigureResult, fmt, fmtRatio } from '../lib/report.ts';
import { ruleReport } from '../lib/rule.ts';
import { medianTrial, ratio } from '../lib/stats.ts';
import type { NotMeasured, RuleRunner } from '../lib/systems.ts';

export interface Trial extends RoundTripResult {
  /** CPU seconds the runner's own processes spent per answered report, in microseconds. */
  cpuPerMessageUs: number;
  /** The part of it spent on the processes' main threads. */
  mainThreadPerMessageUs: number;
}

export interface RunnerOutcome {
  name: string;
  notMeasured?: string;
  /** The median trial (by p50) at each rate. */
  byRate: Map<number, Trial>;
}

export interface RoundTripPlan {
  rates: number[];
  /** Seconds per trial at a given rate (low rates need longer to collect enough samples). */
  seconds: (rate: number) => number;
  trials: number;
}

/**
 * Runs one trial of the rule at one rate, charging the runner's processes for their CPU. With a
 * lead-in, that many seconds of reports at the same rate go first, unmeasured (see LEAD_IN_SECONDS).
 */
export async function trial(
  broker: Broker,
  runner: RuleRunner,
  rate: number,
  seconds: number,
  leadInSeconds = 0,
): Promise<Trial> {
  let before: number[] = [];
  let mainBefore: number[] = [];
  const result = await roundTrip({
    brokerUrl: broker.url,
    rate,
    seconds,
    report: ruleReport,
    answerTopic: runner.answerTopic,
    correlate: runner.correlate,
    confirm: runner.confirm,
    leadInSeconds,
    onStart: () => {
      before = runner.pids.map(cpuSeconds);
      mainBefore = runner.pids.map(mainThreadCpuSeconds);
    },
  });
  const cpu = runner.pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - before[i], 0);
  const main = runner.pids.reduce((sum, pid, i) => sum + mainThreadCpuSeconds(pid) - mainBefore[i], 0);
  // The counters start when the first measured report is due and stop once the answers have
  // drained, so a system still working off its lead-in is charged for that too (a little more
  // CPU a message, never less); the divisor is the measured reports' answers.
  const perMessage = (seconds: number) => (result.measured ? (seconds / result.measured) * 1e6 : Number.NaN);
  return { ...result, cpuPerMessageUs: perMessage(cpu), mainThreadPerMessageUs: perMessage(main) };
}

/** A trial that lost messages or took over a second left a backlog behind it. */
export function overloaded(t: RoundTripResult): boolean {
  return t.lost > 0 || t.latency.p99 >= 1000;
}

/**
 * Lets queues empty so one trial's tail does not become the next one's head; a system that was
 * overloaded and can be replaced (Triad) is replaced by a fresh one instead of waited for.
 */
export async function recover(broker: Broker, runner: RuleRunner, last: RoundTripResult): Promise<void> {
  if (overloaded(last) && runner.reset) {
    progress.show(`${runner.name} was overloaded; starting a fresh one`);
    await runner.reset();
    await warmUp(broker, runner);
  } else {
    await settle(broker.url, runner.answerTopic, 1000, 30_000);
  }
}

/**
 * Seconds of reports at a trial's own rate that run straight before its measured ones, unmeasured.
 * The trials are interleaved, so a system idles 20–50 s while the others run theirs, and V8
 * shrinks an idle process's young generation: the first second or more at a higher rate then runs
 * with a small one, collecting every few milliseconds, and falls behind until it has grown (one
 * Triad GC log at 5,000/s after 20 s idle, on a slow machine: 3.5 s of 8–15 ms collections, each
 * promoting 1–1.7 MB, then 2–5 ms and nothing promoted). A 5 s trial's p99 was mostly that start.
 * A system still catching up after the lead-in shows it in the measured figures; how each met the
 * rate from quiet is kept in view as the lead-in's own p99 (Figure 1's notes, the goals table).
 */
export const LEAD_IN_SECONDS = 1.5;

/** Rate and length of the unmeasured trial each system runs before its first measured one. */
export const WARM_UP = { rate: 1000, seconds: 2 };

/**
 * Runs the rule unmeasured for a few seconds, so JIT compilation and first-use allocations are
 * not charged to the first measured rate: a hub runs for months, and its steady state is what a
 * household lives with. Every system gets the same, and a restarted one gets it again.
 */
export async function warmUp(broker: Broker, runner: RuleRunner): Promise<void> {
  progress.show(`round trip · ${runner.name} · warming up (${WARM_UP.rate}/s for ${WARM_UP.seconds} s, unmeasured)`);
  const result = await trial(broker, runner, WARM_UP.rate, WARM_UP.seconds);
  if (overloaded(result) && runner.reset) await runner.reset();
  else await settle(broker.url, runner.answerTopic, 1000, 30_000);
}

/** One system in Figure 1, with the broker it answers on. */
export interface Contestant {
  broker: Broker;
  runner: RuleRunner | NotMeasured;
  label: string;
}

/**
 * Figure 1's measurements for every system at once, interleaved: round n runs each system's trial
 * n at a rate before any system's round n+1. The machine is shared, and its speed drifts over
 * minutes (one full run measured Triad's 5,000/s trials at 114 µs of CPU a message, the next at
 * 92): measured one system after another, a slow spell fell on one system's rates and skewed its
 * ratios; now it falls on every system's trial of that round alike. Each system has a broker of
 * its own (the floors are brokers themselves), so the others can stay up, idle, in between.
 */
export async function measureInterleaved(contestants: Contestant[], plan: RoundTripPlan): Promise<RunnerOutcome[]> {
  const live = contestants.flatMap((c) => (isRunner(c.runner) ? [{ broker: c.broker, runner: c.runner }] : []));
  for (const { broker, runner } of live) await warmUp(broker, runner);
  const trials = new Map<RuleRunner, Map<number, Trial[]>>(live.map(({ runner }) => [runner, new Map()]));
  for (const rate of plan.rates) {
    for (let n = 0; n < plan.trials; n++) {
      for (const { broker, runner } of live) {
        progress.show(`round trip · ${rate}/s · trial ${n + 1}/${plan.trials} · ${runner.name}`);
        const result = await trial(broker, runner, rate, plan.seconds(rate), LEAD_IN_SECONDS);
        const byRate = trials.get(runner) as Map<number, Trial[]>;
        byRate.set(rate, [...(byRate.get(rate) ?? []), result]);
        await recover(broker, runner, result);
      }
    }
  }
  return contestants.map((c) => {
    if (!isRunner(c.runner)) return { name: c.label, notMeasured: c.runner.notMeasured, byRate: new Map() };
    const byRate = new Map<number, Trial>();
    for (const [rate, list] of trials.get(c.runner) ?? [])
      byRate.set(
        rate,
        medianTrial(list, (x) => x.latency.p50),
      );
    return { name: c.runner.name, byRate };
  });
}

function isRunner(runner: RuleRunner | NotMeasured): runner is RuleRunner {
  return !('notMeasured' in runner);
}

/** Figure 1 as a table: each system's p50/p99/max/lost and CPU per message, with its ratios. */
export function roundTripFigure(
  outcomes: RunnerOutcome[],
  plan: RoundTripPlan,
  brokerName: string,
  setup: string,
): FigureResult {
  const ideal = outcomes.find((o) => o.name === 'ideal relay');
  const red = outcomes.find((o) => o.name.startsWith('Node-RED'));
  const rows: Array<Array<string | number>> = [];
  const notes: string[] = [];
  for (const rate of plan.rates) {
    for (const o of outcomes) {
      if (o.notMeasured) continue;
      const t = o.byRate.get(rate);
      if (!t) continue;
      const i = ideal?.byRate.get(rate);
      const r = red?.byRate.get(rate);
      rows.push([
        `${rate}/s`,
        o.name,
        fmt(t.latency.p50),
        fmt(t.latency.p99),
        fmt(t.latency.max),
        `${t.lost}/${t.sent}`,
        fmt(t.cpuPerMessageUs),
        o === ideal
          ? '1×'
          : `${fmtRatio(ratio(t.latency.p50, i?.latency.p50))} / ${fmtRatio(ratio(t.latency.p99, i?.latency.p99))}`,
        red && o !== red
          ? `${fmtRatio(ratio(t.latency.p50, r?.latency.p50))} / ${fmtRatio(ratio(t.latency.p99, r?.latency.p99))}`
          : '–',
        fmtRatio(ratio(t.cpuPerMessageUs, r?.cpuPerMessageUs)),
      ]);
    }
  }
  for (const o of outcomes) if (o.notMeasured) notes.push(`${o.name}: not measured: ${o.notMeasured}`);
  // The load generator times every answer on its own event loop: near a full core, part of the
  // latency would be its own. Shown so a reader can tell.
  const generator = plan.rates.flatMap((rate) => {
    const shares = outcomes.flatMap((o) => {
      const t = o.byRate.get(rate);
      return t ? [t.generatorCpu] : [];
    });
    return shares.length ? [`${Math.round(Math.max(...shares) * 100)} % at ${rate}/s`] : [];
  });
  if (generator.length)
    notes.push(
      `The load generator's own CPU while sending, the most of any system's trial: ${generator.join(', ')} of a core.`,
    );
  // Which part of the CPU the round trip waits for: the main thread handles every message, while
  // helper threads (Triad's store writer, V8's garbage collector and compiler) run beside it.
  const shares = outcomes
    .filter((o) => !o.notMeasured && !o.name.includes('(floor)'))
    .map((o) => {
      const parts = plan.rates.flatMap((rate) => {
        const t = o.byRate.get(rate);
        return t ? [`${fmt(t.mainThreadPerMessageUs)} of ${fmt(t.cpuPerMessageUs)} at ${rate}/s`] : [];
      });
      return `${o.name} ${parts.join(', ')}`;
    });
  if (shares.length)
    notes.push(`Main thread's part of CPU µs/msg (the thread each message waits for): ${shares.join('; ')}.`);
  // How each system met the rate straight after idling while the others ran their trials: the
  // lead-in's own p99, kept in view because the table leaves it out.
  const fromQuiet = plan.rates.flatMap((rate) => {
    const parts = outcomes.flatMap((o) => {
      const lead = o.byRate.get(rate)?.leadIn;
      return lead?.count ? [`${o.name} ${fmt(lead.p99)}`] : [];
    });
    return parts.length ? [`at ${rate}/s ${parts.join(', ')}`] : [];
  });
  if (fromQuiet.length)
    notes.push(
      `Before each measured trial, ${LEAD_IN_SECONDS} s of reports at the trial's rate go out unmeasured, straight before the measured ones: the table is each system after ${LEAD_IN_SECONDS} s at the rate, not its first stretch after the 20–50 s it idled while the others ran their trials. That first stretch's own p99, ms (the median trial's): ${fromQuiet.join('; ')}.`,
    );
  notes.push(
    `Latency is report published → command received; each system answers on a private ${brokerName} broker of its own (one configuration for all), and the trials are interleaved: every system's trial n at a rate runs before any system's trial n+1. CPU is the system's own process (the floor's is the broker's).`,
    "Lost = reports without a command once answers stopped for 2 s, or 10 s after the last report; lost and sent count the lead-in's reports too.",
    "CPU µs/msg = the process's user+system time over the measured part of the trial divided by its answered reports (10 ms tick resolution, and idle timers count too: read it at 1,000/s and above).",
    `Each system first runs the rule unmeasured for ${WARM_UP.seconds} s at ${WARM_UP.rate}/s (again after a restart), so start-up compilation is not charged to the first rate.`,
    "The fan confirms every command it receives (`ON` on its state topic), as a real device does, whichever system sent it: the ideal relay and Node-RED do not listen, Triad does (it closes the command with it). The traffic on the machine is the same in every system's trial.",
    'Triad runs the rule as a user writes it, in the default mode (single: a report that finds the rule running is skipped, and counts here as lost); Triad is restarted fresh after an overloaded trial.',
  );
  const order = outcomes.filter((o) => !o.notMeasured);
  return {
    id: 'round-trip',
    title: 'Figure 1 · Automation round trip (sensor report → command, over MQTT)',
    setup,
    columns: [
      'rate',
      'system',
      'p50 ms',
      'p99 ms',
      'max ms',
      'lost',
      'CPU µs/msg',
      '÷ ideal relay p50 / p99',
      '÷ Node-RED p50 / p99',
      'CPU ÷ Node-RED',
    ],
    rows,
    notes,
    raw: outcomes.map((o) => ({ name: o.name, notMeasured: o.notMeasured, byRate: Object.fromEntries(o.byRate) })),
    chart: {
      title: 'Automation round trip, p99 (ms), lower is better',
      unit: 'p99 latency, ms',
      groups: plan.rates.map((r) => `${r} reports/s`),
      series: order.map((o) => ({ name: o.name, values: plan.rates.map((r) => o.byRate.get(r)?.latency.p99 ?? null) })),
      log: true,
    },
  };
}
