import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { PublishReader } from './publish-reader.ts';
import { encodePublish } from './publish-writer.ts';

export interface MqttMessageMeta {
  retain: boolean;
}

export type MqttHandler = (topic: string, payload: Buffer, meta: MqttMessageMeta) => void;

/** MQTT's delivery guarantees: at most once, at least once, exactly once. */
export type MqttQos = 0 | 1 | 2;

/** The hub's one connection to its MQTT broker, shared by every MQTT-speaking adapter. */
export interface MqttLink {
  /**
   * Subscribes `handler` to a topic filter, at `qos` (0 unless given); returns the function that
   * unsubscribes it.
   */
  subscribe(filter: string, handler: MqttHandler, options?: { qos?: MqttQos }): Promise<() => Promise<void>>;
  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean; qos?: MqttQos }): Promise<void>;
}

/** True when `topic` matches the MQTT filter (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** How long messages are handled in one event-loop turn before timers and other I/O get theirs. */
const SLICE_MS = 10;
/**
 * The most messages handled in one event-loop turn. What a message starts beyond its synchronous
 * part (a command's bookkeeping, a run that waits, a store write's follow-up) goes on in promise
 * callbacks, and those run only once the turn's messages are done: a flood read a thousand at a
 * time held a thousand reports' worth of them. (It once left a thousand rule runs "running" and a
 * rule at `mode: parallel, max: 1000` skipped the reports after them; runs that do not wait now
 * end within their report's handling, see the automation runtime's `proceed`.)
 */
const SLICE_MESSAGES = 256;
/** Queued messages past which the socket is paused, and below which it is read again. */
const QUEUE_HIGH = 4_000;
const QUEUE_LOW = 1_000;
/** Every message's meta is one of these two, so a report allocates no object for it. */
const RETAINED: MqttMessageMeta = Object.freeze({ retain: true });
const LIVE: MqttMessageMeta = Object.freeze({ retain: false });
const EMPTY = { topic: '', payload: Buffer.alloc(0), meta: LIVE };

export interface MqttConnectionOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
}

/**
 * MQTT.js underneath, with Nagle's algorithm turned off: with it on, a command waits for the next
 * outgoing packet or the delayed-ACK timer, which adds up to tens of milliseconds per automation.
 */
export class MqttConnection implements MqttLink {
  private client: MqttClient | null = null;
  /** Handlers by filter. Exact topics are found by one map lookup; only wildcard filters are scanned. */
  private readonly routes = new Map<string, Set<MqttHandler>>();
  /**
   * Wildcard filters with the literal text before their first wildcard: a topic that does not
   * start with it cannot match, so most reports skip the level-by-level comparison altogether.
   */
  private wildcards: Array<{ filter: string; prefix: string; handlers: Set<MqttHandler> }> = [];

  /**
   * Messages waiting for their turn. A flood arrives faster than it is handled, and libuv reads up
   * to 32 socket chunks (tens of thousands of reports) per poll: handled all at once, they keep
   * timers and other sockets (PostgreSQL's replies, history flushes) waiting for seconds. So after
   * SLICE_MS of handling in one event-loop turn, messages queue here, in order, and are handled
   * a slice per turn; while the queue is long the socket is paused, so memory stays bounded.
   */
  private queue: Array<{ topic: string; payload: Buffer; meta: MqttMessageMeta }> = [];
  private queueHead = 0;
  /** When handling started in this event-loop turn, or -1 before the turn's first message. */
  private turnStart = -1;
  /** Messages handled so far in this event-loop turn. */
  private turnMessages = 0;
  private draining = false;
  private pausedStream: { resume(): unknown } | null = null;
  /**
   * Whether QoS 0 messages go to the socket as one buffer each (publish-writer.ts) rather than
   * through MQTT.js: on the same connections the reader serves, plain and TLS at MQTT 3.1.1.
   */
  private writesPublishes = false;
  /** Whether a read's messages are being handled, their publishes held back (see `read`). */
  private reading = false;
  /** Whether a publish was held back during the current read. */
  private readPublished = false;
  /** The socket while this turn's publishes are held back (see coalesceWrites). */
  private corked: Socket | null = null;
  /**
   * Filters the broker has been asked for and has not answered yet. A second handler for one of
   * them waits for the same answer: returning at once, it was told it was subscribed before the
   * broker said so, and when the broker refused, its handler stayed on a filter no one had.
   */
  private readonly subscribing = new Map<string, Promise<unknown>>();
  /**
   * The QoS each filter was subscribed at: the highest any of its handlers asked for, since the
   * broker keeps one subscription per filter and a device sending at QoS 2 expects it honoured.
   */
  private readonly filterQos = new Map<string, MqttQos>();
  /** What publishes that found the socket's buffer full wait for (see socketDrained). */
  private drainWait: { stream: Socket; promise: Promise<void> } | null = null;

  constructor(private readonly options: MqttConnectionOptions) {}

  async connect(): Promise<void> {
    const opts: IClientOptions = {
      clientId: this.options.clientId,
      username: this.options.username,
      password: this.options.password,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      clean: true,
      // MQTT.js logs through `debug` several times per packet, which costs even when nothing is
      // printed; with no DEBUG namespace set, nothing can be printed, so skip the calls altogether.
      ...(process.env.DEBUG ? {} : { log: () => {} }),
    };
    // Not connected yet: the reader goes in front of MQTT.js first (readPublishes).
    const client = mqtt.connect(this.options.url, { ...opts, manualConnect: true });
    this.client = client;
    this.readPublishes(client);
    client.on('connect', () => {
      const stream = client.stream as Socket | undefined;
      stream?.setNoDelay?.(true);
    });
    // What the reader leaves to MQTT.js (a QoS 1 or 2 message, or every message when it is not used).
    client.on('message', (topic, payload, packet) => this.receive(topic, payload, packet.retain, client));
    client.connect();
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => {
        client.removeListener('connect', onConnect);
        client.end(true);
        reject(new Error(`cannot connect to MQTT broker at ${this.options.url}: ${error.message}`));
      };
      const onConnect = () => {
        client.removeListener('error', onError);
        resolve();
      };
      client.once('connect', onConnect);
      client.once('error', onError);
    });
  }

  /**
   * Puts a PublishReader between each connection's socket and MQTT.js (see publish-reader.ts), for
   * plain and TLS connections at MQTT 3.1.1, the level the hub asks for. MQTT.js makes a new socket
   * for every reconnect through its stream builder and pipes it into its parser; the builder is
   * wrapped so that each new socket's `pipe` feeds the reader instead, and the reader writes what
   * is not a QoS 0 PUBLISH on to MQTT.js's parser. The builder is not in MQTT.js's public types;
   * the tests that run the hub over Mosquitto fail if it moves.
   */
  private readPublishes(client: MqttClient): void {
    const { protocol, protocolVersion } = client.options;
    if (protocolVersion === 5 || !['mqtt', 'mqtts', 'tcp', 'ssl'].includes(protocol ?? '')) return;
    const internals = client as unknown as { streamBuilder: (client: MqttClient) => Duplex };
    const build = internals.streamBuilder;
    if (typeof build !== 'function') return;
    this.writesPublishes = true;
    internals.streamBuilder = (c) => {
      const stream = build(c);
      stream.pipe = <T extends NodeJS.WritableStream>(parser: T): T => {
        const reader = new PublishReader(
          (topic, payload, retain) => this.receive(topic, payload, retain, client),
          (bytes) => parser.write(bytes),
        );
        stream.on('data', (chunk: Buffer) => this.read(stream as Socket, reader, chunk));
        return parser;
      };
      return stream;
    };
  }

  /**
   * One read from the socket, every message in it handled, with the publishes they cause held in
   * the socket until the last is handled and then sent in one write. Reports that came together
   * (a busy broker sends what queued up in one segment) answer together: one system call for
   * their commands instead of one each, and a socket write is the largest part of what a command
   * costs the hub. A command waits at most for the rest of its own read's messages; a read of one
   * message is written as before.
   */
  private read(stream: Socket, reader: PublishReader, chunk: Buffer): void {
    if (this.reading || !stream.cork) {
      reader.feed(chunk);
      return;
    }
    this.reading = true;
    this.readPublished = false;
    stream.cork();
    try {
      reader.feed(chunk);
    } finally {
      this.reading = false;
      const client = this.client;
      if (this.readPublished && !this.draining && client && client.stream === stream) this.writeNow(client);
      else if (stream.writableCorked > 0) stream.uncork();
    }
  }

  /** Every message received, from the reader or MQTT.js: handled now, or queued behind a backlog. */
  private receive(topic: string, payload: Buffer, retain: boolean, client: MqttClient): void {
    const meta = retain ? RETAINED : LIVE;
    if (this.draining) {
      this.enqueue(topic, payload, meta, client);
      return;
    }
    const now = performance.now();
    if (this.turnStart < 0) {
      this.turnStart = now;
      this.turnMessages = 0;
      setImmediate(() => {
        if (!this.draining) this.turnStart = -1;
      });
    } else if (now - this.turnStart > SLICE_MS || this.turnMessages >= SLICE_MESSAGES) {
      this.draining = true;
      this.enqueue(topic, payload, meta, client);
      setImmediate(() => this.drain());
      return;
    }
    this.turnMessages++;
    this.dispatch(topic, payload, meta);
  }

  private dispatch(topic: string, payload: Buffer, meta: MqttMessageMeta): void {
    const exact = this.routes.get(topic);
    if (exact) for (const handler of exact) handler(topic, payload, meta);
    for (const wildcard of this.wildcards) {
      if (!topic.startsWith(wildcard.prefix) || !topicMatches(wildcard.filter, topic)) continue;
      for (const handler of wildcard.handlers) handler(topic, payload, meta);
    }
  }

  private enqueue(topic: string, payload: Buffer, meta: MqttMessageMeta, client: MqttClient): void {
    this.queue.push({ topic, payload, meta });
    if (this.pausedStream || this.queue.length - this.queueHead < QUEUE_HIGH) return;
    const stream = client.stream as unknown as { pause?(): unknown; resume(): unknown } | undefined;
    if (!stream?.pause) return;
    stream.pause();
    this.pausedStream = stream;
  }

  /** Handles queued messages for one slice, then yields to the event loop until the queue is empty. */
  private drain(): void {
    const start = performance.now();
    const queue = this.queue;
    const last = this.queueHead + SLICE_MESSAGES;
    try {
      while (this.queueHead < queue.length) {
        const message = queue[this.queueHead];
        queue[this.queueHead++] = EMPTY;
        this.dispatch(message.topic, message.payload, message.meta);
        if (this.queueHead >= last) break;
        if ((this.queueHead & 63) === 0 && performance.now() - start > SLICE_MS) break;
      }
    } finally {
      // A handler that throws still crashes as before, but the queue keeps its place and its turn.
      this.afterDrain();
    }
  }

  private afterDrain(): void {
    const queue = this.queue;
    if (this.queueHead >= queue.length) {
      this.queue = [];
      this.queueHead = 0;
      this.draining = false;
      this.turnStart = -1;
    } else if (this.queueHead > 4096 && this.queueHead * 2 > queue.length) {
      this.queue = queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (this.pausedStream && this.queue.length - this.queueHead <= QUEUE_LOW) {
      this.pausedStream.resume();
      this.pausedStream = null;
    }
    if (this.draining) setImmediate(() => this.drain());
  }

  async subscribe(filter: string, handler: MqttHandler, options: { qos?: MqttQos } = {}): Promise<() => Promise<void>> {
    const client = this.requireClient();
    const qos = options.qos ?? 0;
    // The handler is in place before the broker is asked, so a retained message that arrives in
    // the same read as the subscription's acknowledgement is not missed.
    let handlers = this.routes.get(filter);
    const isNew = !handlers;
    if (!handlers) {
      handlers = new Set();
      this.routes.set(filter, handlers);
      const first = filter.search(/[+#]/);
      // A new array rather than a push: a handler may subscribe while dispatch walks the old one.
      if (first >= 0) this.wildcards = [...this.wildcards, { filter, prefix: filter.slice(0, first), handlers }];
    }
    handlers.add(handler);
    // Subscribing again at a higher QoS replaces the broker's subscription; it never lowers one.
    const before = this.filterQos.get(filter) ?? 0;
    const ask = isNew || qos > before;
    if (ask) this.filterQos.set(filter, qos);
    const asked = ask ? client.subscribeAsync(filter, { qos }) : this.subscribing.get(filter);
    if (asked) {
      if (ask) this.subscribing.set(filter, asked);
      try {
        await asked;
      } catch (error) {
        // The broker refused a higher QoS: the subscription it has keeps the one it had.
        if (!isNew && this.filterQos.get(filter) === qos) this.filterQos.set(filter, before);
        // Every handler that waited for this answer goes: without this the route would stay, and
        // a later subscribe to the filter would never ask the broker.
        this.removeRoute(filter, handler);
        throw error;
      } finally {
        if (this.subscribing.get(filter) === asked) this.subscribing.delete(filter);
      }
    }
    return async () => {
      if (this.removeRoute(filter, handler) && this.client?.connected) await this.client.unsubscribeAsync(filter);
    };
  }

  /** Takes `handler` off `filter`; true when that was the filter's last handler. */
  private removeRoute(filter: string, handler: MqttHandler): boolean {
    const set = this.routes.get(filter);
    if (!set) return false;
    set.delete(handler);
    if (set.size > 0) return false;
    this.routes.delete(filter);
    this.filterQos.delete(filter);
    this.wildcards = this.wildcards.filter((w) => w.filter !== filter);
    return true;
  }

  async publish(
    topic: string,
    payload: string | Buffer,
    options: { retain?: boolean; qos?: MqttQos } = {},
  ): Promise<void> {
    const client = this.requireClient();
    const retain = options.retain ?? false;
    const qos = options.qos ?? 0;
    // Working off a backlog, a slice's commands share one write; otherwise each goes out at once.
    if (this.draining) this.coalesceWrites(client);
    if (qos === 0 && client.connected && !client.disconnecting) {
      // Written by the hub as one buffer where the reader serves the connection, else by MQTT.js.
      // Either way with no per-packet callback: MQTT.js, given one, adds a `drain` listener to the
      // socket for every packet written while the socket's buffer is full, and a full buffer is
      // exactly when thousands are written (a backlog's slice is held in one write). When the
      // drain came, each listener took itself out of a list thousands long: at 15,000 reports a
      // second that was 59 % of the hub's main thread, and the reason its highest sustained rate
      // was half Node-RED's. One shared wait per socket instead (socketDrained).
      const stream = client.stream as Socket | undefined;
      if (this.writesPublishes && stream) stream.write(encodePublish(topic, payload, retain));
      else client.publish(topic, payload, { retain, qos });
      if (this.reading) this.readPublished = true;
      else if (!this.draining) this.writeNow(client);
      if (stream?.writableNeedDrain) await this.socketDrained(stream);
      return;
    }
    // Not connected (MQTT.js keeps it until it is), or QoS 1 or 2: settled by MQTT.js, which
    // resolves once the broker has acknowledged it (PUBACK, or PUBCOMP for QoS 2).
    const sent = client.publishAsync(topic, payload, { retain, qos });
    if (!this.draining) this.writeNow(client);
    await sent;
  }

  /**
   * Resolves once `stream` has drained, for every publish that found its buffer full: one pair of
   * listeners however many publishes wait. Rejects if the connection closes first: what was still
   * in the buffer was never sent.
   */
  private socketDrained(stream: Socket): Promise<void> {
    if (this.drainWait?.stream === stream) return this.drainWait.promise;
    const promise = new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        stream.off('drain', drained);
        stream.off('close', closed);
        if (this.drainWait?.promise === promise) this.drainWait = null;
        if (error) reject(error);
        else resolve();
      };
      const drained = () => settle();
      const closed = () => settle(new Error('the MQTT connection closed before the message was written'));
      stream.on('drain', drained);
      stream.on('close', closed);
    });
    this.drainWait = { stream, promise };
    return promise;
  }

  /**
   * Sends what the socket holds, now. A QoS 0 publish is in the socket by the time publishAsync
   * returns, but MQTT.js holds it there (corked) until the next tick, and that comes only after
   * every promise callback already queued: for a rule's command, the hub's bookkeeping for it (its
   * statuses, the run's trace and event). Timed in the hub at 1,000 reports/s, the write went out
   * 20 µs after the publish (p50); now 8 µs. MQTT.js's own uncork, later, finds nothing to do.
   */
  private writeNow(client: MqttClient): void {
    const stream = client.stream as Socket | undefined;
    // A slice's held writes, if a backlog just ended, go out with this one.
    this.corked = null;
    if (!stream || stream.destroyed) return;
    while (stream.writableCorked > 0) stream.uncork();
  }

  /**
   * While a backlog is being worked off, holds the slice's publishes in the socket until the
   * turn's I/O is handled, then sends them in one write: twenty commands answering a burst of
   * reports (a hub catching up after a pause) cost one system call rather than twenty, and a send
   * is most of what a command costs the hub.
   */
  private coalesceWrites(client: MqttClient): void {
    if (this.corked) return;
    const stream = client.stream as Socket | undefined;
    if (!stream?.cork || stream.destroyed) return;
    stream.cork();
    this.corked = stream;
    setImmediate(this.uncork);
  }

  /** Made once: it runs after every publishing turn. */
  private readonly uncork = () => {
    const stream = this.corked;
    this.corked = null;
    stream?.uncork();
  };

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.routes.clear();
    this.wildcards = [];
    this.queue = [];
    this.queueHead = 0;
    this.pausedStream = null;
    if (client) await client.endAsync();
  }

  private requireClient(): MqttClient {
    if (!this.client) throw new Error('MQTT connection is not open');
    return this.client;
  }
}
