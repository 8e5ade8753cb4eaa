import type { DataSchema } from './schema.ts';

/**
 * Triad's shared vocabulary: every property is `<capability>.<name>` and every action belongs to
 * a capability. Adapters pick from here when they describe a thing, so an automation written for
 * one light works for every light, whatever protocol it speaks.
 */

/** What the device must report for a command to count as confirmed. */
export type Expectation = Record<string, unknown>;

/** Reads a property of the target thing's current state (for toggles and relative actions). */
export type StateReader = (property: string) => unknown;

/** A report that means an action failed, and the error its command then ends with. */
export interface FailureReport {
  property: string;
  value: unknown;
  error: string;
}

export interface ActionDefinition {
  title: string;
  input?: DataSchema;
  /** The state that proves the action took effect; null when only the adapter's ack can tell. */
  expect: (input: Record<string, unknown>, current: StateReader) => Expectation | null;
  /**
   * Reports that prove it did not (a lock that says it is jammed): one heard after the command
   * was sent fails it at once, instead of leaving it to expire. Checked before `expect`.
   */
  failsOn?: readonly FailureReport[];
}

export interface CapabilityDefinition {
  title: string;
  properties: Record<string, DataSchema>;
  actions: Record<string, ActionDefinition>;
}

const percent: DataSchema = { type: 'number', minimum: 0, maximum: 100, unit: '%' };
const bool: DataSchema = { type: 'boolean' };
const celsius: DataSchema = { type: 'number', minimum: -90, maximum: 150, unit: '°C' };

/** A four-door car's doors and windows, named as people say them (VSS: Row1/Row2 × side). */
export const CAR_DOORS = ['front_driver', 'front_passenger', 'rear_driver', 'rear_passenger'] as const;
const CAR_WINDOW_CHOICES = [...CAR_DOORS, 'all'];

/** A lock that says it is jammed did not do what it was told, whichever way it was told. */
const LOCK_JAMMED: readonly FailureReport[] = [
  { property: 'lock.jammed', value: true, error: 'the lock reports it is jammed' },
];

const onOffActions = (capability: string): Record<string, ActionDefinition> => ({
  turn_on: { title: 'Turn on', expect: () => ({ [`${capability}.on`]: true }) },
  turn_off: { title: 'Turn off', expect: () => ({ [`${capability}.on`]: false }) },
  toggle: {
    title: 'Toggle',
    expect: (_i, current) => ({ [`${capability}.on`]: current(`${capability}.on`) !== true }),
  },
});

export const capabilities = {
  switch: {
    title: 'Switch',
    properties: { on: bool },
    actions: onOffActions('switch'),
  },
  light: {
    title: 'Light',
    properties: {
      on: bool,
      brightness: percent,
      color_temp: { type: 'number', minimum: 1000, maximum: 10000, unit: 'K' },
    },
    actions: {
      turn_on: {
        title: 'Turn on',
        input: {
          type: 'object',
          properties: {
            brightness: percent,
            color_temp: { type: 'number', minimum: 1000, maximum: 10000, unit: 'K' },
          },
        },
        expect: (input) => {
          const expected: Expectation = { 'light.on': true };
          if (input.brightness !== undefined) expected['light.brightness'] = input.brightness;
          if (input.color_temp !== undefined) expected['light.color_temp'] = input.color_temp;
          return expected;
        },
      },
      turn_off: { title: 'Turn off', expect: () => ({ 'light.on': false }) },
      toggle: { title: 'Toggle', expect: (_i, current) => ({ 'light.on': current('light.on') !== true }) },
    },
  },
  sensor: {
    title: 'Sensor',
    properties: {
      temperature: { type: 'number', minimum: -90, maximum: 150, unit: '°C' },
      humidity: percent,
      illuminance: { type: 'number', minimum: 0, maximum: 200000, unit: 'lx' },
      power: { type: 'number', unit: 'W' },
      energy: { type: 'number', minimum: 0, unit: 'kWh' },
      contact: bool,
      motion: bool,
    },
    actions: {},
  },
  lock: {
    title: 'Lock',
    // Jammed: neither locked nor unlocked (a bolt that did not throw); only locks that say so have it.
    properties: { locked: bool, jammed: bool },
    actions: {
      lock: { title: 'Lock', expect: () => ({ 'lock.locked': true }), failsOn: LOCK_JAMMED },
      unlock: { title: 'Unlock', expect: () => ({ 'lock.locked': false }), failsOn: LOCK_JAMMED },
    },
  },
  climate: {
    title: 'Climate',
    properties: {
      mode: { type: 'string', enum: ['off', 'heat', 'cool', 'auto'] },
      current_temperature: celsius,
      target_temperature: { type: 'number', minimum: 5, maximum: 35, unit: '°C' },
    },
    actions: {
      set_mode: {
        title: 'Set mode',
        input: {
          type: 'object',
          required: ['mode'],
          properties: { mode: { type: 'string', enum: ['off', 'heat', 'cool', 'auto'] } },
        },
        expect: (input) => ({ 'climate.mode': input.mode }),
      },
      set_target_temperature: {
        title: 'Set target temperature',
        input: {
          type: 'object',
          required: ['temperature'],
          properties: { temperature: { type: 'number', minimum: 5, maximum: 35, unit: '°C' } },
        },
        expect: (input) => ({ 'climate.target_temperature': input.temperature }),
      },
    },
  },
  cover: {
    title: 'Cover',
    properties: { position: percent },
    actions: {
      open: { title: 'Open', expect: () => ({ 'cover.position': 100 }) },
      close: { title: 'Close', expect: () => ({ 'cover.position': 0 }) },
      set_position: {
        title: 'Set position',
        input: { type: 'object', required: ['position'], properties: { position: percent } },
        expect: (input) => ({ 'cover.position': input.position }),
      },
    },
  },
  location: {
    title: 'Location',
    properties: {
      latitude: { type: 'number', minimum: -90, maximum: 90, unit: 'deg' },
      longitude: { type: 'number', minimum: -180, maximum: 180, unit: 'deg' },
      accuracy: { type: 'number', minimum: 0, unit: 'm' },
      heading: { type: 'number', minimum: 0, maximum: 360, unit: 'deg' },
      speed: { type: 'number', minimum: 0, maximum: 1000, unit: 'km/h' },
    },
    actions: {},
  },
  presence: {
    title: 'Presence',
    properties: {
      zone: { oneOf: [{ type: 'string', maxLength: 200 }, { type: 'null' }] },
      home: bool,
      anyone_home: bool,
      everyone_away: bool,
    },
    actions: {},
  },
  battery: {
    title: 'Battery',
    properties: {
      level: percent,
      range: { type: 'number', minimum: 0, unit: 'm' },
      /** Usable (net) capacity, what a charge plan divides by. */
      capacity: { type: 'number', minimum: 0, maximum: 1000, unit: 'kWh' },
    },
    actions: {},
  },
  charging: {
    title: 'Charging',
    properties: {
      connected: bool,
      charging: bool,
      power: { type: 'number', minimum: 0, unit: 'kW' },
      limit: percent,
      current_limit: { type: 'number', minimum: 0, maximum: 80, unit: 'A' },
      /** Energy added in the current (or last) charging session. */
      energy: { type: 'number', minimum: 0, unit: 'kWh' },
      /** Time left until the charge limit is reached; 0 when not charging. */
      time_to_complete: { type: 'number', minimum: 0, unit: 's' },
    },
    actions: {
      start: { title: 'Start charging', expect: () => ({ 'charging.charging': true }) },
      stop: { title: 'Stop charging', expect: () => ({ 'charging.charging': false }) },
      set_limit: {
        title: 'Set charge limit',
        input: { type: 'object', required: ['limit'], properties: { limit: percent } },
        expect: (input) => ({ 'charging.limit': input.limit }),
      },
      plan: {
        title: 'Plan a charge',
        // "80 % by 07:30": what an automation sends when tomorrow's alarm is set.
        input: {
          type: 'object',
          required: ['by'],
          properties: {
            vehicle: { type: 'string', maxLength: 128 },
            targetSoc: percent,
            energyKwh: { type: 'number', minimum: 0, maximum: 500, unit: 'kWh' },
            by: { type: 'string', maxLength: 64 },
            repeat: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 7 }, maxItems: 7 },
          },
        },
        // A plan is the hub's own decision: accepted is all there is to confirm.
        expect: () => null,
      },
      set_current_limit: {
        title: 'Set current limit',
        input: {
          type: 'object',
          required: ['current'],
          properties: { current: { type: 'number', minimum: 0, maximum: 80, unit: 'A' } },
        },
        expect: (input) => ({ 'charging.current_limit': input.current }),
      },
    },
  },
  /** What a car has that the rest of the vocabulary has not: windows, horn, odometer… */
  vehicle: {
    title: 'Vehicle',
    properties: {
      odometer: { type: 'number', minimum: 0, unit: 'm' },
      moving: bool,
      vin: { type: 'string', maxLength: 17 },
      outside_temperature: celsius,
      charged_energy: { type: 'number', minimum: 0, unit: 'kWh' },
      consumed_energy: { type: 'number', minimum: 0, unit: 'kWh' },
      trunk_locked: bool,
      ...Object.fromEntries(CAR_DOORS.filter((d) => d !== 'front_driver').map((d) => [`door_${d}_locked`, bool])),
      ...Object.fromEntries(CAR_DOORS.map((d) => [`door_${d}_open`, bool])),
      ...Object.fromEntries(CAR_DOORS.map((d) => [`window_${d}`, percent])),
      horn: bool,
      hazard_lights: bool,
    },
    actions: {
      set_window: {
        title: 'Open or close a window',
        input: {
          type: 'object',
          required: ['window', 'position'],
          properties: { window: { type: 'string', enum: CAR_WINDOW_CHOICES }, position: percent },
        },
        expect: (input) => {
          const windows = input.window === 'all' ? CAR_DOORS : [input.window as string];
          return Object.fromEntries(windows.map((w) => [`vehicle.window_${w}`, input.position]));
        },
      },
      // A honk and a flash are over in seconds: the car accepting them is all that can be confirmed.
      honk: { title: 'Sound the horn', expect: () => null },
      flash: { title: 'Flash the hazard lights', expect: () => null },
    },
  },
} satisfies Record<string, CapabilityDefinition>;

export type CapabilityName = keyof typeof capabilities;

export function isCapability(name: string): name is CapabilityName {
  return Object.hasOwn(capabilities, name);
}

/** The schema of a vocabulary property such as `light.brightness`, or undefined. */
export function propertySchema(property: string): DataSchema | undefined {
  const [capability, name] = property.split('.', 2);
  if (!capability || !name || !isCapability(capability)) return undefined;
  const props: Record<string, DataSchema> = capabilities[capability].properties;
  return Object.hasOwn(props, name) ? props[name] : undefined;
}

/** The definition of a capability's action, or undefined. */
export function actionDefinition(capability: string, action: string): ActionDefinition | undefined {
  if (!isCapability(capability)) return undefined;
  const actions: Record<string, ActionDefinition> = capabilities[capability].actions;
  return Object.hasOwn(actions, action) ? actions[action] : undefined;
}
