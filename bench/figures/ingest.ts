import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Broker } from '../lib/brokers.ts';
import { connectClient, flood, relayRate } from '../lib/mqtt-load.ts';
import { cpuSeconds, sleep } from '../lib/processes.ts';
import { progress } from '../lib/progress.ts';
import { type FigureResult, fmt, fmtRatio } from '../lib/report.ts';
import { median, ratio } from '../lib/stats.ts';
import { discover, sensorConfig, startTriad, type TriadProcess, type TriadStore } from '../lib/triad.ts';

/** Reports spread over this many sensors, as a house (or a street of them) would send. */
const SENSORS = 100;

export interface IngestRun {
  store: string;
  notMeasured?: string;
  reports: number;
  /** Rows found in the store's history table once the hub had committed them. */
  committed: number;
  /** Rows still found after the hub was stopped: what survived as durable history. */
  afterStop: number;
  perSecond: number;
  cpuPerReportUs: number;
  /** Seconds from the first report to the first committed row: how far durable history lags. */
  firstCommitSeconds: number;
  /** The hub's last log lines when rows went missing, to say why. */
  hubLog?: string;
}

export interface IngestPlan {
  reports: number;
  pgUrl: string;
}

/** Counts history rows for the bench sensors, straight from the store, not through the hub. */
type RowCounter = { count(): Promise<number>; close(): Promise<void> };

function sqliteCounter(dataDir: string): RowCounter {
  const db = new Database(join(dataDir, 'triad.db'), { readonly: true, fileMustExist: true });
  const statement = db
    .prepare("SELECT count(*) FROM history WHERE property = 'sensor.temperature' AND thing LIKE 'bench-%'")
    .pluck();
  return {
    count: async () => Number(statement.get()),
    close: async () => {
      db.close();
    },
  };
}

function postgresCounter(url: string, schema: string): RowCounter {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return {
    count: async () => {
      const { rows } = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".history WHERE property = 'sensor.temperature' AND thing LIKE 'bench-%'`,
      );
      return Number(rows[0].n);
    },
    close: () => pool.end(),
  };
}

function ingestReport(i: number): { topic: string; payload: string } {
  // Consecutive reports of one sensor differ (i and i+100 differ mod 1000), so each is a change.
  return {
    topic: `bench/sensor/bench-i${i % SENSORS}`,
    payload: `{"temperature":${(10 + (i % 1000) / 100).toFixed(2)}}`,
  };
}

/** Floods the hub with reports over MQTT and times them into the store's history table. */
async function ingestInto(broker: Broker, store: TriadStore, reports: number): Promise<IngestRun> {
  const label =
    store.kind === 'postgres' ? 'PostgreSQL' : store.writer === 'inline' ? 'SQLite (writes inline)' : 'SQLite';
  let triad: TriadProcess | null = null;
  let counter: RowCounter | null = null;
  try {
    progress.show(`ingest · ${label} · starting Triad and discovering ${SENSORS} sensors`);
    triad = await startTriad({ brokerUrl: broker.url, store });
    const devices = Array.from({ length: SENSORS }, (_, i) => ({
      ...sensorConfig(`bench-i${i}`),
      name: `Bench bench-i${i}`,
    }));
    await discover(triad, broker.url, devices);
    counter = store.kind === 'sqlite' ? sqliteCounter(triad.dataDir) : postgresCounter(store.url, store.schema);
    const baseline = await counter.count();
    const publisher = await connectClient(broker.url, 'ingest');
    const cpuBefore = cpuSeconds(triad.process.pid);
    progress.show(`ingest · ${label} · ${reports} reports`);
    // The first commit is watched for while the flood is still going out (the flood yields every
    // few hundred reports): looked for only afterwards, it read as long as the flood itself.
    let firstCommitAt = Number.NaN;
    let flooding = true;
    const rowCounter = counter;
    const firstCommit = (async () => {
      while (flooding && Number.isNaN(firstCommitAt)) {
        if ((await rowCounter.count()) > baseline) firstCommitAt = performance.now();
        else await sleep(20);
      }
    })().catch(() => {
      // The count after the flood fails the same way and says so; this one only times.
    });
    const started = await flood(publisher, reports, ingestReport).finally(() => {
      flooding = false;
    });
    await firstCommit;
    await publisher.endAsync();
    let committed = 0;
    let doneAt = performance.now();
    let lastChange = performance.now();
    let cpuSeen = cpuSeconds(triad.process.pid);
    const giveUpAt = performance.now() + Math.max(60_000, reports / 1000) * 1000;
    // A hub still working through its backlog may commit nothing for a while: progress is new rows
    // or the hub still burning CPU. Give up after 10 s of neither, or at the hard limit.
    while (performance.now() - lastChange < 10_000 && performance.now() < giveUpAt) {
      const n = (await counter.count()) - baseline;
      const cpuNow = cpuSeconds(triad.process.pid);
      if (n !== committed) {
        if (Number.isNaN(firstCommitAt)) firstCommitAt = performance.now();
        committed = n;
        doneAt = performance.now();
        lastChange = doneAt;
        progress.show(`ingest · ${label} · ${committed}/${reports} committed`);
      } else if (cpuNow - cpuSeen > 0.05) {
        lastChange = performance.now();
        progress.show(`ingest · ${label} · ${committed}/${reports} committed, the hub is still busy`);
      }
      cpuSeen = cpuNow;
      if (committed >= reports) break;
      await sleep(committed === 0 ? 100 : 20);
    }
    const cpu = cpuSeconds(triad.process.pid) - cpuBefore;
    const hubLog =
      committed < reports ? triad.process.output().trim().split('\n').slice(-5).join(' | ').slice(-600) : undefined;
    await triad.stop({ keepData: store.kind === 'sqlite' });
    const afterStop = (await counter.count()) - baseline;
    if (store.kind === 'sqlite') await triad.stop();
    return {
      store: label,
      reports,
      committed,
      afterStop,
      perSecond: committed / ((doneAt - started) / 1000),
      cpuPerReportUs: (cpu / Math.max(1, committed)) * 1e6,
      firstCommitSeconds: (firstCommitAt - started) / 1000,
      hubLog,
    };
  } catch (error) {
    await triad?.stop();
    return {
      store: label,
      notMeasured: (error as Error).message.split('\n')[0],
      reports,
      committed: 0,
      afterStop: 0,
      perSecond: Number.NaN,
      cpuPerReportUs: Number.NaN,
      firstCommitSeconds: Number.NaN,
    };
  } finally {
    await counter?.close();
  }
}

/** A PostgreSQL schema of our own for the run, dropped afterwards; null when the server is not there. */
async function withSchema<T>(url: string, work: (schema: string) => Promise<T>): Promise<T | string> {
  const schema = `triad_bench_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: url });
  try {
    await admin.connect();
  } catch (error) {
    return `PostgreSQL not reachable at ${url}: ${(error as Error).message}`;
  }
  try {
    return await work(schema);
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end();
  }
}

export async function measureIngest(broker: Broker, plan: IngestPlan): Promise<{ runs: IngestRun[]; relay: number[] }> {
  const relay: number[] = [];
  for (let i = 0; i < 3; i++) {
    progress.show(`ingest · ${broker.kind} relay rate, trial ${i + 1}/3`);
    relay.push((await relayRate(broker.url, plan.reports)).perSecond);
  }
  // SQLite as it runs by default (bulk writes on their own thread), and with them on the main
  // thread, as on a one-core machine: what the writer thread is worth.
  const runs = [
    await ingestInto(broker, { kind: 'sqlite' }, plan.reports),
    await ingestInto(broker, { kind: 'sqlite', writer: 'inline' }, plan.reports),
  ];
  const pgRun = await withSchema(plan.pgUrl, (schema) =>
    ingestInto(broker, { kind: 'postgres', url: plan.pgUrl, schema }, plan.reports),
  );
  runs.push(
    typeof pgRun === 'string'
      ? {
          store: 'PostgreSQL',
          notMeasured: pgRun,
          reports: plan.reports,
          committed: 0,
          afterStop: 0,
          perSecond: Number.NaN,
          cpuPerReportUs: Number.NaN,
          firstCommitSeconds: Number.NaN,
        }
      : pgRun,
  );
  return { runs, relay };
}

export function ingestFigure(
  result: { runs: IngestRun[]; relay: number[] },
  brokerName: string,
  setup: string,
): FigureResult {
  const relay = median(result.relay);
  const rows: Array<Array<string | number>> = [[`${brokerName} relay (floor)`, fmt(relay), '–', '–', '–', '1×']];
  const notes: string[] = [];
  for (const run of result.runs) {
    if (run.notMeasured) {
      notes.push(`Triad → ${run.store}: not measured: ${run.notMeasured}`);
      continue;
    }
    rows.push([
      `Triad → ${run.store}`,
      fmt(run.perSecond),
      `${run.committed}/${run.reports} (${run.afterStop} after stop)`,
      fmt(run.cpuPerReportUs),
      fmt(run.firstCommitSeconds),
      fmtRatio(ratio(run.perSecond, relay)),
    ]);
    if (run.hubLog)
      notes.push(
        `Triad → ${run.store} lost ${run.reports - run.committed} reports; the hub's last log lines: ${run.hubLog}`,
      );
  }
  notes.push(
    `Reports are published as fast as the broker takes them, over ${SENSORS} discovered sensors; the rate runs from the first report to the moment the store's history table holds the last one (counted in the store itself, read-only). First row = from the first report to the first committed row, watched for while the reports still go out.`,
    `Floor: ${brokerName} relaying the same number of messages from one publisher to one subscriber (median of 3).`,
  );
  return {
    id: 'ingest',
    title: 'Figure 3 · Ingest to durable history (MQTT → committed rows)',
    setup,
    columns: ['path', 'reports/s', 'rows committed', 'hub CPU µs/report', 'first row after s', '÷ broker relay'],
    rows,
    notes,
    raw: { relayPerSecond: result.relay, runs: result.runs },
    chart: {
      title: 'Reports per second into durable history, higher is better',
      unit: 'reports per second',
      groups: ['throughput'],
      series: [
        { name: `${brokerName} relay (floor)`, values: [relay] },
        ...result.runs.map((r) => ({
          name: `Triad → ${r.store}`,
          values: [Number.isFinite(r.perSecond) ? r.perSecond : null],
        })),
      ],
      log: true,
    },
  };
}
