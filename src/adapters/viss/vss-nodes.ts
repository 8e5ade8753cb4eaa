/**
 * The VSS 6.0 nodes Triad vehicles offer, with their metadata, taken from the COVESA Vehicle Signal
 * Specification v6.0 (MPL-2.0; `vss-6.0.json` in the shared reference), with instanced branches
 * expanded (Row1.DriverSide, AnyPosition, Rear…). Data only: when a signal is added, copy its entry
 * from the catalogue rather than writing metadata by hand.
 */
import type { VssNode } from './tree.ts';

export const VSS_NODES: Readonly<Record<string, VssNode>> = {
  Vehicle: { type: 'branch', description: 'High-level vehicle data.' },
  'Vehicle.Body': { type: 'branch', description: 'All body components.' },
  'Vehicle.Body.Horn': { type: 'branch', description: 'Horn signals.' },
  'Vehicle.Body.Horn.IsActive': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Horn active or inactive. True = Active. False = Inactive.',
  },
  'Vehicle.Body.Lights': { type: 'branch', description: 'Exterior lights.' },
  'Vehicle.Body.Lights.Hazard': { type: 'branch', description: 'Hazard lights.' },
  'Vehicle.Body.Lights.Hazard.IsSignaling': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Indicates if light is signaling or off. True = signaling. False = Off.',
  },
  'Vehicle.Body.Trunk': { type: 'branch', description: 'Trunk status. Start position for Trunk is Closed.' },
  'Vehicle.Body.Trunk.Rear': { type: 'branch', description: 'Rear instance of Trunk.' },
  'Vehicle.Body.Trunk.Rear.IsLocked': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item locked or unlocked. True = Locked. False = Unlocked.',
  },
  'Vehicle.Cabin': { type: 'branch', description: 'All in-cabin components, including doors.' },
  'Vehicle.Cabin.Door': { type: 'branch', description: 'All doors, including windows and switches.' },
  'Vehicle.Cabin.Door.Row1': { type: 'branch', description: 'Row1 instance of Door.' },
  'Vehicle.Cabin.Door.Row1.DriverSide': { type: 'branch', description: 'DriverSide instance of Row1.' },
  'Vehicle.Cabin.Door.Row1.DriverSide.IsLocked': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item locked or unlocked. True = Locked. False = Unlocked.',
  },
  'Vehicle.Cabin.Door.Row1.DriverSide.IsOpen': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item open or closed? True = Fully or partially open. False = Fully closed.',
  },
  'Vehicle.Cabin.Door.Row1.DriverSide.Window': { type: 'branch', description: 'Window instance of DriverSide.' },
  'Vehicle.Cabin.Door.Row1.DriverSide.Window.Position': {
    type: 'actuator',
    datatype: 'uint8',
    unit: 'percent',
    min: 0,
    max: 100,
    description: 'Item position. 0 = Start position 100 = End position.',
  },
  'Vehicle.Cabin.Door.Row1.PassengerSide': { type: 'branch', description: 'PassengerSide instance of Row1.' },
  'Vehicle.Cabin.Door.Row1.PassengerSide.IsLocked': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item locked or unlocked. True = Locked. False = Unlocked.',
  },
  'Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item open or closed? True = Fully or partially open. False = Fully closed.',
  },
  'Vehicle.Cabin.Door.Row1.PassengerSide.Window': { type: 'branch', description: 'Window instance of PassengerSide.' },
  'Vehicle.Cabin.Door.Row1.PassengerSide.Window.Position': {
    type: 'actuator',
    datatype: 'uint8',
    unit: 'percent',
    min: 0,
    max: 100,
    description: 'Item position. 0 = Start position 100 = End position.',
  },
  'Vehicle.Cabin.Door.Row2': { type: 'branch', description: 'Row2 instance of Door.' },
  'Vehicle.Cabin.Door.Row2.DriverSide': { type: 'branch', description: 'DriverSide instance of Row2.' },
  'Vehicle.Cabin.Door.Row2.DriverSide.IsLocked': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item locked or unlocked. True = Locked. False = Unlocked.',
  },
  'Vehicle.Cabin.Door.Row2.DriverSide.IsOpen': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item open or closed? True = Fully or partially open. False = Fully closed.',
  },
  'Vehicle.Cabin.Door.Row2.DriverSide.Window': { type: 'branch', description: 'Window instance of DriverSide.' },
  'Vehicle.Cabin.Door.Row2.DriverSide.Window.Position': {
    type: 'actuator',
    datatype: 'uint8',
    unit: 'percent',
    min: 0,
    max: 100,
    description: 'Item position. 0 = Start position 100 = End position.',
  },
  'Vehicle.Cabin.Door.Row2.PassengerSide': { type: 'branch', description: 'PassengerSide instance of Row2.' },
  'Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item locked or unlocked. True = Locked. False = Unlocked.',
  },
  'Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is item open or closed? True = Fully or partially open. False = Fully closed.',
  },
  'Vehicle.Cabin.Door.Row2.PassengerSide.Window': { type: 'branch', description: 'Window instance of PassengerSide.' },
  'Vehicle.Cabin.Door.Row2.PassengerSide.Window.Position': {
    type: 'actuator',
    datatype: 'uint8',
    unit: 'percent',
    min: 0,
    max: 100,
    description: 'Item position. 0 = Start position 100 = End position.',
  },
  'Vehicle.Cabin.HVAC': { type: 'branch', description: 'Climate control' },
  'Vehicle.Cabin.HVAC.AmbientAirTemperature': {
    type: 'sensor',
    datatype: 'float',
    unit: 'Celsius',
    description: 'Ambient air temperature inside the vehicle.',
  },
  'Vehicle.Cabin.HVAC.IsAirConditioningActive': {
    type: 'actuator',
    datatype: 'boolean',
    description: 'Is Air conditioning active.',
  },
  'Vehicle.Cabin.HVAC.Station': { type: 'branch', description: 'HVAC for single station in the vehicle' },
  'Vehicle.Cabin.HVAC.Station.Row1': { type: 'branch', description: 'Row1 instance of Station.' },
  'Vehicle.Cabin.HVAC.Station.Row1.Driver': { type: 'branch', description: 'Driver instance of Row1.' },
  'Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature': {
    type: 'actuator',
    datatype: 'float',
    unit: 'Celsius',
    description: 'Temperature',
  },
  'Vehicle.CurrentLocation': { type: 'branch', description: 'The current latitude and longitude of the vehicle.' },
  'Vehicle.CurrentLocation.Heading': {
    type: 'sensor',
    datatype: 'double',
    unit: 'degrees',
    min: 0,
    max: 360,
    description: 'Current heading relative to geographic north. 0 = North, 90 = East, 180 = South, 270 = West.',
  },
  'Vehicle.CurrentLocation.HorizontalAccuracy': {
    type: 'sensor',
    datatype: 'double',
    unit: 'm',
    description: 'Accuracy of the latitude and longitude coordinates.',
  },
  'Vehicle.CurrentLocation.Latitude': {
    type: 'sensor',
    datatype: 'double',
    unit: 'degrees',
    min: -90,
    max: 90,
    description:
      'Current latitude of vehicle in WGS 84 geodetic coordinates, as measured at the position of GNSS receiver antenna.',
  },
  'Vehicle.CurrentLocation.Longitude': {
    type: 'sensor',
    datatype: 'double',
    unit: 'degrees',
    min: -180,
    max: 180,
    description:
      'Current longitude of vehicle in WGS 84 geodetic coordinates, as measured at the position of GNSS receiver antenna.',
  },
  'Vehicle.Exterior': { type: 'branch', description: 'Information about exterior measured by vehicle.' },
  'Vehicle.Exterior.AirTemperature': {
    type: 'sensor',
    datatype: 'float',
    unit: 'Celsius',
    description: 'Air temperature outside the vehicle.',
  },
  'Vehicle.IsMoving': {
    type: 'sensor',
    datatype: 'boolean',
    description: 'Indicates whether the vehicle is stationary or moving.',
  },
  'Vehicle.Powertrain': { type: 'branch', description: 'Powertrain data for battery management, etc.' },
  'Vehicle.Powertrain.TractionBattery': { type: 'branch', description: 'Battery Management data.' },
  'Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy': {
    type: 'sensor',
    datatype: 'float',
    unit: 'kWh',
    description: 'The accumulated energy delivered to the battery during charging over lifetime of the battery.',
  },
  'Vehicle.Powertrain.TractionBattery.AccumulatedConsumedEnergy': {
    type: 'sensor',
    datatype: 'float',
    unit: 'kWh',
    description:
      'The accumulated energy leaving HV battery for propulsion and auxiliary loads over lifetime of the battery.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging': {
    type: 'branch',
    description: 'Properties related to battery charging.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit': {
    type: 'actuator',
    datatype: 'uint8',
    unit: 'percent',
    min: 0,
    max: 100,
    description: 'Target charge limit (state of charge) for battery.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.ChargingPort': {
    type: 'branch',
    description: 'Properties related to a particular charging port available in the vehicle.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition': {
    type: 'branch',
    description: 'AnyPosition instance of ChargingPort.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.IsChargingCableConnected': {
    type: 'sensor',
    datatype: 'boolean',
    description: 'Indicates whether a charging cable is physically connected to a particular charging port or not.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.IsCharging': {
    type: 'sensor',
    datatype: 'boolean',
    description:
      'True if charging is ongoing. Charging is considered to be ongoing if energy is flowing from charger to vehicle.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging': {
    type: 'actuator',
    datatype: 'string',
    allowed: ['START', 'STOP'],
    description: 'Start or stop the charging process.',
  },
  'Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete': {
    type: 'sensor',
    datatype: 'uint32',
    unit: 's',
    description:
      'The time needed for the current charging process to reach Charging.ChargeLimit. 0 if charging is complete or no charging process is active or planned.',
  },
  'Vehicle.Powertrain.TractionBattery.CurrentPower': {
    type: 'sensor',
    datatype: 'float',
    unit: 'W',
    description:
      'Current electrical energy flowing in/out of battery. Positive = Energy flowing in to battery, e.g. during charging. Negative = Energy flowing out of battery, e.g. during driving.',
  },
  'Vehicle.Powertrain.TractionBattery.NetCapacity': {
    type: 'sensor',
    datatype: 'uint16',
    unit: 'kWh',
    description: 'Total net capacity of the battery considering aging.',
  },
  'Vehicle.Powertrain.TractionBattery.Range': {
    type: 'sensor',
    datatype: 'uint32',
    unit: 'm',
    description: 'Remaining range in meters using only battery.',
  },
  'Vehicle.Powertrain.TractionBattery.StateOfCharge': {
    type: 'branch',
    description: "Information on the state of charge of the vehicle's high voltage battery.",
  },
  'Vehicle.Powertrain.TractionBattery.StateOfCharge.Current': {
    type: 'sensor',
    datatype: 'float',
    unit: 'percent',
    min: 0,
    max: 100.0,
    description:
      'Physical state of charge of the high voltage battery, relative to net capacity. This is not necessarily the state of charge being displayed to the customer.',
  },
  'Vehicle.Speed': { type: 'sensor', datatype: 'float', unit: 'km/h', description: 'Vehicle speed.' },
  'Vehicle.TraveledDistance': {
    type: 'sensor',
    datatype: 'uint32',
    unit: 'm',
    description: 'Odometer reading, total distance traveled during the lifetime of the vehicle.',
  },
  'Vehicle.VehicleIdentification': { type: 'branch', description: 'Attributes that identify a vehicle.' },
  'Vehicle.VehicleIdentification.VIN': {
    type: 'attribute',
    datatype: 'string',
    description: '17-character Vehicle Identification Number (VIN) as defined by ISO 3779.',
  },
};
