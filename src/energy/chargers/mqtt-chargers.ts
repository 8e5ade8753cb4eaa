import type { Adapter, AdapterContext } from '../../adapters/adapter.ts';
import type { MqttLink } from '../../adapters/mqtt/connection.ts';
import { decimalNumber } from '../../core/decimal.ts';
import type { Command } from '../../core/events.ts';
import { slugify, type Thing, vocabularyActions, vocabularyProperties } from '../../model/thing.ts';

/**
 * Simple chargers over MQTT: a wallbox (or a smart plug with a granny cable) that announces, by
 * Home Assistant discovery, a `switch` and a `number` in amperes on the same device. Together
 * they are a charger: the switch starts and stops, the number sets the current. A power sensor
 * (W) on the same device, when there is one, is its charging power; an energy sensor (kWh or Wh,
 * a register that only grows) is its meter, which charging sessions count from. Plain payloads
 * only: the switch's payload_on/payload_off and the number and sensors as decimals.
 */

export const MQTT_CHARGER_ADAPTER = 'energy.mqtt';

interface Entity {
  component: string;
  config: Record<string, unknown>;
}

interface MqttChargerMeta {
  device: string;
  switchCommand: string;
  switchState: string | null;
  payloadOn: string;
  payloadOff: string;
  currentCommand: string;
  currentState: string | null;
  minCurrent: number;
  maxCurrent: number;
  powerState: string | null;
  /** The meter's state topic and unit, when the device has an energy sensor. */
  energyState: string | null;
  energyUnit: 'kWh' | 'Wh';
}

/** Units an energy meter may report in, with what makes them kWh. */
const ENERGY_UNITS = { kWh: 1, Wh: 0.001 } as const;

export class MqttChargers implements Adapter {
  readonly name = MQTT_CHARGER_ADAPTER;
  private ctx: AdapterContext | null = null;
  private readonly devices = new Map<string, Map<string, Entity>>();
  private readonly unsubscribers: Array<() => Promise<void>> = [];
  private readonly stateTopics = new Set<string>();

  constructor(private readonly options: { link: MqttLink; householdId: string; prefix?: string }) {}

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    const prefix = this.options.prefix ?? 'homeassistant';
    for (const filter of [`${prefix}/+/+/config`, `${prefix}/+/+/+/config`]) {
      this.unsubscribers.push(
        await this.options.link.subscribe(filter, (topic, payload) => {
          void this.discovered(topic.slice(prefix.length + 1).split('/'), payload);
        }),
      );
    }
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribers.splice(0)) await unsubscribe();
    this.ctx = null;
  }

  async execute(command: Command, thing: Thing): Promise<void> {
    const meta = thing.meta?.mqttCharger as MqttChargerMeta | undefined;
    if (!meta) throw new Error(`${thing.id} is not an MQTT charger`);
    const { link } = this.options;
    switch (command.action) {
      case 'start':
        await link.publish(meta.switchCommand, meta.payloadOn);
        return;
      case 'stop':
        await link.publish(meta.switchCommand, meta.payloadOff);
        return;
      case 'set_current_limit': {
        const current = Number(command.input.current);
        // These chargers have no "0 A": pausing is switching off, resuming is switching on.
        if (current < meta.minCurrent) {
          await link.publish(meta.switchCommand, meta.payloadOff);
          this.ctx?.ingest([this.report(thing, 'charging.current_limit', 0)]);
          return;
        }
        await link.publish(meta.currentCommand, String(Math.min(meta.maxCurrent, current)));
        await link.publish(meta.switchCommand, meta.payloadOn);
        if (!meta.currentState) this.ctx?.ingest([this.report(thing, 'charging.current_limit', current)]);
        return;
      }
      default:
        throw new Error(`MQTT chargers cannot ${command.action}`);
    }
  }

  private async discovered(parts: string[], payload: Buffer): Promise<void> {
    const component = parts[0];
    if (!['switch', 'number', 'sensor'].includes(component)) return;
    let config: Record<string, unknown>;
    try {
      config = payload.length ? (JSON.parse(payload.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      return;
    }
    const device = config.device as { identifiers?: unknown; name?: unknown } | undefined;
    const ids = Array.isArray(device?.identifiers) ? device.identifiers : [device?.identifiers];
    const deviceId = typeof ids[0] === 'string' ? ids[0] : null;
    if (!deviceId) return;
    let entities = this.devices.get(deviceId);
    if (!entities) {
      entities = new Map();
      this.devices.set(deviceId, entities);
    }
    entities.set(parts.join('/'), { component, config });
    await this.build(deviceId, typeof device?.name === 'string' ? device.name : deviceId, [...entities.values()]);
  }

  /** Makes the charger thing once a device has both a switch and a current setting. */
  private async build(deviceId: string, name: string, entities: Entity[]): Promise<void> {
    const ctx = this.ctx;
    if (!ctx) return;
    const text = (c: Record<string, unknown>, key: string) => (typeof c[key] === 'string' ? (c[key] as string) : null);
    const sw = entities.find((e) => e.component === 'switch' && text(e.config, 'command_topic'));
    const amps = entities.find(
      (e) =>
        e.component === 'number' &&
        text(e.config, 'command_topic') &&
        (e.config.unit_of_measurement === 'A' || e.config.device_class === 'current'),
    );
    if (!sw || !amps) return;
    const power = entities.find((e) => e.component === 'sensor' && e.config.unit_of_measurement === 'W');
    const meters = entities.filter(
      (e) => e.component === 'sensor' && Object.hasOwn(ENERGY_UNITS, String(e.config.unit_of_measurement)),
    );
    // The lifetime register when the device says which it is, rather than a daily or per-charge count.
    const meter = meters.find((e) => e.config.state_class === 'total_increasing') ?? meters[0];
    const meta: MqttChargerMeta = {
      device: deviceId,
      switchCommand: text(sw.config, 'command_topic')!,
      switchState: text(sw.config, 'state_topic'),
      payloadOn: text(sw.config, 'payload_on') ?? 'ON',
      payloadOff: text(sw.config, 'payload_off') ?? 'OFF',
      currentCommand: text(amps.config, 'command_topic')!,
      currentState: text(amps.config, 'state_topic'),
      ...currentRange(amps.config),
      powerState: power ? text(power.config, 'state_topic') : null,
      energyState: meter ? text(meter.config, 'state_topic') : null,
      energyUnit: meter?.config.unit_of_measurement === 'Wh' ? 'Wh' : 'kWh',
    };
    const properties = ['charging.charging', 'charging.current_limit', 'charging.power'];
    if (meta.energyState) properties.push('sensor.energy');
    const thing = await ctx.upsertThing({
      id: `charger-${slugify(deviceId)}`.slice(0, 128),
      householdId: this.options.householdId,
      kind: 'charger',
      name,
      adapter: MQTT_CHARGER_ADAPTER,
      properties: vocabularyProperties(properties),
      actions: vocabularyActions('charging', ['start', 'stop', 'set_current_limit']),
      meta: { mqttCharger: meta, charger: { minCurrentA: meta.minCurrent, maxCurrentA: meta.maxCurrent } },
    });
    await this.listen(thing, meta);
  }

  private async listen(thing: Thing, meta: MqttChargerMeta): Promise<void> {
    const { link } = this.options;
    const watch = async (topic: string | null, read: (text: string) => Array<[string, unknown]>) => {
      if (!topic || this.stateTopics.has(topic)) return;
      this.stateTopics.add(topic);
      this.unsubscribers.push(
        await link.subscribe(topic, (_t, payload) => {
          const reports = read(payload.toString('utf8').trim()).map(([p, v]) => this.report(thing, p, v));
          if (reports.length) this.ctx?.ingest(reports);
        }),
      );
    };
    await watch(meta.switchState, (text) => {
      if (text !== meta.payloadOn && text !== meta.payloadOff) return [];
      // A simple charger cannot tell whether a car is plugged; an enabled one is taken to be charging.
      return [['charging.charging', text === meta.payloadOn]];
    });
    await watch(meta.currentState, (text) => {
      const n = decimalNumber(text);
      return n !== null && n >= 0 && n <= 80 ? [['charging.current_limit', n]] : [];
    });
    await watch(meta.energyState, (text) => {
      const n = decimalNumber(text);
      return n !== null && n >= 0 ? [['sensor.energy', n * ENERGY_UNITS[meta.energyUnit]]] : [];
    });
    // Power says what flows, not whether a cable is in (0 W is a full car as well as an empty
    // socket): such a charger has no plug property, and its sessions follow its switch.
    await watch(meta.powerState, (text) => {
      const n = decimalNumber(text);
      return n !== null && n >= 0 ? [['charging.power', n / 1000]] : [];
    });
  }

  private report(thing: Thing, property: string, value: unknown) {
    return { householdId: thing.householdId, thing: thing.id, property, value, source: MQTT_CHARGER_ADAPTER };
  }
}

/**
 * The simple MQTT chargers of every household, as the one adapter their things name: each
 * household's are found and commanded through that household's own view of the broker (see
 * HubServices.mqttFor), so a charger announced under another household's topics is never read or
 * commanded from this one. A household costs its discovery subscriptions, and no timer.
 */
export class MqttChargerHouseholds implements Adapter {
  readonly name = MQTT_CHARGER_ADAPTER;
  private ctx: AdapterContext | null = null;
  private readonly households = new Map<string, MqttChargers>();

  constructor(private readonly linkFor: (householdId: string) => MqttLink) {}

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    for (const chargers of this.households.values()) await chargers.start(ctx);
  }

  async stop(): Promise<void> {
    this.ctx = null;
    for (const chargers of this.households.values()) await chargers.stop();
  }

  /** Starts looking for a household's chargers (at once if the adapter runs, else at its start). */
  async addHousehold(householdId: string): Promise<void> {
    if (this.households.has(householdId)) return;
    const chargers = new MqttChargers({ link: this.linkFor(householdId), householdId });
    this.households.set(householdId, chargers);
    if (this.ctx) await chargers.start(this.ctx);
  }

  /** Stops listening to a household that is gone; its things go with the household. */
  async removeHousehold(householdId: string): Promise<void> {
    const chargers = this.households.get(householdId);
    this.households.delete(householdId);
    await chargers?.stop();
  }

  async execute(command: Command, thing: Thing): Promise<void> {
    const chargers = this.households.get(thing.householdId);
    if (!chargers) throw new Error(`no MQTT chargers are looked after in household ${thing.householdId}`);
    await chargers.execute(command, thing);
  }
}

/**
 * The current range a `number` entity announces, within what a charger's settings take through the
 * API (1–80 A, the minimum not above the maximum): a range announced the wrong way round or in
 * the thousands would leave a charger whose mode could no longer be set.
 */
function currentRange(config: Record<string, unknown>): { minCurrent: number; maxCurrent: number } {
  const announced = (value: unknown, fallback: number) =>
    typeof value === 'number' && Number.isFinite(value) ? value : fallback;
  const maxCurrent = Math.min(80, Math.max(1, announced(config.max, 16)));
  const minCurrent = Math.min(maxCurrent, Math.max(0, announced(config.min, 6)));
  return { minCurrent, maxCurrent };
}
