import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Distribution, distribution } from './stats.ts';

export interface HttpLoadResult {
  requests: number;
  errors: number;
  /** Answers by HTTP status, so a limiter's 429s are shown, not hidden among errors. */
  statuses: Record<string, number>;
  perSecond: number;
  /** Milliseconds per request. */
  latency: Distribution;
}

/**
 * Closed-loop load (only 200 answers are timed and counted as throughput): `connections` keep-alive connections, each sending its next request as soon
 * as the last answer is read, for `seconds`. Plain node:http keeps the client's own cost low on a
 * machine it shares with the server.
 */
export async function httpLoad(
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<HttpLoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  let errors = 0;
  const statuses: Record<string, number> = {};
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request(url, { agent, headers }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
          if (res.statusCode === 200) latencies.push(performance.now() - t0);
          else errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  const worker = async () => {
    while (performance.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return {
    requests: latencies.length,
    errors,
    statuses,
    perSecond: latencies.length / elapsed,
    latency: distribution(latencies),
  };
}
