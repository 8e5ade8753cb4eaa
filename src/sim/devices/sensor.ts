import {
  type Apply,
  type DeviceContext,
  type DeviceIdentity,
  type DiscoveryEntry,
  isObject,
  numberIn,
  type Payload,
  SimDevice,
} from './device.ts';

/** A reading to inject, e.g. to stage a cold room in a demo or a test. */
export interface SensorReading {
  temperature?: number;
  humidity?: number;
}

/** Where the room settles and how far it may wander. */
const TEMPERATURE = { rest: 21, min: 10, max: 35, step: [0.1, 0.3] } as const;
const HUMIDITY = { rest: 45, min: 20, max: 80, step: [0.3, 1.2] } as const;
/** Battery sensors report every 30–60 s, not on a fixed beat. */
const REPORT_MS = [30_000, 60_000] as const;

/**
 * A battery temperature and humidity sensor (Zigbee2MQTT's `sensor` entities). Each report moves
 * the reading a little, leaning back towards the room's resting value, so a chart of it looks
 * like a room rather than noise or a flat line. Real sensors report on change, so every report
 * changes at least the temperature by one tenth.
 */
export class SimClimateSensor extends SimDevice {
  readonly kind = 'sensor';
  private temperature: number;
  private humidity: number;
  private battery = 97;

  constructor(identity: DeviceIdentity, ctx: DeviceContext, initial: SensorReading = {}) {
    super(identity, ctx);
    this.temperature = initial.temperature ?? TEMPERATURE.rest;
    this.humidity = initial.humidity ?? HUMIDITY.rest;
  }

  /** Sets a reading and reports it at once, as a sensor would after a sudden change. */
  inject(reading: SensorReading): void {
    if (reading.temperature !== undefined) this.temperature = checked('temperature', reading.temperature, TEMPERATURE);
    if (reading.humidity !== undefined) this.humidity = checked('humidity', reading.humidity, HUMIDITY);
    this.publishState();
  }

  protected snapshot(): Payload {
    return {
      temperature: round1(this.temperature),
      humidity: round1(this.humidity),
      battery: this.battery,
      linkquality: 102,
    };
  }

  protected entities(): DiscoveryEntry[] {
    const measurement = (object: string, name: string, deviceClass: string, unit: string): DiscoveryEntry => ({
      component: 'sensor',
      object,
      config: {
        name,
        state_topic: this.baseTopic,
        device_class: deviceClass,
        state_class: 'measurement',
        unit_of_measurement: unit,
        value_template: `{{ value_json.${object} }}`,
        enabled_by_default: true,
      },
    });
    const battery = measurement('battery', 'Battery', 'battery', '%');
    battery.config.entity_category = 'diagnostic';
    return [
      measurement('temperature', 'Temperature', 'temperature', '°C'),
      measurement('humidity', 'Humidity', 'humidity', '%'),
      battery,
    ];
  }

  /** Takes up a saved reading (both values within the room's range), though the sensor takes no commands. */
  override restore(saved: unknown): boolean {
    if (!isObject(saved)) return false;
    const temperature = numberIn(saved.temperature, TEMPERATURE.min, TEMPERATURE.max);
    const humidity = numberIn(saved.humidity, HUMIDITY.min, HUMIDITY.max);
    if (temperature === null || humidity === null) return false;
    this.temperature = temperature;
    this.humidity = humidity;
    return true;
  }

  /** A sensor takes no commands; whatever arrives on its set topic is ignored. */
  protected parseCommand(): Apply | null {
    return null;
  }

  protected override startBehaviour(): void {
    this.scheduleReport();
  }

  private scheduleReport(): void {
    const [lo, hi] = REPORT_MS;
    this.after(lo + this.ctx.random() * (hi - lo), () => {
      this.temperature = this.wander(this.temperature, TEMPERATURE);
      this.humidity = this.wander(this.humidity, HUMIDITY);
      this.publishState();
      this.scheduleReport();
    });
  }

  /** One random step whose direction leans towards the resting value the further away it is. */
  private wander(value: number, range: typeof TEMPERATURE | typeof HUMIDITY): number {
    const [small, large] = range.step;
    const pull = Math.max(-1, Math.min(1, (range.rest - value) / (range.max - range.min) / 0.1));
    const up = this.ctx.random() < 0.5 + 0.4 * pull;
    const size = small + this.ctx.random() * (large - small);
    const next = round1(value + (up ? size : -size));
    return Math.max(range.min, Math.min(range.max, next));
  }
}

function checked(name: string, value: number, range: { min: number; max: number }): number {
  if (!Number.isFinite(value) || value < range.min || value > range.max) {
    throw new RangeError(`${name} ${value} is outside ${range.min}–${range.max}`);
  }
  return value;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
