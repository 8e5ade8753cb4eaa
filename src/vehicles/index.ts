export { vehicleActions, writesFor } from './actions.ts';
export { CHARGING_SESSION_EVENT, type ChargingSessionRecord } from './charging.ts';
export { vehicleMapping, vehiclePaths } from './mapping.ts';
export { vehicleSafetyGuard } from './safety.ts';
export { parseVehicleConfig, type VehicleEndpoint, VehicleService, type VehicleServiceOptions } from './service.ts';
export { VEHICLE_SIGNALS, VSS } from './signals.ts';
export { vehicleThing } from './thing.ts';
export { TRIP_EVENT, type TripRecord } from './trips.ts';
