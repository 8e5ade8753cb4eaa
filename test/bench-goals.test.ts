import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goalsFigure, judgeGoals } from '../bench/figures/goals.ts';
import type { IngestRun } from '../bench/figures/ingest.ts';
import type { SustainedRate } from '../bench/figures/max-rate.ts';
import type { RunnerOutcome, Trial } from '../bench/figures/round-trip.ts';

/**
 * The benchmark's goals table (bench/figures/goals.ts) judges issue 9's goals from a run's own
 * figures: these pin the arithmetic and the cases a run cannot decide, on made-up figures.
 */
function trial(p50: number, p99: number, cpu: number, leadInP99?: number): Trial {
  return {
    rate: 0,
    sent: 100,
    received: 100,
    lost: 0,
    latency: { count: 100, p50, p99, max: p99 },
    measured: 100,
    leadIn: leadInP99 === undefined ? null : { count: 100, p50, p99: leadInP99, max: leadInP99 },
    sendSeconds: 1,
    generatorCpu: 0.1,
    cpuPerMessageUs: cpu,
    mainThreadPerMessageUs: cpu,
  };
}

function outcome(name: string, at1k: Trial, at5k: Trial): RunnerOutcome {
  return {
    name,
    byRate: new Map([
      [1000, at1k],
      [5000, at5k],
    ]),
  };
}

const ideal = outcome('ideal relay', trial(0.1, 0.4, 40), trial(0.3, 0.8, 15));
const nodeRed = outcome('Node-RED 4', trial(1.3, 1.7, 50), trial(1.4, 2.2, 25));

function sustained(name: string, highest: number, generatorBound = false): SustainedRate {
  return { name, highest, failedAt: highest * 2, why: '', generatorBound, trials: [] };
}

function ingestRun(perSecond: number, cpuPerReportUs: number, committed = 1000): IngestRun {
  return {
    store: 'SQLite',
    reports: 1000,
    committed,
    afterStop: committed,
    perSecond,
    cpuPerReportUs,
    firstCommitSeconds: 1,
  };
}

const verdicts = (goals: ReturnType<typeof judgeGoals>) => goals.map((g) => g.verdict);

describe('bench goals', () => {
  it('meets a ratio goal only where every rate is within it', () => {
    const within = outcome('Triad (mode single)', trial(0.12, 0.5, 45), trial(0.36, 1.1, 20));
    const [p50, p99, cpu] = judgeGoals({ roundTrip: [ideal, nodeRed, within] });
    assert.equal(p50.verdict, 'met');
    assert.equal(p50.measured, '1.2× at 1,000/s, 1.2× at 5,000/s');
    assert.equal(p99.verdict, 'met');
    assert.equal(cpu.verdict, 'met');
    // 1.31× at 5,000/s alone fails the p50 goal; 1.01× Node-RED's CPU at one rate fails that one.
    const over = outcome('Triad (mode single)', trial(0.12, 0.5, 45), trial(0.393, 1.1, 25.25));
    const [p50b, , cpub] = judgeGoals({ roundTrip: [ideal, nodeRed, over] });
    assert.equal(p50b.verdict, 'not met');
    assert.equal(cpub.verdict, 'not met');
  });

  it("shows the lead-in's p99 ratio beside the p99 verdict without judging it", () => {
    const withLead = (name: string, a: number, b: number) =>
      outcome(name, trial(0.1, 0.4, 40, a), trial(0.3, 0.8, 15, b));
    const triad = withLead('Triad (mode single)', 0.8, 16);
    const [, p99] = judgeGoals({ roundTrip: [withLead('ideal relay', 0.4, 0.8), nodeRed, triad] });
    // The measured parts are equal, so the goal is met, whatever the lead-in did.
    assert.equal(p99.verdict, 'met');
    assert.equal(
      p99.measured,
      '1× at 1,000/s, 1× at 5,000/s; not judged, the lead-in from quiet: 2× at 1,000/s, 20× at 5,000/s',
    );
    // Without lead-ins (the reference's missing) nothing is added.
    assert.equal(judgeGoals({ roundTrip: [ideal, nodeRed, triad] })[1].measured, '1× at 1,000/s, 1× at 5,000/s');
  });

  it('leaves a goal undecided when a figure or a system was not measured', () => {
    const goals = judgeGoals({});
    assert.deepEqual(verdicts(goals), Array(6).fill('undecided'));
    assert.ok(goals.every((g) => g.measured.startsWith('not measured')));
    const noTriad = judgeGoals({ roundTrip: [ideal, nodeRed, { name: 'Triad', notMeasured: 'x', byRate: new Map() }] });
    assert.match(noTriad[0].measured, /Triad could not be run/);
    const only1k = outcome('Triad (mode single)', trial(0.1, 0.4, 40), trial(0.3, 0.8, 15));
    only1k.byRate.delete(5000);
    assert.equal(judgeGoals({ roundTrip: [ideal, nodeRed, only1k] })[0].verdict, 'undecided');
  });

  it("does not decide the sustained rate on a load generator's limit", () => {
    const judge = (triad: SustainedRate, red: SustainedRate) =>
      judgeGoals({ sustained: [sustained('ideal relay', 50_000), red, triad] })[3].verdict;
    assert.equal(judge(sustained('Triad (mode parallel)', 45_000), sustained('Node-RED 4', 45_000)), 'met');
    assert.equal(judge(sustained('Triad (mode parallel)', 22_500), sustained('Node-RED 4', 45_000)), 'not met');
    // Triad capped by the generator below Node-RED: its real limit may be higher.
    assert.equal(judge(sustained('Triad (mode parallel)', 30_000, true), sustained('Node-RED 4', 45_000)), 'undecided');
    // Node-RED capped by the generator at or below Triad: its real limit may be higher too.
    assert.equal(judge(sustained('Triad (mode parallel)', 50_000), sustained('Node-RED 4', 50_000, true)), 'undecided');
  });

  it('needs the rate, the CPU headroom of one core and every row for the ingest goal', () => {
    const judge = (run: IngestRun) => judgeGoals({ ingest: { runs: [run], relay: [150_000] } })[4];
    const met = judge(ingestRun(76_560, 11.3));
    assert.equal(met.verdict, 'met');
    assert.match(
      met.measured,
      /76,560\/s committed to SQLite \(0\.51× the broker's relay\), 11\.3 µs .* 88,496\/s per core/,
    );
    assert.equal(judge(ingestRun(40_000, 11.3)).verdict, 'not met');
    // A broker that relays only 36,000/s bounds the rate; the CPU headroom still decides alone.
    const slowBroker = (run: IngestRun) => judgeGoals({ ingest: { runs: [run], relay: [36_000] } })[4];
    const bound = slowBroker(ingestRun(37_000, 11.3));
    assert.equal(bound.verdict, 'undecided');
    assert.match(bound.measured, /the broker's relay was the limit/);
    assert.equal(slowBroker(ingestRun(37_000, 26.1)).verdict, 'not met');
    assert.equal(slowBroker(ingestRun(30_000, 11.3)).verdict, 'not met');
    // Fast enough only by spreading over two cores: 25 µs a report is 40,000/s on one.
    assert.equal(judge(ingestRun(60_000, 25)).verdict, 'not met');
    const lost = judge(ingestRun(76_560, 11.3, 999));
    assert.equal(lost.verdict, 'not met');
    assert.match(lost.measured, /rows went missing/);
  });

  it('judges scale on the 100,000-thing point only', () => {
    const point = (things: number, rssMiB: number, startMs: number) => ({
      things,
      rssBytes: rssMiB * 2 ** 20,
      startMs,
      updatesPerSecond: 1,
      fillSeconds: 1,
      fromBundle: true,
    });
    const judge = (points: ReturnType<typeof point>[]) =>
      judgeGoals({ scale: { floor: point(10, 160, 600), points } })[5];
    assert.equal(judge([point(10_000, 200, 700)]).verdict, 'undecided');
    assert.match(judge([point(10_000, 200, 700)]).measured, /no run with 100,000 things/);
    assert.equal(judgeGoals({})[5].measured, 'not measured: scale was not run');
    assert.equal(judge([point(10_000, 200, 700), point(100_000, 368, 1910)]).verdict, 'met');
    assert.equal(judge([point(100_000, 1100, 1910)]).verdict, 'not met');
    assert.equal(judge([point(100_000, 368, 5200)]).verdict, 'not met');
  });

  it('counts the goals met in its title', () => {
    const figure = goalsFigure(judgeGoals({ ingest: { runs: [ingestRun(76_560, 11.3)], relay: [150_000] } }), 'quick');
    assert.equal(figure.title, 'Goals of issue 9 · 1 of 6 met in this run');
    assert.equal(figure.rows.length, 6);
    assert.deepEqual(
      figure.rows.map((r) => r[1]),
      ['undecided', 'undecided', 'undecided', 'undecided', 'met', 'undecided'],
    );
  });
});
