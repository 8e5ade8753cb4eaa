import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { goalsFigure, judgeGoals } from '../bench/figures/goals.ts';
import type { VerdictChartSpec } from '../bench/lib/report.ts';
import {
  buildId,
  harnessId,
  type LoggedRun,
  readRunLog,
  tally,
  tallyText,
  type Verdict,
  withRun,
  writeRunLog,
} from '../bench/lib/run-log.ts';
import { drawChart } from '../bench/lib/svg.ts';

/**
 * The benchmark's run log (bench/lib/run-log.ts): every run of all figures adds its goal verdicts
 * to bench/results/runs.json, and the goals table counts how each goal fared in the runs of the
 * same build. These pin what is counted together, and that a log it cannot read stops a run.
 */
const dir = mkdtempSync(join(tmpdir(), 'triad-run-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const GOALS = ['p50', 'p99', 'cpu'];

function run(build: string | null, verdicts: Verdict[], mode: LoggedRun['mode'] = 'full', at = 0): LoggedRun {
  return {
    startedAt: new Date(Date.UTC(2026, 10, 30, 12, at)).toISOString(),
    mode,
    build,
    machine: '2 × test CPU',
    goals: verdicts.map((verdict, i) => ({ goal: GOALS[i], verdict })),
  };
}

describe('bench run log', () => {
  it('adds a run last and keeps the newest of its mode', () => {
    const runs = Array.from({ length: 5 }, (_, i) => run('a', ['met'], 'full', i));
    const quick = run('a', ['met'], 'quick', 5);
    const next = run('b', ['not met'], 'full', 9);
    assert.deepEqual(withRun([...runs, quick], next, 5), [...runs.slice(1), quick, next]);
    assert.deepEqual(withRun([...runs, quick], next), [...runs, quick, next]);
    // Quick runs push out quick runs only: the full runs stay.
    const quicks = Array.from({ length: 5 }, (_, i) => run('a', ['met'], 'quick', 10 + i));
    assert.deepEqual(withRun([...runs, ...quicks], quick, 5), [...runs, ...quicks.slice(1), quick]);
    assert.equal(runs.length, 5, 'the log given is left as it was');
  });

  it('counts a goal over the runs of one build and mode, leaving out runs that could not tell', () => {
    const runs = [
      run('a', ['met', 'not met', 'met']),
      run('a', ['not met', 'not met', 'undecided']),
      run('a', ['met', 'met']), // no verdict on cpu at all: undecided
      run('a', ['not met', 'met', 'met'], 'quick'),
      run('b', ['met', 'met', 'met']),
    ];
    assert.deepEqual(tally(runs, 'p50', 'full', 'a'), { met: 2, judged: 3, runs: 3, harnesses: 1 });
    assert.deepEqual(tally(runs, 'p99', 'full', 'a'), { met: 1, judged: 3, runs: 3, harnesses: 1 });
    assert.deepEqual(tally(runs, 'cpu', 'full', 'a'), { met: 1, judged: 1, runs: 3, harnesses: 1 });
    assert.deepEqual(tally(runs, 'p50', 'quick', 'a'), { met: 0, judged: 1, runs: 1, harnesses: 1 });
    assert.deepEqual(tally(runs, 'p50', 'full', 'c'), { met: 0, judged: 0, runs: 0, harnesses: 0 });
    // Sources git could not name are never counted with anything, not even each other.
    assert.deepEqual(tally([run(null, ['met']), run(null, ['met'])], 'p50', 'full', null), {
      met: 0,
      judged: 0,
      runs: 0,
      harnesses: 0,
    });
    // Runs of one build measured by different versions of the benchmark are counted, and said to be.
    const measuredBy = (harness: string | undefined) => ({ ...run('a', ['met']), ...(harness ? { harness } : {}) });
    assert.equal(tally([measuredBy(undefined), measuredBy('h1'), measuredBy('h1')], 'p50', 'full', 'a').harnesses, 2);
    assert.equal(tallyText(tally(runs, 'p50', 'full', 'a'), 'full'), 'met in 2 of 3 full runs');
    assert.equal(tallyText(tally(runs, 'cpu', 'full', 'a'), 'full'), 'met in 1 of the 1 that could tell (3 full runs)');
    assert.equal(tallyText(tally(runs, 'p50', 'quick', 'a'), 'quick'), 'met in 0 of 1 quick run');
    assert.equal(tallyText({ met: 0, judged: 0, runs: 2, harnesses: 1 }, 'full'), 'undecided in 2 full runs');
    assert.match(
      tallyText({ met: 0, judged: 0, runs: 0, harnesses: 0 }, 'full'),
      /^none counted: no build could be named/,
    );
  });

  it('reads what it wrote, an absent log as empty, and refuses a log it cannot read', async () => {
    const file = join(dir, 'runs.json');
    assert.deepEqual(await readRunLog(file), []);
    const runs = [run('a', ['met', 'not met', 'undecided']), run(null, [], 'quick', 1)];
    await writeRunLog(file, runs);
    assert.deepEqual(await readRunLog(file), runs);
    const bad = join(dir, 'bad.json');
    for (const text of ['{"runs": [', '[]', '{"runs": {}}', '{"runs": [{"startedAt": 1}]}']) {
      writeFileSync(bad, text);
      await assert.rejects(readRunLog(bad), (error: Error) => error.message.includes(bad));
    }
    writeFileSync(bad, JSON.stringify({ runs: [{ ...runs[0], goals: [{ goal: 'p50', verdict: 'maybe' }] }] }));
    await assert.rejects(readRunLog(bad), /run 1 is not a logged run/);
  });

  it('takes every run it could have written, and no run with a field broken (property)', async () => {
    const file = join(dir, 'junk.json');
    const verdict = fc.constantFrom<Verdict>('met', 'not met', 'undecided');
    const logged = fc.record({
      startedAt: fc.string(),
      mode: fc.constantFrom<LoggedRun['mode']>('full', 'quick'),
      build: fc.option(fc.string(), { nil: null }),
      machine: fc.string(),
      goals: fc.array(fc.record({ goal: fc.string(), verdict })),
    });
    const breakage = fc.oneof(
      fc.record({ field: fc.constantFrom('startedAt', 'mode', 'build', 'machine', 'goals'), value: fc.jsonValue() }),
      fc.record({ field: fc.constant('verdict'), value: fc.jsonValue() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(logged, { maxLength: 4 }), breakage, async (runs, { field, value }) => {
        writeFileSync(file, JSON.stringify({ runs }));
        // As JSON gives them back (fast-check makes some records without a prototype).
        assert.deepEqual(await readRunLog(file), JSON.parse(JSON.stringify(runs)));
        const broken = structuredClone(
          runs[0] ?? { startedAt: 'x', mode: 'full', build: null, machine: 'm', goals: [] },
        );
        if (field === 'verdict') broken.goals.push({ goal: 'g', verdict: value as Verdict });
        else (broken as unknown as Record<string, unknown>)[field] = value;
        const stillValid =
          (field === 'verdict' && ['met', 'not met', 'undecided'].includes(value as string)) ||
          (field === 'mode' && (value === 'full' || value === 'quick')) ||
          ((field === 'startedAt' || field === 'machine') && typeof value === 'string') ||
          (field === 'build' && (value === null || typeof value === 'string')) ||
          (field === 'goals' && Array.isArray(value) && value.length === 0);
        writeFileSync(file, JSON.stringify({ runs: [...runs, broken] }));
        if (stillValid) assert.equal((await readRunLog(file)).length, runs.length + 1);
        else await assert.rejects(readRunLog(file), new RegExp(`run ${runs.length + 1} is not a logged run`));
      }),
      { numRuns: 300 },
    );
  });

  it('names a build by its files as they are, committed or not, and gives null outside git', () => {
    const repo = join(dir, 'repo');
    mkdirSync(join(repo, 'src'), { recursive: true });
    const git = (...args: string[]) => {
      const result = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], {
        cwd: repo,
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, result.stderr);
      return result.stdout.trim();
    };
    assert.equal(buildId(repo), null, 'not a repository yet');
    git('init', '-q');
    writeFileSync(join(repo, 'src', 'a.ts'), 'export const a = 1;\n');
    writeFileSync(join(repo, 'package-lock.json'), '{}\n');
    writeFileSync(join(repo, 'README.md'), 'one\n');
    git('add', '.');
    git('commit', '-q', '-m', 'one');
    const first = buildId(repo);
    assert.match(first ?? '', /^[0-9a-f]{12}$/);
    // Outside the build, nothing measured changes.
    writeFileSync(join(repo, 'README.md'), 'two\n');
    assert.equal(buildId(repo), first);
    // A change not yet committed is a build of its own, and committing it changes nothing.
    writeFileSync(join(repo, 'src', 'a.ts'), 'export const a = 2;\n');
    const second = buildId(repo);
    assert.notEqual(second, first);
    git('commit', '-q', '-am', 'two');
    assert.equal(buildId(repo), second);
    writeFileSync(join(repo, 'package-lock.json'), '{"lockfileVersion": 3}\n');
    assert.notEqual(buildId(repo), second, 'the locked dependencies are part of it');
    writeFileSync(join(repo, 'package-lock.json'), '{}\n');
    // The same files are the same build, whatever commit they sit in; the repository's index is left alone.
    writeFileSync(join(repo, 'src', 'a.ts'), 'export const a = 1;\n');
    assert.equal(buildId(repo), first);
    assert.equal(git('status', '--porcelain', '--', 'src'), 'M src/a.ts');
    assert.equal(git('diff', '--cached', '--name-only'), '');
    // The benchmark's code is named apart, and its results are not part of it.
    assert.equal(harnessId(repo), null, 'no bench/ or scripts/ here yet');
    mkdirSync(join(repo, 'bench', 'results'), { recursive: true });
    writeFileSync(join(repo, 'bench', 'run.ts'), 'run();\n');
    const harness = harnessId(repo);
    assert.match(harness ?? '', /^[0-9a-f]{12}$/);
    writeFileSync(join(repo, 'bench', 'results', 'latest.md'), 'figures\n');
    assert.equal(harnessId(repo), harness);
    assert.equal(buildId(repo), first, 'nor is it part of the build');
    writeFileSync(join(repo, 'bench', 'run.ts'), 'run(2);\n');
    assert.notEqual(harnessId(repo), harness);
  });
});

describe('bench goals across runs', () => {
  const ingestOnly = judgeGoals({
    ingest: {
      runs: [
        {
          store: 'SQLite',
          reports: 1000,
          committed: 1000,
          afterStop: 1000,
          perSecond: 80_000,
          cpuPerReportUs: 10,
          firstCommitSeconds: 1,
        },
      ],
      relay: [150_000],
    },
  });
  const ingestGoal = ingestOnly.find((g) => g.goal.startsWith('ingest'))?.goal ?? '';
  const logged = (build: string, verdicts: Verdict[], mode: LoggedRun['mode'] = 'full'): LoggedRun => ({
    startedAt: '2026-11-30T12:00:00.000Z',
    mode,
    build,
    machine: '2 × test CPU',
    goals: ingestOnly.map((g, i) => ({ goal: g.goal, verdict: verdicts[i] ?? 'undecided' })),
  });

  it("shows each goal's tally over this build's runs, and a chart of the latest runs of this mode", () => {
    const ingestAt = ingestOnly.findIndex((g) => g.goal === ingestGoal);
    const verdicts = (ingest: Verdict) => ingestOnly.map((_, i) => (i === ingestAt ? ingest : 'undecided'));
    const runs = [
      logged('old', verdicts('not met')),
      logged('new', verdicts('not met')),
      logged('new', verdicts('met'), 'quick'),
      logged('new', verdicts('met')),
    ];
    const figure = goalsFigure(ingestOnly, 'full', { runs, build: 'new' });
    assert.deepEqual(figure.columns, ['goal', 'this run', 'runs of this build', 'measured']);
    const row = figure.rows.find((r) => r[0] === ingestGoal);
    assert.deepEqual(row?.slice(0, 3), [ingestGoal, 'met', 'met in 1 of 2 full runs']);
    const chart = figure.chart as VerdictChartSpec;
    assert.equal(chart.kind, 'verdicts');
    assert.deepEqual(
      chart.runs.map((r) => [r.build, r.verdicts[ingestAt]]),
      [
        ['old', 'not met'],
        ['new', 'not met'],
        ['new', 'met'],
      ],
      'the full runs only, oldest first',
    );
    // Without the log (a run of some figures only), the table is as it was, with no chart.
    const alone = goalsFigure(ingestOnly, 'full');
    assert.deepEqual(alone.columns, ['goal', 'this run', 'measured']);
    assert.equal(alone.chart, undefined);
  });

  it('draws a cell per verdict, a line between builds, and escapes what it writes', () => {
    const spec: VerdictChartSpec = {
      kind: 'verdicts',
      title: 'Goals <run by run> & more',
      goals: ['p50 <script>alert(1)</script>', 'cpu'],
      runs: [
        { label: 'r1', build: 'a', verdicts: ['met', 'not met'] },
        { label: 'r2', build: 'a', verdicts: ['undecided', null] },
        { label: 'r3', build: 'b&c', verdicts: ['not met', 'met'] },
      ],
    };
    const svg = drawChart(spec);
    assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
    assert.equal(svg.match(/<rect x="\d+" y="\d+" width="26"/g)?.length, 5, 'one cell per verdict given');
    assert.equal((svg.match(/fill="#59a14f"><title>/g) ?? []).length, 2);
    assert.equal((svg.match(/fill="#e15759"><title>/g) ?? []).length, 2);
    assert.equal((svg.match(/stroke-width="1.5"/g) ?? []).length, 1, 'one change of build');
    assert.ok(!svg.includes('<script>') && svg.includes('&lt;script&gt;'));
    assert.ok(svg.includes('build b&amp;c</title>b&amp;c') && svg.includes('&lt;run by run&gt; &amp; more'));
    // Runs whose build git could not name are each their own.
    const unnamed = drawChart({
      ...spec,
      runs: [0, 1, 2].map((i) => ({ label: `r${i}`, build: null, verdicts: ['met', 'met'] as Verdict[] })),
    });
    assert.equal((unnamed.match(/stroke-width="1.5"/g) ?? []).length, 2);
  });
});
