import WebSocket from 'ws';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { hidePasswords } from '../../core/redact.ts';
import type { VissError } from './errors.ts';
import { VISS_SUBPROTOCOLS } from './protocol.ts';

/** A value a vehicle reported: the path, its string value and when the vehicle captured it. */
export interface ReceivedPoint {
  path: string;
  value: unknown;
  ts: number;
}

/** A request the vehicle answered with an error. */
export class VissRequestError extends Error {
  constructor(readonly error: VissError) {
    super(`${error.number} ${error.reason}: ${error.description}`);
    this.name = 'VissRequestError';
  }
}

export interface VissClientOptions {
  url: string;
  clock: Clock;
  log: Logger;
  /** Sent as `Authorization: Bearer` on the upgrade, for servers that want one. */
  token?: string;
  /** Called each time the connection opens (to subscribe again) and closes. */
  onConnect: () => void;
  onDisconnect: () => void;
  /** Values from a subscription event. */
  onPoints: (points: ReceivedPoint[]) => void;
  /**
   * The vehicle ended one of our subscriptions: an error event for it (VISS core: the server
   * terminates the subscription after one), or an `unsubscribe` we did not ask for.
   */
  onSubscriptionEnded?: (subscriptionId: string, error: VissError | null) => void;
  requestTimeoutMs?: number;
  /** First and longest wait before reconnecting; the wait doubles in between. */
  backoff?: { initialMs: number; maxMs: number };
}

interface Pending {
  resolve: (message: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  cancel: () => void;
}

/**
 * A VISS client over WebSocket: correlates answers with requests by requestId, hands subscription
 * events on as points, and reconnects with doubling back-off on the injected clock, so a car that
 * drops off the network is picked up again without anyone noticing.
 */
export class VissClient {
  private socket: WebSocket | null = null;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private attempt = 0;
  private cancelRetry: (() => void) | null = null;
  private stopped = true;

  constructor(private readonly options: VissClientOptions) {}

  /** The car's address as the log shows it: a gateway's password is not for the log's readers. */
  private get shownUrl(): string {
    return hidePasswords(this.options.url);
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelRetry?.();
    this.cancelRetry = null;
    const socket = this.socket;
    this.socket = null;
    this.failPending(new Error('the VISS client stopped'));
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.terminate();
      });
    }
  }

  /** Sends a request and resolves with the vehicle's answer; an error answer rejects. */
  request(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN)
      return Promise.reject(new Error('not connected to the vehicle'));
    const requestId = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const cancel = this.options.clock.setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error('the vehicle did not answer in time'));
      }, this.options.requestTimeoutMs ?? 10_000);
      this.pending.set(requestId, { resolve, reject, cancel });
      socket.send(JSON.stringify({ ...body, requestId }));
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const headers: Record<string, string> = this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
    const socket = new WebSocket(this.options.url, [...VISS_SUBPROTOCOLS], { headers, maxPayload: 4 * 1024 * 1024 });
    this.socket = socket;
    socket.on('open', () => {
      this.attempt = 0;
      this.options.log.info('connected to vehicle', { url: this.shownUrl, protocol: socket.protocol });
      this.options.onConnect();
    });
    socket.on('message', (data: Buffer) => this.receive(data.toString('utf8')));
    socket.on('error', (error) =>
      this.options.log.debug('VISS connection error', { url: this.shownUrl, error: String(error) }),
    );
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.failPending(new Error('the connection to the vehicle closed'));
      this.options.onDisconnect();
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 1_000, maxMs: 60_000 };
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    // Jitter keeps several hubs from knocking on a rebooted gateway in lockstep.
    const delay = base * (0.8 + Math.random() * 0.4);
    this.cancelRetry = this.options.clock.setTimeout(() => {
      this.cancelRetry = null;
      this.connect();
    }, delay);
  }

  private receive(text: string): void {
    let message: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
      message = parsed as Record<string, unknown>;
    } catch {
      this.options.log.debug('vehicle sent a message that is not JSON', { url: this.shownUrl });
      return;
    }
    const subscriptionId = subscriptionIdOf(message.subscriptionId);
    if (message.action === 'subscription') {
      const error = errorOf(message.error);
      if (error && subscriptionId !== null) this.options.onSubscriptionEnded?.(subscriptionId, error);
      else if (message.data !== undefined) this.options.onPoints(pointsOf(message.data));
      return;
    }
    const requestId = typeof message.requestId === 'string' ? message.requestId : undefined;
    const waiting = requestId ? this.pending.get(requestId) : undefined;
    if (!requestId || !waiting) {
      // The hub never unsubscribes on its own connection: one it did not ask for is the car's.
      if (message.action === 'unsubscribe' && subscriptionId !== null)
        this.options.onSubscriptionEnded?.(subscriptionId, errorOf(message.error));
      return;
    }
    this.pending.delete(requestId);
    waiting.cancel();
    const error = errorOf(message.error);
    if (error) waiting.reject(new VissRequestError(error));
    else waiting.resolve(message);
  }

  private failPending(error: Error): void {
    for (const waiting of this.pending.values()) {
      waiting.cancel();
      waiting.reject(error);
    }
    this.pending.clear();
  }
}

/** The points in a get answer's or an event's `data`: one object or an array, each `dp` one or many. */
export function pointsOf(data: unknown): ReceivedPoint[] {
  const entries = Array.isArray(data) ? data : [data];
  const points: ReceivedPoint[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { path, dp } = entry as { path?: unknown; dp?: unknown };
    if (typeof path !== 'string') continue;
    for (const point of Array.isArray(dp) ? dp : [dp]) {
      if (typeof point !== 'object' || point === null) continue;
      const { value, ts } = point as { value?: unknown; ts?: unknown };
      const time = typeof ts === 'string' ? Date.parse(ts) : Number.NaN;
      if (value === undefined || (typeof value === 'string' && value.startsWith('viss-inline:'))) continue;
      points.push({ path, value, ts: Number.isFinite(time) ? time : Number.NaN });
    }
  }
  return points;
}

/** An error in either version's spelling (`message` in v2, `description` in v3). */
function errorOf(raw: unknown): VissError | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const e = raw as Record<string, unknown>;
  return {
    number: Number(e.number) || 0,
    reason: typeof e.reason === 'string' ? e.reason : 'unknown',
    description: typeof e.description === 'string' ? e.description : typeof e.message === 'string' ? e.message : '',
  };
}

/** A subscription id as either version sends it: a string, or a number some servers use. */
export function subscriptionIdOf(raw: unknown): string | null {
  if (typeof raw === 'string' && raw.length > 0 && raw.length <= 128) return raw;
  return typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : null;
}
