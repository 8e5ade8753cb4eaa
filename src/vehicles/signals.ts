import type { SignalValue } from '../adapters/viss/tree.ts';
import type { DataSchema } from '../model/schema.ts';
import { propertySchema } from '../model/vocabulary.ts';

/**
 * The vehicle twin's properties and the VSS 6.0 signal each is bound to. Automations use the
 * vocabulary (`battery.level`, `lock.locked`…); VISS speaks the paths; this table is the only place
 * that knows both, with the unit conversions between them.
 */
export interface VehicleSignal {
  property: string;
  path: string;
  schema: DataSchema;
  /** VSS value → twin value; the identity when the units agree. */
  fromVss?: (value: SignalValue) => unknown;
  /** Twin value → VSS value, for the hub's own VISS server. */
  toVss?: (value: unknown) => SignalValue;
}

/** A door of a four-door car, named as people say it; VSS calls them Row/Side. */
export const DOORS = {
  front_driver: 'Row1.DriverSide',
  front_passenger: 'Row1.PassengerSide',
  rear_driver: 'Row2.DriverSide',
  rear_passenger: 'Row2.PassengerSide',
} as const;
export type DoorName = keyof typeof DOORS;
export const DOOR_NAMES = Object.keys(DOORS) as DoorName[];

export const VSS = {
  speed: 'Vehicle.Speed',
  odometer: 'Vehicle.TraveledDistance',
  moving: 'Vehicle.IsMoving',
  latitude: 'Vehicle.CurrentLocation.Latitude',
  longitude: 'Vehicle.CurrentLocation.Longitude',
  heading: 'Vehicle.CurrentLocation.Heading',
  accuracy: 'Vehicle.CurrentLocation.HorizontalAccuracy',
  outsideTemperature: 'Vehicle.Exterior.AirTemperature',
  vin: 'Vehicle.VehicleIdentification.VIN',
  stateOfCharge: 'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current',
  range: 'Vehicle.Powertrain.TractionBattery.Range',
  netCapacity: 'Vehicle.Powertrain.TractionBattery.NetCapacity',
  batteryPower: 'Vehicle.Powertrain.TractionBattery.CurrentPower',
  chargedEnergy: 'Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy',
  consumedEnergy: 'Vehicle.Powertrain.TractionBattery.AccumulatedConsumedEnergy',
  isCharging: 'Vehicle.Powertrain.TractionBattery.Charging.IsCharging',
  chargeLimit: 'Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit',
  startStopCharging: 'Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging',
  timeToComplete: 'Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete',
  cableConnected: 'Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected',
  cabinTemperature: 'Vehicle.Cabin.HVAC.AmbientAirTemperature',
  hvacActive: 'Vehicle.Cabin.HVAC.IsAirConditioningActive',
  driverSetPoint: 'Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature',
  trunkLocked: 'Vehicle.Body.Trunk.Rear.IsLocked',
  horn: 'Vehicle.Body.Horn.IsActive',
  hazard: 'Vehicle.Body.Lights.Hazard.IsSignaling',
  doorLocked: (door: DoorName) => `Vehicle.Cabin.Door.${DOORS[door]}.IsLocked`,
  doorOpen: (door: DoorName) => `Vehicle.Cabin.Door.${DOORS[door]}.IsOpen`,
  window: (door: DoorName) => `Vehicle.Cabin.Door.${DOORS[door]}.Window.Position`,
} as const;

const bool: DataSchema = { type: 'boolean' };
const percent: DataSchema = { type: 'number', minimum: 0, maximum: 100, unit: '%' };

function vocabulary(property: string): DataSchema {
  const schema = propertySchema(property);
  if (!schema) throw new Error(`${property} is not in the vocabulary`);
  return schema;
}

/** The bound signals, in the order a VISS client would read them. */
export const VEHICLE_SIGNALS: readonly VehicleSignal[] = [
  { property: 'location.latitude', path: VSS.latitude, schema: vocabulary('location.latitude') },
  { property: 'location.longitude', path: VSS.longitude, schema: vocabulary('location.longitude') },
  { property: 'location.heading', path: VSS.heading, schema: vocabulary('location.heading') },
  { property: 'location.accuracy', path: VSS.accuracy, schema: vocabulary('location.accuracy') },
  // VSS speed is negative when reversing; the vocabulary's speed is how fast, not which way.
  {
    property: 'location.speed',
    path: VSS.speed,
    schema: vocabulary('location.speed'),
    fromVss: (v) => Math.abs(Number(v)),
  },
  {
    property: 'vehicle.odometer',
    path: VSS.odometer,
    schema: { type: 'number', minimum: 0, unit: 'm', title: 'Odometer' },
  },
  { property: 'vehicle.moving', path: VSS.moving, schema: { ...bool, title: 'Moving' } },
  { property: 'vehicle.vin', path: VSS.vin, schema: { type: 'string', maxLength: 17, title: 'VIN' } },
  {
    property: 'vehicle.outside_temperature',
    path: VSS.outsideTemperature,
    schema: { type: 'number', minimum: -90, maximum: 150, unit: '°C', title: 'Outside temperature' },
  },
  { property: 'battery.level', path: VSS.stateOfCharge, schema: vocabulary('battery.level') },
  { property: 'battery.range', path: VSS.range, schema: vocabulary('battery.range') },
  { property: 'battery.capacity', path: VSS.netCapacity, schema: vocabulary('battery.capacity') },
  { property: 'charging.connected', path: VSS.cableConnected, schema: vocabulary('charging.connected') },
  { property: 'charging.charging', path: VSS.isCharging, schema: vocabulary('charging.charging') },
  {
    property: 'charging.limit',
    path: VSS.chargeLimit,
    schema: vocabulary('charging.limit'),
    toVss: (v) => Math.round(Number(v)),
  },
  // VSS: W into the battery, negative out of it. It is not the charging power: braking and a
  // wallbox that heats a plugged-in cabin fill the battery too. `charging.power` is worked out from
  // it while the car says it charges (withChargingPower in mapping.ts).
  {
    property: 'vehicle.battery_power',
    path: VSS.batteryPower,
    schema: { type: 'number', unit: 'kW', title: 'Battery power (into it; negative out)' },
    fromVss: (v) => Number(v) / 1000,
    toVss: (v) => Number(v) * 1000,
  },
  {
    property: 'charging.time_to_complete',
    path: VSS.timeToComplete,
    schema: vocabulary('charging.time_to_complete'),
    toVss: (v) => Math.round(Number(v)),
  },
  {
    property: 'vehicle.charged_energy',
    path: VSS.chargedEnergy,
    schema: { type: 'number', minimum: 0, unit: 'kWh', title: 'Energy charged over the battery’s life' },
  },
  {
    property: 'vehicle.consumed_energy',
    path: VSS.consumedEnergy,
    schema: { type: 'number', minimum: 0, unit: 'kWh', title: 'Energy used over the battery’s life' },
  },
  {
    property: 'climate.current_temperature',
    path: VSS.cabinTemperature,
    schema: vocabulary('climate.current_temperature'),
  },
  // VSS 6.0 has no single "climate on" signal; the air-conditioning switch is what pre-conditioning turns on.
  {
    property: 'climate.mode',
    path: VSS.hvacActive,
    schema: { type: 'string', enum: ['off', 'auto'] },
    fromVss: (v) => (v === true ? 'auto' : 'off'),
    toVss: (v) => v !== 'off',
  },
  {
    property: 'climate.target_temperature',
    path: VSS.driverSetPoint,
    schema: { type: 'number', minimum: -40, maximum: 80, unit: '°C' },
  },
  // The driver's door speaks for central locking.
  { property: 'lock.locked', path: VSS.doorLocked('front_driver'), schema: vocabulary('lock.locked') },
  ...DOOR_NAMES.filter((door) => door !== 'front_driver').map((door) => ({
    property: `vehicle.door_${door}_locked`,
    path: VSS.doorLocked(door),
    schema: bool,
  })),
  { property: 'vehicle.trunk_locked', path: VSS.trunkLocked, schema: bool },
  ...DOOR_NAMES.map((door) => ({ property: `vehicle.door_${door}_open`, path: VSS.doorOpen(door), schema: bool })),
  ...DOOR_NAMES.map((door) => ({ property: `vehicle.window_${door}`, path: VSS.window(door), schema: percent })),
  { property: 'vehicle.horn', path: VSS.horn, schema: bool },
  { property: 'vehicle.hazard_lights', path: VSS.hazard, schema: bool },
];

const byPath = new Map(VEHICLE_SIGNALS.map((signal) => [signal.path, signal]));

export function signalForPath(path: string): VehicleSignal | undefined {
  return byPath.get(path);
}

/** Actuators the car takes commands on without a twin property of their own. */
export const COMMAND_ONLY_PATHS: readonly string[] = [VSS.startStopCharging];
