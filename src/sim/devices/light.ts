import {
  type Apply,
  type DeviceContext,
  type DeviceIdentity,
  type DiscoveryEntry,
  numberIn,
  onOff,
  type Payload,
  SimDevice,
} from './device.ts';

/** The bulb's colour temperature range in mireds (warmest is the larger number). */
export interface MiredRange {
  min: number;
  max: number;
}

/** Broadest mired range a command may ask for; within it, values are clamped to the bulb's own. */
const PLAUSIBLE_MIREDS: MiredRange = { min: 100, max: 1000 };

/**
 * A dimmable white-spectrum bulb: Zigbee2MQTT's `light` with the JSON schema, brightness on
 * the Zigbee 0–254 scale and colour temperature in mireds.
 */
export class SimLight extends SimDevice {
  readonly kind = 'light';
  // Lights start off so the demo has something to switch on.
  private on = false;
  private brightness = 200;
  private colorTemp: number;

  constructor(
    identity: DeviceIdentity,
    ctx: DeviceContext,
    private readonly mireds: MiredRange,
  ) {
    super(identity, ctx);
    this.colorTemp = Math.round((mireds.min + mireds.max) / 2);
  }

  protected snapshot(): Payload {
    return {
      state: this.on ? 'ON' : 'OFF',
      brightness: this.brightness,
      color_temp: this.colorTemp,
      color_mode: 'color_temp',
      linkquality: 120,
    };
  }

  protected entities(): DiscoveryEntry[] {
    const base = this.baseTopic;
    return [
      {
        component: 'light',
        object: 'light',
        config: {
          // null makes Home Assistant name the entity after the device, as Zigbee2MQTT does.
          name: null,
          schema: 'json',
          state_topic: base,
          command_topic: `${base}/set`,
          brightness: true,
          brightness_scale: 254,
          // `color_temp: true` for older consumers; the colour-mode keys for current Home Assistant.
          color_temp: true,
          color_mode: true,
          supported_color_modes: ['color_temp'],
          min_mireds: this.mireds.min,
          max_mireds: this.mireds.max,
        },
      },
    ];
  }

  /**
   * Follows Zigbee2MQTT: a brightness without a state switches the light on (0 switches it off
   * and keeps the last level for next time); a colour temperature alone does not switch it on;
   * `transition` is accepted, and since Zigbee2MQTT reports the end state at once, ignored.
   */
  protected parseCommand(command: Payload): Apply | null {
    let on: boolean | undefined;
    let brightness: number | undefined;
    let colorTemp: number | undefined;
    if ('state' in command) {
      const next = onOff(command.state, this.on);
      if (next === null) return null;
      on = next;
    }
    if ('brightness' in command) {
      const value = numberIn(command.brightness, 0, 254);
      if (value === null) return null;
      brightness = Math.round(value);
    }
    if ('color_temp' in command) {
      const value = numberIn(command.color_temp, PLAUSIBLE_MIREDS.min, PLAUSIBLE_MIREDS.max);
      if (value === null) return null;
      colorTemp = Math.round(Math.min(this.mireds.max, Math.max(this.mireds.min, value)));
    }
    if ('transition' in command && numberIn(command.transition, 0, 3600) === null) return null;
    if (on === undefined && brightness === undefined && colorTemp === undefined) return null;
    return () => {
      // TOGGLE is resolved when applied, so two quick toggles cancel out as on a real bulb.
      if ('state' in command) on = onOff(command.state, this.on) ?? this.on;
      if (brightness !== undefined) {
        if (brightness === 0) on = false;
        else {
          this.brightness = brightness;
          on ??= true;
        }
      }
      if (colorTemp !== undefined) this.colorTemp = colorTemp;
      if (on !== undefined) this.on = on;
    };
  }
}
