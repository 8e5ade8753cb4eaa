import {
  type Apply,
  type DeviceContext,
  type DeviceIdentity,
  type DiscoveryEntry,
  numberIn,
  type Payload,
  SimDevice,
} from './device.ts';

export const THERMOSTAT_MODES = ['off', 'heat', 'cool', 'auto'] as const;
export type ThermostatMode = (typeof THERMOSTAT_MODES)[number];
type Running = 'idle' | 'heat' | 'cool';

const SETPOINT = { min: 5, max: 30, step: 0.5 } as const;
/** How often the room's temperature is recomputed and, if it changed, reported. */
const TICK_MS = 30_000;
/** Time constant while heating or cooling: most of a 2 °C gap closes in about 15 minutes. */
const ACTIVE_TAU_MS = 8 * 60_000;
/** Time constant of an idle room drifting to the outside-influenced resting temperature. */
const IDLE_TAU_MS = 60 * 60_000;
const ROOM_REST = 18;
/** The temperatures a room it sits in can have, °C: a saved one outside them is not taken. */
const ROOM = { min: -10, max: 45 } as const;
/** The thermostat starts heating only this far below the set-point (and cooling this far above). */
const HYSTERESIS = 0.3;
/** Heat is delivered aiming a little past the set-point, so the room actually reaches it. */
const OVERSHOOT = 0.5;

export interface ThermostatInitial {
  mode?: ThermostatMode;
  setpoint?: number;
  temperature?: number;
}

/**
 * A wall thermostat as Zigbee2MQTT exposes an HVAC cluster: `system_mode`, one set-point
 * (`occupied_heating_setpoint`, used for cooling too in this simplified unit), `local_temperature`
 * and `running_state`. The room it sits in warms or cools towards the set-point over minutes.
 */
export class SimThermostat extends SimDevice {
  readonly kind = 'climate';
  private mode: ThermostatMode;
  private setpoint: number;
  private temperature: number;
  private running: Running = 'idle';

  constructor(identity: DeviceIdentity, ctx: DeviceContext, initial: ThermostatInitial = {}) {
    super(identity, ctx);
    this.mode = initial.mode ?? 'heat';
    this.setpoint = initial.setpoint ?? 21;
    this.temperature = initial.temperature ?? 19.5;
    this.running = this.decide();
  }

  protected snapshot(): Payload {
    return {
      system_mode: this.mode,
      occupied_heating_setpoint: this.setpoint,
      local_temperature: round1(this.temperature),
      running_state: this.running,
      linkquality: 110,
    };
  }

  protected entities(): DiscoveryEntry[] {
    const base = this.baseTopic;
    return [
      {
        component: 'climate',
        object: 'climate',
        config: {
          name: null,
          // Zigbee2MQTT commands a climate entity one attribute per topic, with a bare value.
          mode_command_topic: `${base}/set/system_mode`,
          mode_state_topic: base,
          mode_state_template: '{{ value_json.system_mode }}',
          modes: [...THERMOSTAT_MODES],
          temperature_command_topic: `${base}/set/occupied_heating_setpoint`,
          temperature_state_topic: base,
          temperature_state_template: '{{ value_json.occupied_heating_setpoint }}',
          current_temperature_topic: base,
          current_temperature_template: '{{ value_json.local_temperature }}',
          action_topic: base,
          action_template:
            "{% set values = {'idle':'idle','heat':'heating','cool':'cooling'} %}{{ values[value_json.running_state] }}",
          min_temp: SETPOINT.min,
          max_temp: SETPOINT.max,
          temp_step: SETPOINT.step,
          precision: 0.1,
          temperature_unit: 'C',
        },
      },
    ];
  }

  protected parseCommand(command: Payload): Apply | null {
    let mode: ThermostatMode | undefined;
    let setpoint: number | undefined;
    if ('system_mode' in command) {
      const value = command.system_mode;
      if (!THERMOSTAT_MODES.includes(value as ThermostatMode)) return null;
      mode = value as ThermostatMode;
    }
    if ('occupied_heating_setpoint' in command) {
      const value = numberIn(command.occupied_heating_setpoint, SETPOINT.min, SETPOINT.max);
      if (value === null) return null;
      // The unit only holds set-points on its 0.5 °C grid.
      setpoint = Math.round(value / SETPOINT.step) * SETPOINT.step;
    }
    if (mode === undefined && setpoint === undefined) return null;
    return () => {
      if (mode !== undefined) this.mode = mode;
      if (setpoint !== undefined) this.setpoint = setpoint;
      this.running = this.decide();
    };
  }

  /** Also takes up the room's temperature, within what a room can be; the unit then decides afresh whether to run. */
  override restore(saved: unknown): boolean {
    if (!super.restore(saved)) return false;
    const temperature = numberIn((saved as Payload).local_temperature, ROOM.min, ROOM.max);
    if (temperature !== null) this.temperature = temperature;
    this.running = this.decide();
    return true;
  }

  protected override startBehaviour(): void {
    this.every(TICK_MS, () => this.tick());
  }

  private tick(): void {
    const before = JSON.stringify(this.snapshot());
    const aim =
      this.running === 'heat'
        ? this.setpoint + OVERSHOOT
        : this.running === 'cool'
          ? this.setpoint - OVERSHOOT
          : ROOM_REST;
    const tau = this.running === 'idle' ? IDLE_TAU_MS : ACTIVE_TAU_MS;
    this.temperature += (aim - this.temperature) * (1 - Math.exp(-TICK_MS / tau));
    this.running = this.decide();
    // Like a real thermostat, report only when something visible changed.
    if (JSON.stringify(this.snapshot()) !== before) this.publishState();
  }

  /** Whether to heat, cool or rest now, with hysteresis so the unit does not chatter. */
  private decide(): Running {
    const t = round1(this.temperature);
    const canHeat = this.mode === 'heat' || this.mode === 'auto';
    const canCool = this.mode === 'cool' || this.mode === 'auto';
    if (canHeat && (t < this.setpoint - HYSTERESIS || (this.running === 'heat' && t < this.setpoint))) return 'heat';
    if (canCool && (t > this.setpoint + HYSTERESIS || (this.running === 'cool' && t > this.setpoint))) return 'cool';
    return 'idle';
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
