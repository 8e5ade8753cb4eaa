import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface MqttMessageMeta {
  retain: boolean;
}

export type MqttHandler = (topic: string, payload: Buffer, meta: MqttMessageMeta) => void;

/** The hub's one connection to its MQTT broker, shared by every MQTT-speaking adapter. */
export interface MqttLink {
  /** Subscribes `handler` to a topic filter; returns the function that unsubscribes it. */
  subscribe(filter: string, handler: MqttHandler): Promise<() => Promise<void>>;
  publish(topic: string, payload: string | Buffer, options?: { retain?: boolean; qos?: 0 | 1 }): Promise<void>;
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
  private readonly wildcards = new Set<string>();

  constructor(private readonly options: MqttConnectionOptions) {}

  async connect(): Promise<void> {
    const opts: IClientOptions = {
      clientId: this.options.clientId,
      username: this.options.username,
      password: this.options.password,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      clean: true,
    };
    const client = mqtt.connect(this.options.url, opts);
    this.client = client;
    client.on('connect', () => {
      const stream = client.stream as Socket | undefined;
      stream?.setNoDelay?.(true);
    });
    client.on('message', (topic, payload, packet) => {
      const meta = { retain: packet.retain };
      const exact = this.routes.get(topic);
      if (exact) for (const handler of exact) handler(topic, payload, meta);
      for (const filter of this.wildcards) {
        if (!topicMatches(filter, topic)) continue;
        for (const handler of this.routes.get(filter) ?? []) handler(topic, payload, meta);
      }
    });
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

  async subscribe(filter: string, handler: MqttHandler): Promise<() => Promise<void>> {
    const client = this.requireClient();
    // The handler is in place before the broker is asked, so a retained message that arrives in
    // the same read as the subscription's acknowledgement is not missed.
    let handlers = this.routes.get(filter);
    const isNew = !handlers;
    if (!handlers) {
      handlers = new Set();
      this.routes.set(filter, handlers);
      if (filter.includes('+') || filter.includes('#')) this.wildcards.add(filter);
    }
    handlers.add(handler);
    if (isNew) await client.subscribeAsync(filter, { qos: 0 });
    return async () => {
      const set = this.routes.get(filter);
      if (!set) return;
      set.delete(handler);
      if (set.size === 0) {
        this.routes.delete(filter);
        this.wildcards.delete(filter);
        if (this.client?.connected) await this.client.unsubscribeAsync(filter);
      }
    };
  }

  async publish(
    topic: string,
    payload: string | Buffer,
    options: { retain?: boolean; qos?: 0 | 1 } = {},
  ): Promise<void> {
    const client = this.requireClient();
    await client.publishAsync(topic, payload, { retain: options.retain ?? false, qos: options.qos ?? 0 });
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.routes.clear();
    this.wildcards.clear();
    if (client) await client.endAsync();
  }

  private requireClient(): MqttClient {
    if (!this.client) throw new Error('MQTT connection is not open');
    return this.client;
  }
}
