import type { Broker } from '../lib/brokers.ts';
import { progress } from '../lib/progress.ts';
import { type FigureResult, fmt, fmtRatio } from '../lib/report.ts';
import { ratio } from '../lib/stats.ts';
import type { RuleRunner } from '../lib/systems.ts';
import { recover, type Trial, trial } from './round-trip.ts';

export interface SustainedRate {
  name: string;
  notMeasured?: string;
  /** The highest rate tried with no loss and p99 under a second. */
  highest: number;
  /** The first rate that failed, and why. */
  failedAt: number | null;
  why: string;
  /** True when the load generator itself could not send faster: the real limit is higher. */
  generatorBound: boolean;
  trials: Array<{ rate: number; ok: boolean; trial: Trial }>;
}

const P99_LIMIT_MS = 1000;
/** A load generator using this much of a core while it sends can no longer time answers on time. */
const GENERATOR_SATURATED = 0.9;

/** A trial's outcome; a failure with the load generator at its own limit does not bound the system. */
function verdict(t: Trial, seconds: number): { ok: boolean; why: string; generatorBound: boolean } {
  const failure =
    t.lost > 0
      ? `${t.lost} of ${t.sent} lost`
      : t.latency.p99 >= P99_LIMIT_MS
        ? `p99 ${fmt(t.latency.p99)} ms`
        : t.sendSeconds > seconds * 1.15
          ? 'the load generator fell behind'
          : null;
  if (failure === null) return { ok: true, why: '', generatorBound: false };
  const limit = generatorLimit(t, seconds);
  const why = limit && limit !== failure ? `${failure}, ${limit}` : failure;
  return { ok: false, why, generatorBound: limit !== null };
}

/** Why a failed trial says more about the load generator than the system, if it does. */
function generatorLimit(t: Pick<Trial, 'sendSeconds' | 'generatorCpu'>, seconds: number): string | null {
  if (t.sendSeconds > seconds * 1.15) return 'the load generator fell behind';
  if (t.generatorCpu >= GENERATOR_SATURATED)
    return `the load generator at ${Math.round(t.generatorCpu * 100)} % of a core`;
  return null;
}

/**
 * Steps the rate up until the runner loses a message or its p99 passes a second, then tries once
 * halfway between the last pass and the first failure. Bounded: at most `steps.length + 1` trials.
 */
export async function highestSustainedRate(
  broker: Broker,
  runner: RuleRunner,
  steps: number[],
  seconds: number,
): Promise<SustainedRate> {
  const out: SustainedRate = {
    name: runner.name,
    highest: 0,
    failedAt: null,
    why: '',
    generatorBound: false,
    trials: [],
  };
  const attempt = async (rate: number) => {
    progress.show(`highest sustained rate · ${runner.name} · trying ${rate}/s`);
    const t = await trial(broker, runner, rate, seconds);
    const v = verdict(t, seconds);
    out.trials.push({ rate, ok: v.ok, trial: t });
    await recover(broker, runner, t);
    return v;
  };
  for (const rate of steps) {
    const v = await attempt(rate);
    if (v.ok) {
      out.highest = rate;
      continue;
    }
    out.failedAt = rate;
    out.why = v.why;
    out.generatorBound = v.generatorBound;
    break;
  }
  if (out.failedAt !== null && !out.generatorBound) {
    const mid = Math.round((out.highest + out.failedAt) / 2 / 500) * 500;
    if (mid > out.highest && mid < out.failedAt) {
      const v = await attempt(mid);
      if (v.ok) out.highest = mid;
      else {
        out.failedAt = mid;
        out.why = v.why;
        out.generatorBound = v.generatorBound;
      }
    }
  }
  if (out.failedAt === null) out.generatorBound = true;
  return out;
}

/**
 * A ratio of two highest rates, marked where one of them is only a lower bound (its load generator
 * was the limit): ≥ when only this one is, ≤ when only the reference is, ~ when both are.
 */
function boundedRatio(r: SustainedRate, reference: SustainedRate | undefined): string {
  const text = fmtRatio(ratio(r.highest, reference?.highest));
  if (!reference || r === reference || text === '–') return text;
  if (r.generatorBound && reference.generatorBound) return `~${text}`;
  if (r.generatorBound) return `≥ ${text}`;
  if (reference.generatorBound) return `≤ ${text}`;
  return text;
}

export function maxRateFigure(results: SustainedRate[], setup: string): FigureResult {
  const red = results.find((r) => r.name.startsWith('Node-RED') && !r.notMeasured);
  const ideal = results.find((r) => r.name === 'ideal relay' && !r.notMeasured);
  const rows = results
    .filter((r) => !r.notMeasured)
    .map((r) => [
      r.name,
      r.generatorBound ? `≥ ${fmt(r.highest)}` : fmt(r.highest),
      r.failedAt === null ? 'none up to the last step' : `${fmt(r.failedAt)}/s: ${r.why}`,
      boundedRatio(r, ideal),
      boundedRatio(r, red),
    ]);
  const notes = results.filter((r) => r.notMeasured).map((r) => `${r.name}: not measured: ${r.notMeasured}`);
  notes.push(
    `Sustained = no report lost and p99 under ${P99_LIMIT_MS} ms for the whole trial. "≥" marks a limit set by the load generator (one Node.js process on the same machine, which also sends the fan's confirmations), not by the system: it fell behind, or used ${Math.round(GENERATOR_SATURATED * 100)} % of a core or more while sending. A ratio with such a rate is marked ≥, ≤ or ~ accordingly.`,
    'The same rule and world as Figure 1: the fan confirms every command it receives, whichever system sent it.',
  );
  const measured = results.filter((r) => !r.notMeasured);
  return {
    id: 'max-rate',
    title: 'Figure 2 · Highest sustained rate on the rule',
    setup,
    columns: ['system', 'reports/s', 'first failure', '÷ ideal relay', '÷ Node-RED'],
    rows,
    notes,
    raw: results,
    chart: {
      title: 'Highest sustained rate (reports/s), higher is better',
      unit: 'reports per second',
      groups: ['highest sustained rate'],
      series: measured.map((r) => ({ name: r.name, values: [r.highest] })),
    },
  };
}
