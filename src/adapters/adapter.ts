import type { Bus } from '../core/bus.ts';
import type { Clock } from '../core/clock.ts';
import type { Command, Report } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Thing } from '../model/thing.ts';

/**
 * What the hub offers an adapter. Adapters translate a protocol into things and reports, and
 * commands back into the protocol; they never touch the store or the twin directly.
 */
export interface AdapterContext {
  clock: Clock;
  bus: Bus;
  log: Logger;
  /** Creates or replaces a thing the adapter owns. */
  upsertThing(thing: Omit<Thing, 'createdAt' | 'updatedAt'>): Promise<Thing>;
  removeThing(householdId: string, id: string): Promise<void>;
  getThing(householdId: string, id: string): Thing | undefined;
  /** Current value of a property in the twin. */
  getValue(householdId: string, thing: string, property: string): unknown;
  /** Hands reports to the core; invalid ones are refused and logged, never stored. */
  ingest(reports: Report[]): void;
  setAvailability(householdId: string, thing: string, online: boolean): void;
}

export interface Adapter {
  /** Unique among adapters; things name it in `adapter` so commands find their way back. */
  readonly name: string;
  start(ctx: AdapterContext): Promise<void>;
  stop(): Promise<void>;
  /**
   * Puts a command on the wire. Resolving means "sent"; throwing means "failed" with the error's
   * message. Confirmation comes later, from the device's own report.
   */
  execute(command: Command, thing: Thing): Promise<void>;
}
