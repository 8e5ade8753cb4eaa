import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import mqtt, { type MqttClient } from 'mqtt';
import { type Distribution, distribution } from './stats.ts';

/**
 * Connects an MQTT client with Nagle's algorithm off, as a device or a careful hub would: the load
 * generator must not add its own delayed-ACK waits to the figures it measures.
 */
export async function connectClient(url: string, name: string): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    clientId: `bench-${name}-${randomBytes(3).toString('hex')}`,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clean: true,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => {
      (client.stream as Socket | undefined)?.setNoDelay?.(true);
      resolve();
    });
    client.once('error', reject);
  });
  return client;
}

export interface RoundTripOptions {
  brokerUrl: string;
  /** Reports per second, open loop: reports go out on schedule whether or not answers come back. */
  rate: number;
  seconds: number;
  /** Topic and payload of report number `seq`. */
  report: (seq: number) => { topic: string; payload: string };
  /** Where the answers (commands, or the relayed reports for the floor) arrive. */
  answerTopic: string;
  /**
   * How an answer is matched to its report: 'seq' reads `seq` from the answer's JSON; 'order'
   * takes the n-th answer as the answer to the n-th report (for systems whose command payload
   * cannot carry the report's number; then a lost message shifts the later pairs, and a lead-in
   * report lost files the first measured answer as the lead-in's, so the measured figures are
   * approximate whenever `lost` is not 0).
   */
  correlate: 'seq' | 'order';
  /** How long to wait for stragglers after the last report. */
  drainMs?: number;
  /**
   * Seconds of reports at the same rate sent first and left out of the latency, straight before
   * the measured ones (no pause between them). Their losses still count.
   */
  leadInSeconds?: number;
  /** Called when the first measured report is due (after the lead-in); e.g. to read CPU counters. */
  onStart?: () => void;
  /**
   * The device's confirmation, published by the answering side for each answer, as a real fan
   * reports its new state after a command (Triad waits for it to close the command's lifecycle).
   */
  confirm?: { topic: string; payload: string };
}

export interface RoundTripResult {
  rate: number;
  sent: number;
  received: number;
  lost: number;
  /** Milliseconds from a report's publication to its answer's arrival (measured reports only). */
  latency: Distribution;
  /** Answers to measured reports (`received` counts the lead-in's too). */
  measured: number;
  /** The lead-in's latency, when there was one: how the system met the rate from where it stood. */
  leadIn: Distribution | null;
  /**
   * Seconds the measured reports took to go out (a slow publisher shows up here, not as latency).
   * `sent`, `received` and `lost` count the lead-in's reports too.
   */
  sendSeconds: number;
  /**
   * The load generator's own CPU while it sent the measured reports, as a share of one core: it publishes, times the
   * answers and sends the fan's confirmations on one event loop, and near 1 its own queue delays
   * the answers it times, so the latency is partly its own.
   */
  generatorCpu: number;
}

/** Publishes reports at a fixed rate and times each answer: the round trip through a system. */
export async function roundTrip(options: RoundTripOptions): Promise<RoundTripResult> {
  const lead = Math.round(options.rate * (options.leadInSeconds ?? 0));
  const measuredTotal = Math.max(1, Math.round(options.rate * options.seconds));
  const total = lead + measuredTotal;
  const sentAt = new Float64Array(total);
  const latencies = new Float64Array(measuredTotal);
  const leadLatencies = new Float64Array(lead);
  /** Reports answered, so an answer that comes twice is counted once. */
  const answered = new Uint8Array(total);
  let received = 0;
  let measured = 0;
  let lastArrival = performance.now();
  const subscriber = await connectClient(options.brokerUrl, 'answers');
  const publisher = await connectClient(options.brokerUrl, 'reports');
  try {
    const confirm = options.confirm;
    subscriber.on('message', (_topic, payload) => {
      const now = performance.now();
      lastArrival = now;
      if (confirm) subscriber.publish(confirm.topic, confirm.payload, { qos: 0 });
      let seq = received;
      if (options.correlate === 'seq') {
        try {
          seq = (JSON.parse(payload.toString()) as { seq?: number }).seq ?? -1;
        } catch {
          seq = -1;
        }
      }
      if (seq < 0 || seq >= total || sentAt[seq] === 0 || answered[seq]) return;
      answered[seq] = 1;
      received++;
      if (seq < lead) leadLatencies[received - measured - 1] = now - sentAt[seq];
      else latencies[measured++] = now - sentAt[seq];
    });
    await subscriber.subscribeAsync(options.answerTopic, { qos: 0 });
    const started = performance.now();
    let measuredFrom = started;
    let cpuAtStart = process.cpuUsage();
    let sent = 0;
    while (sent < total) {
      const elapsed = performance.now() - started;
      const due = Math.min(total, Math.floor((elapsed / 1000) * options.rate) + 1);
      while (sent < due) {
        if (sent === lead) {
          // The measured part starts here (at once without a lead-in): CPU is counted from now.
          options.onStart?.();
          measuredFrom = performance.now();
          cpuAtStart = process.cpuUsage();
        }
        const { topic, payload } = options.report(sent);
        sentAt[sent] = performance.now();
        publisher.publish(topic, payload, { qos: 0 });
        sent++;
      }
      // Sleep until the next report is due (a timer wakes at most once a millisecond, so above
      // 1,000/s the reports due by then go out together). Waiting with setImmediate instead spun
      // this process at a full core between reports, and on a two-core machine that core was
      // taken from the broker and the system under test. Behind schedule, only yield to I/O.
      const nextDue = (sent / options.rate) * 1000 - (performance.now() - started);
      if (nextDue > 0) await new Promise((r) => setTimeout(r, Math.min(nextDue, 50)));
      else await new Promise((r) => setImmediate(r));
    }
    const sendSeconds = (performance.now() - measuredFrom) / 1000;
    const cpu = process.cpuUsage(cpuAtStart);
    const generatorCpu = (cpu.user + cpu.system) / 1e6 / sendSeconds;
    const drainMs = options.drainMs ?? 2000;
    lastArrival = performance.now();
    // Answers later than this are counted as lost: a system this far behind has failed the rate.
    const hardStop = performance.now() + 10_000;
    while (received < total && performance.now() - lastArrival < drainMs && performance.now() < hardStop) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return {
      rate: options.rate,
      sent: total,
      received,
      lost: total - received,
      latency: distribution(latencies.subarray(0, measured)),
      measured,
      leadIn: lead > 0 ? distribution(leadLatencies.subarray(0, received - measured)) : null,
      sendSeconds,
      generatorCpu,
    };
  } finally {
    await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
  }
}

/**
 * Waits until nothing has arrived on `topic` for `quietMs` (at most `maxMs`), so a system still
 * working through a backlog cannot leak its answers into the next trial.
 */
export async function settle(brokerUrl: string, topic: string, quietMs = 1000, maxMs = 60_000): Promise<void> {
  const client = await connectClient(brokerUrl, 'settle');
  try {
    let last = performance.now();
    client.on('message', () => {
      last = performance.now();
    });
    await client.subscribeAsync(topic, { qos: 0 });
    const started = performance.now();
    while (performance.now() - last < quietMs && performance.now() - started < maxMs) {
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await client.endAsync();
  }
}

/**
 * Publishes `count` messages as fast as the socket takes them, pausing on back-pressure so the
 * publisher's own memory stays flat. Resolves with the time the first one went out.
 */
export async function flood(
  client: MqttClient,
  count: number,
  message: (i: number) => { topic: string; payload: string },
): Promise<number> {
  const started = performance.now();
  const chunk = 200;
  for (let i = 0; i < count; i += chunk) {
    const end = Math.min(count, i + chunk);
    for (let j = i; j < end - 1; j++) {
      const { topic, payload } = message(j);
      client.publish(topic, payload, { qos: 0 });
    }
    const { topic, payload } = message(end - 1);
    await client.publishAsync(topic, payload, { qos: 0 });
  }
  return started;
}

/** The broker's own relay rate: messages per second from one publisher through to one subscriber. */
export async function relayRate(brokerUrl: string, count: number): Promise<{ perSecond: number; received: number }> {
  const subscriber = await connectClient(brokerUrl, 'relay-sub');
  const publisher = await connectClient(brokerUrl, 'relay-pub');
  try {
    let received = 0;
    let last = 0;
    subscriber.on('message', () => {
      received++;
      last = performance.now();
    });
    await subscriber.subscribeAsync('bench/relay/#', { qos: 0 });
    const started = await flood(publisher, count, (i) => ({
      topic: `bench/relay/${i % 100}`,
      payload: `{"temperature":${20 + (i % 1000) / 100},"seq":${i}}`,
    }));
    let lastSeen = performance.now();
    let seen = received;
    while (received < count && performance.now() - lastSeen < 2000) {
      await new Promise((r) => setTimeout(r, 10));
      if (received !== seen) {
        seen = received;
        lastSeen = performance.now();
      }
    }
    return { perSecond: received / ((last - started) / 1000), received };
  } finally {
    await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
  }
}
