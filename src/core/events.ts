import type { Thing } from '../model/thing.ts';
import type { AuditActor } from '../store/store.ts';

/** Every event carries its household and the id of what caused it, so traces can walk back. */
interface EventBase {
  id: string;
  householdId: string;
  ts: number;
  cause?: string | null;
}

/** A value a device, phone or car reported, before the twin decides whether anything changed. */
export interface Report {
  householdId: string;
  thing: string;
  property: string;
  value: unknown;
  ts?: number;
  source: string;
  cause?: string | null;
  /**
   * Kept by the broker from before and handed over again (an MQTT retained message, as after a
   * restart): it sets the twin, but is no device's answer to a command sent since.
   */
  retained?: boolean;
}

export interface StateChanged extends EventBase {
  type: 'state';
  thing: string;
  property: string;
  from: unknown;
  to: unknown;
  source: string;
}

export type CommandStatus = 'pending' | 'sent' | 'confirmed' | 'failed' | 'expired';

export interface Command {
  id: string;
  householdId: string;
  thing: string;
  action: string;
  input: Record<string, unknown>;
  status: CommandStatus;
  /** The state that will confirm the command, fixed when it was issued. */
  expect: Record<string, unknown> | null;
  error?: string | null;
  cause?: string | null;
  /** Who asked: a user id, a rule id, or 'system'. */
  issuedBy: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  /**
   * Every status it went through, kept in its stored row: the event log reads a command's events
   * from there rather than from rows of their own. Only on what is handed to the store.
   */
  log?: CommandStep[];
  /**
   * Who asked and through which interface, as the audit trail names them; set by the permission
   * guard, absent for a rule's own commands (their traces say who). Kept in the stored row, so a
   * command that ends after a restart (expired while the hub was down) is still recorded against
   * whoever asked for it. Rows written before it read back without it.
   */
  requestedBy?: CommandRequester;
}

/** Who asked for a command, and through which interface (`http`, `viss`, `stream`…). */
export interface CommandRequester {
  actor: AuditActor;
  via: string;
}

/** One status of a command's lifecycle, as the `command` event that announced it had it. */
export interface CommandStep {
  /** The id of the `command` event. */
  id: string;
  status: CommandStatus;
  ts: number;
  cause: string | null;
  error: string | null;
}

export interface CommandUpdated extends EventBase {
  type: 'command';
  command: Command;
}

export interface ThingChanged extends EventBase {
  type: 'thing.added' | 'thing.updated' | 'thing.removed';
  thing: string;
  snapshot?: Thing;
}

export interface AvailabilityChanged extends EventBase {
  type: 'availability';
  thing: string;
  online: boolean;
}

/** Anything else a subsystem announces (automation runs, notifications, presence…). */
export interface GenericEvent extends EventBase {
  type: `${string}.${string}`;
  thing?: string;
  data?: Record<string, unknown>;
}

export type HubEvent = StateChanged | CommandUpdated | ThingChanged | AvailabilityChanged | GenericEvent;

export type HubEventType = HubEvent['type'];
