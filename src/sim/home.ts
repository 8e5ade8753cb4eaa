import { createHash, randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import {
  connectClient,
  type DeviceContext,
  type DeviceIdentity,
  isObject,
  type Payload,
  type SimDevice,
} from './devices/device.ts';
import { SimLight } from './devices/light.ts';
import { SimLock } from './devices/lock.ts';
import { type SensorReading, SimClimateSensor } from './devices/sensor.ts';
import { SimSwitch } from './devices/switch.ts';
import { SimThermostat } from './devices/thermostat.ts';

export interface SimulatedHomeOptions {
  brokerUrl: string;
  clock: Clock;
  /**
   * A short tag (letters and digits) for a broker other demo homes may share, as two Zigbee2MQTT
   * installs on one broker differ: its base topic is `zigbee2mqtt_<tag>` and its devices' IEEE
   * addresses its own, so neither home's commands, states or availability reach the other's.
   * None by default.
   */
  tag?: string;
  /** Zigbee2MQTT base topic; default `zigbee2mqtt` (`zigbee2mqtt_<tag>` with a tag). */
  prefix?: string;
  /** Home Assistant discovery prefix; default `homeassistant`. */
  discoveryPrefix?: string;
  username?: string;
  password?: string;
  /**
   * How long a device takes to act on a command before it reports the new state, on `clock`.
   * Default 50 ms. With a VirtualClock the report waits for `clock.advance`; 0 reports at once.
   */
  commandDelayMs?: number;
  /** Randomness for the sensor's drift; default Math.random. */
  random?: () => number;
  log?: Logger;
}

const ONLINE = JSON.stringify({ state: 'online' });
const OFFLINE = JSON.stringify({ state: 'offline' });

/**
 * The demo household's home devices, each its own MQTT client speaking Zigbee2MQTT with Home
 * Assistant discovery, so Triad meets them exactly as it would meet a real Zigbee2MQTT install.
 * A bridge client stands in for the Zigbee2MQTT process: it owns `<prefix>/bridge/state` and
 * re-announces every device when Home Assistant (or anything) publishes `online` on
 * `<discoveryPrefix>/status`.
 */
export class SimulatedHome {
  readonly devices: readonly SimDevice[];
  private readonly ctx: DeviceContext;
  private bridge: MqttClient | null = null;

  constructor(options: SimulatedHomeOptions) {
    this.ctx = {
      brokerUrl: options.brokerUrl,
      clock: options.clock,
      prefix: options.prefix ?? (options.tag ? `zigbee2mqtt_${options.tag}` : 'zigbee2mqtt'),
      discoveryPrefix: options.discoveryPrefix ?? 'homeassistant',
      username: options.username,
      password: options.password,
      commandDelayMs: options.commandDelayMs ?? 50,
      random: options.random ?? Math.random,
      log: options.log,
      clientSuffix: randomBytes(3).toString('hex'),
    };
    this.devices = householdDevices(this.ctx, options.tag ?? '');
  }

  get bridgeTopic(): string {
    return `${this.ctx.prefix}/bridge/state`;
  }

  get running(): boolean {
    return this.bridge !== null;
  }

  /** The device with this friendly name; throws for an unknown name so a typo fails loudly. */
  device(name: string): SimDevice {
    const found = this.devices.find((d) => d.name === name);
    if (!found) throw new Error(`no simulated device named "${name}"`);
    return found;
  }

  /** Every device's state to keep across a restart (see SimDevice.saved), by its IEEE address. */
  saved(): Record<string, Payload> {
    return Object.fromEntries(this.devices.map((device) => [device.identity.ieee, device.saved()]));
  }

  /**
   * Takes up what `saved()` gave at an earlier run, before start(): each device as it was left. A
   * device missing from it starts as new; one whose state it would not take (a damaged or
   * tampered file) starts as new too, and the log says which.
   */
  restore(saved: unknown): void {
    if (saved === undefined) return;
    if (!isObject(saved)) {
      this.ctx.log?.warn('the saved state of the simulated home is not one it can take; its devices start afresh');
      return;
    }
    for (const device of this.devices) {
      const { ieee } = device.identity;
      if (!Object.hasOwn(saved, ieee)) continue;
      if (!device.restore(saved[ieee]))
        this.ctx.log?.warn('the saved state of a simulated device is not one it can take; it starts afresh', {
          device: device.name,
        });
    }
  }

  /** Connects the bridge and every device; resolves once all discovery and state is retained. */
  async start(): Promise<void> {
    if (this.bridge) throw new Error('the simulated home is already running');
    const bridge = await connectClient(this.ctx.brokerUrl, {
      clientId: `triad-sim-bridge-${this.ctx.clientSuffix}`,
      username: this.ctx.username,
      password: this.ctx.password,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      will: { topic: this.bridgeTopic, payload: Buffer.from(OFFLINE), retain: true, qos: 1 },
    });
    this.bridge = bridge;
    // Zigbee2MQTT says its bridge is online at every (re)connect: after a dropped connection the
    // broker has published the bridge's will, which marks every device unavailable.
    bridge.on('connect', () => {
      if (this.bridge !== bridge) return;
      bridge.publishAsync(this.bridgeTopic, ONLINE, { retain: true, qos: 1 }).catch((error: Error) => {
        this.ctx.log?.debug('bridge state publish failed', { error: error.message });
      });
    });
    try {
      await bridge.publishAsync(this.bridgeTopic, ONLINE, { retain: true, qos: 1 });
      // allSettled, not all: on a failure every device must have finished connecting before
      // stop() runs, or a late one would stay connected.
      const results = await Promise.allSettled(this.devices.map((d) => d.start()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      const status = `${this.ctx.discoveryPrefix}/status`;
      bridge.on('message', (topic, payload) => {
        if (topic === status && payload.toString() === 'online') this.reannounce();
      });
      await bridge.subscribeAsync(status, { qos: 0 });
      this.ctx.log?.info('simulated home started', { devices: this.devices.length, broker: this.ctx.brokerUrl });
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Marks every device and the bridge offline and disconnects. Discovery stays retained, as it
   * does when a real Zigbee2MQTT stops, so the devices show as unavailable rather than vanish.
   */
  async stop(): Promise<void> {
    const bridge = this.bridge;
    this.bridge = null;
    await Promise.all(this.devices.map((d) => d.stop()));
    if (!bridge) return;
    if (bridge.connected) await bridge.publishAsync(this.bridgeTopic, OFFLINE, { retain: true, qos: 1 });
    await bridge.endAsync(!bridge.connected);
  }

  /**
   * Stops, then clears every retained message the home left (discovery configs, states,
   * availability, bridge state) with empty retained payloads, which is how MQTT deletes them.
   */
  async remove(): Promise<void> {
    await this.stop();
    const cleaner = await connectClient(this.ctx.brokerUrl, {
      clientId: `triad-sim-cleanup-${this.ctx.clientSuffix}`,
      username: this.ctx.username,
      password: this.ctx.password,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    try {
      for (const topic of this.retainedTopics()) await cleaner.publishAsync(topic, '', { retain: true, qos: 1 });
    } finally {
      await cleaner.endAsync();
    }
  }

  /** Every topic on which the home leaves a retained message while running or after stopping. */
  retainedTopics(): string[] {
    return [this.bridgeTopic, ...this.devices.flatMap((d) => d.retainedTopics())];
  }

  /** Injects a reading into a climate sensor, which reports it at once. */
  setSensor(name: string, reading: SensorReading): void {
    const device = this.device(name);
    if (!(device instanceof SimClimateSensor)) throw new Error(`"${name}" is not a temperature sensor`);
    device.inject(reading);
  }

  private reannounce(): void {
    for (const device of this.devices) {
      device.announce().catch((error: Error) => {
        this.ctx.log?.debug('re-announce failed', { device: device.name, error: error.message });
      });
    }
  }
}

/**
 * The demo household. IEEE addresses are fixed so ids stay stable from one run to the next; with a
 * tag, eight hex digits of its hash lead them, so another home's devices have other addresses.
 */
function householdDevices(ctx: DeviceContext, tag: string): SimDevice[] {
  const hex = tag ? createHash('sha256').update(tag).digest('hex').slice(0, 8) : '';
  const id = (name: string, ieee: string, area: string, manufacturer: string, model: string): DeviceIdentity => ({
    name,
    ieee: hex ? `0x${hex}${ieee.slice(2 + hex.length)}` : ieee,
    area,
    manufacturer,
    model,
  });
  return [
    new SimLight(id('Hall light', '0x000b57fffe1a2b01', 'Hall', 'IKEA', 'LED1545G12'), ctx, { min: 250, max: 454 }),
    new SimLight(id('Living room lamp', '0x0017880108a2b302', 'Living room', 'Philips', '9290022166'), ctx, {
      min: 153,
      max: 454,
    }),
    new SimSwitch(id('Coffee machine', '0x842e14fffe3c4d03', 'Kitchen', 'Heiman', 'HS2SK'), ctx),
    new SimSwitch(id('Living room fan', '0x842e14fffe3c4d04', 'Living room', 'Heiman', 'HS2SK'), ctx),
    new SimLock(id('Front door', '0x000d6f0011e5f605', 'Hall', 'Yale', 'YRD256HA20BP'), ctx),
    new SimClimateSensor(id('Living room sensor', '0x00158d0004a1b206', 'Living room', 'Aqara', 'WSDCGQ11LM'), ctx),
    new SimThermostat(id('Thermostat', '0x00124b0022c3d707', 'Living room', 'Sinopé', 'TH1124ZB'), ctx),
  ];
}
