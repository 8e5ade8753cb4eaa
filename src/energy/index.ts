export { MQTT_CHARGER_ADAPTER, MqttChargerHouseholds, MqttChargers } from './chargers/mqtt-chargers.ts';
export {
  CHARGE_MODES,
  type ChargeMode,
  type ChargerLimits,
  maxPowerKw,
  shareHeadroom,
  wantedCurrent,
} from './modes/charge-mode.ts';
export { type SolarSettings, SolarSurplus } from './modes/solar-surplus.ts';
export {
  type ChargeNeed,
  type ChargePlan,
  energyForSoc,
  type PlannedSlot,
  type PlanningInput,
  planCharging,
} from './planner/charge-planner.ts';
export { FlowNetwork } from './planner/min-cost-flow.ts';
export type { PlanRequest, PlanView } from './planner/plan-book.ts';
export {
  type ChargerSettings,
  EnergyService,
  type EnergyServiceOptions,
  FINAL_READING_WAIT_MS,
  PLUG_MATCH_MS,
  SITE_THING,
} from './service.ts';
export { type ChargingSession, SessionBook } from './sessions/charging-sessions.ts';
export { DEFAULT_STALE_AFTER_S, type SiteConfig, SiteMeters, type SiteReading } from './site/site-meters.ts';
export { checkNewSeries, checkSeries, type PriceSlot, parseCsvSeries, parseJsonSeries } from './tariff/price-series.ts';
export { Tariff, type TariffConfig, type TimeOfUseRule } from './tariff/tariff.ts';
