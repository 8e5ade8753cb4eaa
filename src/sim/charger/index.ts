export { type CarAtCharger, SimulatedChargePoint, type SimulatedChargePointOptions } from './charge-point.ts';
export { dayAheadPrices, houseLoad, solarPower } from './curves.ts';
export { SimulatedSite, type SimulatedSiteOptions } from './site.ts';
