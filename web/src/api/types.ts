/** The shapes the hub's API answers with, as far as the dashboard reads them. */

export type Value = string | number | boolean | null;

export interface PropertyInfo {
  type?: string;
  /** The hub's name for the property, when its schema has one (a car's bound signals). */
  title?: string;
  unit?: string;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  value: Value;
  ts: string | null;
}

export interface ActionInfo {
  capability?: string;
  title?: string;
  input?: {
    type?: string;
    properties?: Record<string, { type?: string; minimum?: number; maximum?: number; enum?: string[] }>;
  };
}

export interface Thing {
  id: string;
  kind: string;
  name: string;
  room: string | null;
  capabilities: string[];
  online: boolean | null;
  state: Record<string, Value>;
  properties: Record<string, PropertyInfo>;
  actions: Record<string, ActionInfo>;
}

export type CommandStatus = 'pending' | 'sent' | 'confirmed' | 'failed' | 'expired';

export interface Command {
  id: string;
  thing: string;
  action: string;
  status: CommandStatus;
  error: string | null;
}

export interface Person {
  id: string;
  name: string;
  presence: {
    zone: string | null;
    home: boolean | null;
    /**
     * When the newest fix from any of their trackers came (ISO), null before the first; absent
     * on older hubs.
     */
    lastReport?: string | null;
    /** Every tracker of theirs that reported is stale (no fix within the household's `staleAfter`). */
    stale?: boolean;
  };
  location: { latitude: number; longitude: number; accuracy?: number; ts?: string } | null;
  trackers?: Array<{
    id: string;
    name: string;
    online: boolean | null;
    lastSeen: string | null;
    /** No fix within the household's `staleAfter`: offline for that reason. */
    stale?: boolean;
  }>;
}

export interface Zone {
  id: string;
  name: string;
  latitude: number;
  longitude: number;
  radius: number;
}

export interface HistoryPoint {
  ts: string;
  value: Value;
  /**
   * A downsampled point (`points=N`) is a bucket starting at `ts`: how many values it held, and
   * for numbers their min, max and mean (`value` is the mean), for other values the first and last
   * and how many changes (`value` is the first).
   */
  count?: number;
  min?: number | null;
  max?: number | null;
  mean?: number | null;
  first?: Value;
  last?: Value;
  changes?: number;
}

/** `GET /api/things/{id}/history` with `points=N`: the buckets, and what they sum up. */
export interface DownsampledHistory {
  thing: string;
  property: string;
  points: HistoryPoint[];
  downsampled: {
    kind: 'number' | 'value';
    from: string | null;
    to: string | null;
    bucketMs: number;
    /** How many values were recorded in the range. */
    count: number;
    last: { ts: string; value: Value } | null;
  };
}

export interface Automation {
  id: string;
  name: string;
  enabled: boolean;
  mode: string | null;
  status: 'active' | 'disabled' | 'invalid';
  origin: string;
  file: string | null;
  problem: string | null;
  /**
   * A file's rule switched on or off over the API or the dashboard: the switch, which wins over the
   * file's `enabled:`; null (or absent, on older hubs) when the file's setting holds.
   */
  override?: boolean | null;
  /** Fields the rule holds that were ignored as it loaded (`max` on a single rule); absent on older hubs. */
  warnings?: string[];
  running: number;
  rule: Record<string, unknown>;
}

export interface TraceStep {
  path: string;
  action: string;
  at: number | string;
  status: string;
  detail?: string;
  error?: string;
  commands?: Array<{ id: string | null; thing: string; action: string; status: string; error: string | null }>;
}

export interface Trace {
  id: string;
  status: string;
  startedAt: number | string;
  /** When the trigger came in and waited its turn (mode: queued); only on runs that waited, and not on older hubs. */
  queuedAt?: number | string;
  finishedAt: number | string | null;
  trigger: { description?: string; type?: string; ts?: number | string };
  conditions: Array<{ path: string; condition: string; result: boolean; detail?: string }>;
  steps: TraceStep[];
  /** Steps a long run left out of its trace, after its first `after` steps (not on older hubs). */
  omittedSteps?: { after: number; count: number };
  error: string | null;
}

export interface ReplayRun {
  at: string;
  status: string;
  trigger: { description?: string };
  actions: Array<{ action: string; thing?: string; input?: Record<string, unknown>; message?: string }>;
}

export interface ReplayResult {
  runs: ReplayRun[];
  events: number;
  conditionFailed: number;
  skipped: number;
  truncated: boolean;
  /** Where the replay stopped: at a bound (truncated), or at now for a range that ran on past it. */
  until?: string;
  /** Why it stopped short of the range asked for, in words (a range into the future). */
  note?: string;
}

/** A trip as the car service reports it; fields vary while that API settles, so most are optional. */
export interface Trip {
  /** Null for the trip under way, which has no event of its own yet. */
  id?: string | null;
  /** The trip the car is on: listed before it is recorded, with `end: null`. */
  underWay?: boolean;
  start?: string;
  startedAt?: string;
  end?: string | null;
  endedAt?: string | null;
  distance?: number;
  distanceM?: number;
  distanceKm?: number;
  energyKwh?: number | null;
  /** Where the trip began and (so far, or in the end) where it got to. */
  from?: { latitude: number; longitude: number } | null;
  to?: { latitude: number; longitude: number } | null;
  route?: Array<{ latitude: number; longitude: number } | [number, number]>;
  points?: Array<{ latitude: number; longitude: number } | [number, number]>;
}

/** A charge plan as the energy planner has it now (`GET /api/energy/plans`). */
export interface ChargePlan {
  vehicle: string;
  charger: string;
  by: string;
  targetSoc: number | null;
  repeat: number[] | null;
  /** `priced: false`: a time past the known prices, charged at a price not known yet (cost 0 here). */
  slots: Array<{ start: string; end: string; powerKw: number; energyKwh: number; cost: number; priced?: boolean }>;
  energyKwh: number;
  neededKwh: number;
  /** The cost of the priced energy only. */
  cost: number;
  currency: string | null;
  feasible: boolean;
  /** Why the plan cannot be met, in words (null when it can). */
  reason?: string | null;
  /** Energy planned at times with no price yet. */
  unpricedKwh?: number;
  shortfallKwh: number;
  shortfallSoc: number | null;
  plannedAt: string;
}

/** The dynamic price series (`GET /api/energy/prices`), per kWh. */
export interface PriceSeries {
  currency: string;
  slots: Array<{ start: string; end: string; price: number; co2?: number }>;
}
