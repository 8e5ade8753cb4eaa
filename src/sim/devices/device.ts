import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';

/** The JSON object a Zigbee2MQTT device publishes as its state and accepts as a command. */
export type Payload = Record<string, unknown>;

/** What every simulated device shares with its home: where to connect and how to name topics. */
export interface DeviceContext {
  brokerUrl: string;
  clock: Clock;
  /** Zigbee2MQTT base topic, e.g. `zigbee2mqtt`. */
  prefix: string;
  /** Home Assistant discovery prefix, e.g. `homeassistant`. */
  discoveryPrefix: string;
  username?: string;
  password?: string;
  /** Milliseconds between receiving a command and reporting its effect; 0 applies it at once. */
  commandDelayMs: number;
  /** Source of randomness for drifting sensors; injected so tests can make it deterministic. */
  random: () => number;
  log?: Logger;
  /** Appended to client ids so two homes on one broker never kick each other off. */
  clientSuffix: string;
}

/** Who the device claims to be, as a Zigbee2MQTT device definition would. */
export interface DeviceIdentity {
  /** Friendly name: the Zigbee2MQTT topic segment and the Home Assistant device name. */
  name: string;
  /** IEEE address, the stable identifier Zigbee2MQTT uses in discovery topics and unique ids. */
  ieee: string;
  area: string;
  manufacturer: string;
  model: string;
}

/** One Home Assistant entity of a device: `homeassistant/<component>/<ieee>/<object>/config`. */
export interface DiscoveryEntry {
  component: 'light' | 'switch' | 'lock' | 'sensor' | 'climate';
  object: string;
  config: Payload;
}

/** A command that passed validation; running it changes the device's state. */
export type Apply = () => void;

const ONLINE = JSON.stringify({ state: 'online' });
const OFFLINE = JSON.stringify({ state: 'offline' });

/**
 * A Zigbee device as Zigbee2MQTT presents it on MQTT, but with its own MQTT connection so each
 * one can drop off on its own (its last will marks it offline). Subclasses say what they expose
 * and how a command changes their state; this class does the wire work.
 */
export abstract class SimDevice {
  abstract readonly kind: string;
  private client: MqttClient | null = null;
  private published = 0;
  private readonly timers = new Set<() => void>();
  /** Commands received and not carried out yet (see commandDelayMs): each one's timer and how to run it. */
  private readonly acting = new Map<() => void, () => void>();

  constructor(
    readonly identity: DeviceIdentity,
    protected readonly ctx: DeviceContext,
  ) {}

  get name(): string {
    return this.identity.name;
  }

  /** `zigbee2mqtt/<friendly name>`: the state topic; commands go below it. */
  get baseTopic(): string {
    return `${this.ctx.prefix}/${this.identity.name}`;
  }

  get availabilityTopic(): string {
    return `${this.baseTopic}/availability`;
  }

  /** A copy of the full state the device last reported (or will report next). */
  get state(): Payload {
    return structuredClone(this.snapshot());
  }

  /**
   * What the device keeps across a restart: its last state, as Zigbee2MQTT keeps every device's in
   * its `state.json` (see restore).
   */
  saved(): Payload {
    return this.state;
  }

  /**
   * Takes up a state `saved()` gave, before start(), so the device comes back as it was left (the
   * front door as locked or unlocked, the light as it was set). It is read as the device reads a
   * command, so a saved file can set nothing a command could not; whether it was taken (one the
   * device would not take changes nothing).
   */
  restore(saved: unknown): boolean {
    const apply = isObject(saved) ? this.parseCommand(saved) : null;
    apply?.();
    return apply !== null;
  }

  /** How many state reports the device has sent since it was created (start-up included). */
  get reports(): number {
    return this.published;
  }

  /** The device's entities, each with a complete discovery config. */
  discovery(): Array<{ topic: string; config: Payload }> {
    return this.entities().map((entry) => ({
      topic: `${this.ctx.discoveryPrefix}/${entry.component}/${this.identity.ieee}/${entry.object}/config`,
      config: { ...this.commonConfig(entry), ...entry.config },
    }));
  }

  /** Every topic this device leaves a retained message on. */
  retainedTopics(): string[] {
    return [...this.discovery().map((d) => d.topic), this.baseTopic, this.availabilityTopic];
  }

  async start(): Promise<void> {
    const client = await this.connect();
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload.toString('utf8')));
    await client.subscribeAsync([`${this.baseTopic}/set`, `${this.baseTopic}/set/+`, `${this.baseTopic}/get`], {
      qos: 0,
    });
    // QoS 1 so the broker holds every retained message before start() resolves: a consumer that
    // subscribes right after sees the whole device.
    await this.announce();
    await client.publishAsync(this.availabilityTopic, ONLINE, { retain: true, qos: 1 });
    // Back after a dropped connection, the broker has published the last will ("offline",
    // retained) and, if it restarted, may have lost the retained discovery and state: say it all
    // again, or the device stays offline on every consumer while it works.
    client.on('connect', () => {
      if (this.client !== client) return;
      this.announce()
        .then(() => client.publishAsync(this.availabilityTopic, ONLINE, { retain: true, qos: 1 }))
        .catch((error: Error) =>
          this.ctx.log?.debug('re-announce failed', { device: this.name, error: error.message }),
        );
    });
    this.startBehaviour();
  }

  /** Publishes the discovery configs and the current state, as Zigbee2MQTT does on start. */
  async announce(): Promise<void> {
    const client = this.client;
    if (!client) return;
    for (const { topic, config } of this.discovery()) {
      await client.publishAsync(topic, JSON.stringify(config), { retain: true, qos: 1 });
    }
    this.published++;
    await client.publishAsync(this.baseTopic, JSON.stringify(this.snapshot()), { retain: true, qos: 1 });
  }

  /** Says goodbye like a device being unplugged politely: offline, then disconnect. */
  async stop(): Promise<void> {
    // A command the device has received is carried out, and its state said, before it goes: stopped
    // within the delay, the state saved after the stop lacked it (a door unlocked came back locked).
    for (const [cancel, run] of this.acting) {
      cancel();
      run();
    }
    this.acting.clear();
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.connected) await client.publishAsync(this.availabilityTopic, OFFLINE, { retain: true, qos: 1 });
    // Forced when the broker is gone, so stopping never waits on a connection that will not come.
    await client.endAsync(!client.connected);
  }

  /** Publishes the full state (retained, as a Zigbee2MQTT device with `retain: true`). */
  protected publishState(): void {
    const client = this.client;
    if (!client) return;
    this.published++;
    client.publishAsync(this.baseTopic, JSON.stringify(this.snapshot()), { retain: true }).catch((error: Error) => {
      this.ctx.log?.debug('state publish failed', { device: this.name, error: error.message });
    });
  }

  /** Runs `fn` after `ms` on the injected clock; the timer dies with the device. */
  protected after(ms: number, fn: () => void): void {
    const cancel = this.ctx.clock.setTimeout(() => {
      this.timers.delete(cancel);
      fn();
    }, ms);
    this.timers.add(cancel);
  }

  /** Runs `fn` every `ms` on the injected clock until the device stops. */
  protected every(ms: number, fn: () => void): void {
    this.timers.add(this.ctx.clock.setInterval(fn, ms));
  }

  /** Starts whatever the device does on its own (sensors drift, rooms warm). */
  protected startBehaviour(): void {}

  protected abstract snapshot(): Payload;
  protected abstract entities(): DiscoveryEntry[];
  /** Validates a whole command; returns how to apply it, or null to ignore it as a device would. */
  protected abstract parseCommand(command: Payload): Apply | null;

  /** The keys Zigbee2MQTT puts in every discovery config. */
  private commonConfig(entry: DiscoveryEntry): Payload {
    const { name, ieee, area, manufacturer, model } = this.identity;
    return {
      // Both the bridge and the device must be up, as Zigbee2MQTT says with availability enabled.
      availability: [
        { topic: `${this.ctx.prefix}/bridge/state`, value_template: '{{ value_json.state }}' },
        { topic: this.availabilityTopic, value_template: '{{ value_json.state }}' },
      ],
      availability_mode: 'all',
      device: {
        identifiers: [`zigbee2mqtt_${ieee}`],
        name,
        manufacturer,
        model,
        suggested_area: area,
      },
      object_id: `${slug(name)}${entry.object === entry.component ? '' : `_${entry.object}`}`,
      unique_id: `${ieee}_${entry.object}_zigbee2mqtt`,
      origin: { name: 'Triad home simulator' },
    };
  }

  private connect(): Promise<MqttClient> {
    const opts: IClientOptions = {
      clientId: `triad-sim-${this.identity.ieee}-${this.ctx.clientSuffix}`,
      username: this.ctx.username,
      password: this.ctx.password,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      will: { topic: this.availabilityTopic, payload: Buffer.from(OFFLINE), retain: true, qos: 1 },
    };
    return connectClient(this.ctx.brokerUrl, opts);
  }

  private onMessage(topic: string, text: string): void {
    if (topic === `${this.baseTopic}/get`) {
      this.publishState();
      return;
    }
    const command = toCommand(topic, this.baseTopic, text);
    const apply = command ? this.parseCommand(command) : null;
    if (!apply) {
      this.ctx.log?.debug('ignored command', { device: this.name, topic, payload: text });
      return;
    }
    const run = () => {
      apply();
      this.publishState();
    };
    if (this.ctx.commandDelayMs <= 0) {
      run();
      return;
    }
    const cancel = this.ctx.clock.setTimeout(() => {
      this.acting.delete(cancel);
      run();
    }, this.ctx.commandDelayMs);
    this.acting.set(cancel, run);
  }
}

/**
 * Turns a message on `<base>/set` or `<base>/set/<attribute>` into a command object the way
 * Zigbee2MQTT does: JSON objects as they are, a bare word on `/set` as `{state: word}`, and a
 * bare value on `/set/<attribute>` as `{<attribute>: value}` (numbers parsed).
 */
export function toCommand(topic: string, base: string, text: string): Payload | null {
  const setTopic = `${base}/set`;
  if (topic === setTopic) {
    const parsed = tryJson(text);
    if (isObject(parsed)) return parsed;
    return text.trim() && !text.trim().startsWith('{') ? { state: text.trim() } : null;
  }
  if (topic.startsWith(`${setTopic}/`)) {
    const attribute = topic.slice(setTopic.length + 1);
    const parsed = tryJson(text);
    return { [attribute]: parsed === undefined || isObject(parsed) ? text.trim() : parsed };
  }
  return null;
}

/** Reads an ON/OFF/TOGGLE state as Zigbee2MQTT does (any case); anything else is invalid. */
export function onOff(value: unknown, current: boolean): boolean | null {
  if (typeof value !== 'string') return null;
  switch (value.toUpperCase()) {
    case 'ON':
      return true;
    case 'OFF':
      return false;
    case 'TOGGLE':
      return !current;
    default:
      return null;
  }
}

/** A finite number within [min, max], else null. */
export function numberIn(value: unknown, min: number, max: number): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? value : null;
}

export function isObject(value: unknown): value is Payload {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `Living room sensor` → `living_room_sensor`, as Zigbee2MQTT derives object ids. */
export function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '');
}

/** Connects and resolves once the broker accepted us, with Nagle off as the hub's own link does. */
export function connectClient(url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, opts);
  // MQTT.js throws an unheard 'error' event; after the first connect it reconnects on its own,
  // so later socket errors only need to be absorbed (a real device just retries too).
  client.on('error', () => {});
  client.on('connect', () => (client.stream as Socket | undefined)?.setNoDelay?.(true));
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      client.removeListener('connect', onConnect);
      client.end(true);
      reject(new Error(`simulated device cannot connect to ${url}: ${error.message}`));
    };
    const onConnect = () => {
      client.removeListener('error', onError);
      resolve(client);
    };
    client.once('connect', onConnect);
    client.once('error', onError);
  });
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
