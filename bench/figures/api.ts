import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import WebSocket from 'ws';
import type { Broker } from '../lib/brokers.ts';
import { type HttpLoadResult, httpLoad } from '../lib/http-load.ts';
import { connectClient } from '../lib/mqtt-load.ts';
import { sleep, startProcess, tsNode } from '../lib/processes.ts';
import { progress } from '../lib/progress.ts';
import { type FigureResult, fmt, fmtRatio } from '../lib/report.ts';
import { type Distribution, distribution, ratio } from '../lib/stats.ts';
import { discover, sensorConfig, startTriad, type TriadProcess } from '../lib/triad.ts';

export interface ApiPlan {
  connections: number;
  httpSeconds: number;
  clients: number;
  fanoutRate: number;
  fanoutSeconds: number;
}

export interface FanoutResult {
  sent: number;
  /** Deliveries expected: every change to every client. */
  expected: number;
  delivered: number;
  /** Milliseconds from the MQTT report to each client's receipt. */
  latency: Distribution;
}

export interface ApiResult {
  triadHttp: HttpLoadResult;
  floorHttp: HttpLoadResult;
  triadFanout: FanoutResult;
  floorFanout: FanoutResult;
}

/** The reported temperature carries the report's number, so every receipt can be timed. */
const reportedValue = (seq: number) => Math.round((10 + (seq % 10_000) / 100) * 100) / 100;

/**
 * Publishes `rate` reports a second and times their arrival at every listener. `listen` attaches
 * the listeners and returns a function that records a receipt of a value (or null to ignore).
 */
async function fanout(
  broker: Broker,
  topic: string,
  plan: ApiPlan,
  onReceipt: (record: (value: number) => void) => Promise<() => Promise<void>>,
): Promise<FanoutResult> {
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const close = await onReceipt((value) => {
    const t = sentAt.get(value);
    if (t !== undefined) latencies.push(performance.now() - t);
  });
  const publisher = await connectClient(broker.url, 'fanout');
  const total = Math.round(plan.fanoutRate * plan.fanoutSeconds);
  try {
    for (let seq = 0; seq < total; seq++) {
      const value = reportedValue(seq);
      sentAt.set(value, performance.now());
      publisher.publish(topic, JSON.stringify({ temperature: value }), { qos: 0 });
      await sleep(1000 / plan.fanoutRate);
    }
    const expected = total * plan.clients;
    const deadline = performance.now() + 5000;
    while (latencies.length < expected && performance.now() < deadline) await sleep(20);
    return { sent: total, expected, delivered: latencies.length, latency: distribution(latencies) };
  } finally {
    await publisher.endAsync();
    await close();
  }
}

/**
 * One API token for each of `count` clients, made by the owner: a hundred dashboards are a hundred
 * people's phones, each with its own token, and the hub keeps at most MAX_STREAMS_PER_TOKEN streams
 * open on one token (a hundred on the owner's were refused with 429 from the 33rd).
 */
async function clientTokens(triad: TriadProcess, count: number): Promise<string[]> {
  const users = (await (await triad.api('/api/users')).json()) as Array<{ id: string; role: string }>;
  const owner = users.find((u) => u.role === 'owner');
  if (!owner) throw new Error('the hub has no owner account to make the fan-out clients tokens for');
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await triad.api('/api/tokens', {
      method: 'POST',
      body: JSON.stringify({ user: owner.id, name: `bench fan-out ${i}` }),
    });
    if (response.status !== 201) throw new Error(`POST /api/tokens: ${response.status} ${await response.text()}`);
    tokens.push(((await response.json()) as { token: string }).token);
  }
  return tokens;
}

async function wsClients(
  triad: TriadProcess,
  thing: string,
  count: number,
  record: (value: number) => void,
): Promise<() => Promise<void>> {
  const url = `${triad.url.replace('http', 'ws')}/api/stream`;
  const tokens = await clientTokens(triad, count);
  const sockets = await Promise.all(
    tokens.map(
      (token) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
          ws.once('error', reject);
          ws.on('message', (data) => {
            const message = JSON.parse(data.toString()) as { type: string; thing?: string; value?: unknown };
            if (message.type === 'subscribed') resolve(ws);
            else if (message.type === 'state' && message.thing === thing && typeof message.value === 'number')
              record(message.value);
          });
          ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', things: ['*'] })));
        }),
    ),
  );
  return async () => {
    for (const ws of sockets) ws.close();
  };
}

async function mqttClients(
  broker: Broker,
  topic: string,
  count: number,
  record: (value: number) => void,
): Promise<() => Promise<void>> {
  const clients: MqttClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await connectClient(broker.url, `fan-${i}`);
    client.on('message', (_t, payload) =>
      record((JSON.parse(payload.toString()) as { temperature: number }).temperature),
    );
    await client.subscribeAsync(topic, { qos: 0 });
    clients.push(client);
  }
  return async () => {
    await Promise.all(clients.map((c) => c.endAsync()));
  };
}

export async function measureApi(broker: Broker, plan: ApiPlan): Promise<ApiResult> {
  progress.show('API · starting Triad and discovering a sensor');
  const triad = await startTriad({ brokerUrl: broker.url });
  try {
    const ids = await discover(triad, broker.url, [{ ...sensorConfig('bench-api'), name: 'Bench bench-api' }]);
    const thing = ids.get('Bench bench-api') ?? '';
    const topic = 'bench/sensor/bench-api';
    const seed = await connectClient(broker.url, 'seed');
    await seed.publishAsync(topic, JSON.stringify({ temperature: 21.5 }));
    await seed.endAsync();
    await sleep(300);
    const path = `/api/things/${thing}`;
    const body = await (await triad.api(path)).text();
    const bodyFile = join(triad.dataDir, 'bench-thing.json');
    await writeFile(bodyFile, body);
    const { command, args } = tsNode('http-floor.ts', [bodyFile]);
    const floorServer = await startProcess({ name: 'http floor', command, args, ready: /http floor listening on \d+/ });
    const floorPort = Number(/listening on (\d+)/.exec(floorServer.output())?.[1]);
    progress.show(`API · GET ${path} · ${plan.connections} connections · ${plan.httpSeconds} s`);
    const triadHttp = await httpLoad(
      triad.url + path,
      { authorization: `Bearer ${triad.token}` },
      plan.connections,
      plan.httpSeconds,
    );
    progress.show(`API · bare node:http floor · ${plan.connections} connections · ${plan.httpSeconds} s`);
    const floorHttp = await httpLoad(`http://127.0.0.1:${floorPort}${path}`, {}, plan.connections, plan.httpSeconds);
    await floorServer.stop();
    progress.show(`API · WebSocket fan-out to ${plan.clients} clients`);
    const triadFanout = await fanout(broker, topic, plan, (record) => wsClients(triad, thing, plan.clients, record));
    progress.show(`API · MQTT fan-out to ${plan.clients} subscribers (floor)`);
    const floorFanout = await fanout(broker, topic, plan, (record) => mqttClients(broker, topic, plan.clients, record));
    return { triadHttp, floorHttp, triadFanout, floorFanout };
  } finally {
    await triad.stop();
  }
}

export function apiFigure(r: ApiResult, brokerName: string, plan: ApiPlan, setup: string): FigureResult {
  const refused = Object.entries(r.triadHttp.statuses).filter(([status]) => status !== '200');
  const rows = [
    [
      'GET /api/things/{id}',
      'Triad',
      fmt(r.triadHttp.latency.p50),
      fmt(r.triadHttp.latency.p99),
      `${fmt(r.triadHttp.perSecond)} req/s`,
      `${fmtRatio(ratio(r.triadHttp.latency.p50, r.floorHttp.latency.p50))} / ${fmtRatio(ratio(r.triadHttp.latency.p99, r.floorHttp.latency.p99))}`,
    ],
    [
      'GET (same body)',
      'bare node:http (floor)',
      fmt(r.floorHttp.latency.p50),
      fmt(r.floorHttp.latency.p99),
      `${fmt(r.floorHttp.perSecond)} req/s`,
      '1×',
    ],
    [
      `fan-out to ${plan.clients}`,
      'Triad WebSocket /api/stream',
      fmt(r.triadFanout.latency.p50),
      fmt(r.triadFanout.latency.p99),
      `${r.triadFanout.delivered}/${r.triadFanout.expected} delivered`,
      `${fmtRatio(ratio(r.triadFanout.latency.p50, r.floorFanout.latency.p50))} / ${fmtRatio(ratio(r.triadFanout.latency.p99, r.floorFanout.latency.p99))}`,
    ],
    [
      `fan-out to ${plan.clients}`,
      `${brokerName} → MQTT subscribers (floor)`,
      fmt(r.floorFanout.latency.p50),
      fmt(r.floorFanout.latency.p99),
      `${r.floorFanout.delivered}/${r.floorFanout.expected} delivered`,
      '1×',
    ],
  ];
  return {
    id: 'api',
    title: 'Figure 5 · API under load',
    setup,
    columns: ['what', 'system', 'p50 ms', 'p99 ms', 'throughput', '÷ floor p50 / p99'],
    rows,
    notes: [
      ...(refused.length
        ? [
            `Triad answered ${refused.map(([status, n]) => `${n} × ${status}`).join(', ')} besides its ${r.triadHttp.requests} × 200; only the 200s are timed.${r.triadHttp.statuses['429'] ? ' 429 is the per-token API rate limit: `triad start --config` does not yet pass `rateLimits` to the hub, so the benchmark cannot raise it.' : ''}`,
          ]
        : []),
      `GET: ${plan.connections} keep-alive connections, closed loop, ${plan.httpSeconds} s; the floor answers the same bytes from a bare node:http server.`,
      `Fan-out: ${plan.fanoutRate} reports/s for ${plan.fanoutSeconds} s on MQTT, timed from the report to its arrival at each of ${plan.clients} clients; the floor is the broker delivering the report itself to ${plan.clients} MQTT subscribers.`,
    ],
    raw: r,
    chart: {
      title: 'API latency (ms), lower is better',
      unit: 'latency, ms',
      groups: ['GET p50', 'GET p99', 'fan-out p50', 'fan-out p99'],
      series: [
        {
          name: 'Triad',
          values: [
            r.triadHttp.latency.p50,
            r.triadHttp.latency.p99,
            r.triadFanout.latency.p50,
            r.triadFanout.latency.p99,
          ],
        },
        {
          name: 'floor',
          values: [
            r.floorHttp.latency.p50,
            r.floorHttp.latency.p99,
            r.floorFanout.latency.p50,
            r.floorFanout.latency.p99,
          ],
        },
      ],
      log: true,
    },
  };
}
