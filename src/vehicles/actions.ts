import type { SignalValue } from '../adapters/viss/tree.ts';
import { badRequest, type HubError } from '../core/errors.ts';
import type { ActionSpec } from '../model/thing.ts';
import { vocabularyActions } from '../model/thing.ts';
import { DOOR_NAMES, type DoorName, VSS } from './signals.ts';

/** One VISS `set` a command turns into. */
export interface SignalWrite {
  path: string;
  value: SignalValue;
}

/** The remote commands a vehicle offers, in the vocabulary where it has them. */
export function vehicleActions(): Record<string, ActionSpec> {
  const climate = vocabularyActions('climate', ['set_mode', 'set_target_temperature']);
  return {
    ...vocabularyActions('lock'),
    // A car's climate is on or off; heat or cool is the car's own decision.
    set_mode: {
      ...climate.set_mode,
      input: { type: 'object', required: ['mode'], properties: { mode: { type: 'string', enum: ['off', 'auto'] } } },
    },
    set_target_temperature: climate.set_target_temperature,
    ...vocabularyActions('charging', ['start', 'stop', 'set_limit']),
    ...vocabularyActions('vehicle'),
  };
}

/** The VSS writes that carry out an action, or why the action is not one a car understands. */
export function writesFor(action: string, input: Record<string, unknown>): SignalWrite[] | HubError {
  switch (action) {
    case 'lock':
    case 'unlock': {
      const locked = action === 'lock';
      // The driver's door goes last: its report confirms the command, so it must mean all are done.
      return [
        { path: VSS.trunkLocked, value: locked },
        ...[...DOOR_NAMES].reverse().map((door) => ({ path: VSS.doorLocked(door), value: locked })),
      ];
    }
    case 'set_mode':
      return [{ path: VSS.hvacActive, value: input.mode !== 'off' }];
    case 'set_target_temperature':
      return [{ path: VSS.driverSetPoint, value: Number(input.temperature) }];
    case 'start':
      return [{ path: VSS.startStopCharging, value: 'START' }];
    case 'stop':
      return [{ path: VSS.startStopCharging, value: 'STOP' }];
    case 'set_limit':
      return [{ path: VSS.chargeLimit, value: Math.round(Number(input.limit)) }];
    case 'set_window': {
      const window = input.window as DoorName | 'all';
      const doors: DoorName[] = window === 'all' ? DOOR_NAMES : [window];
      return doors.map((door) => ({ path: VSS.window(door), value: Math.round(Number(input.position)) }));
    }
    case 'honk':
      return [{ path: VSS.horn, value: true }];
    case 'flash':
      return [{ path: VSS.hazard, value: true }];
    default:
      return badRequest(`a vehicle cannot ${action}`, 'unsupported_action');
  }
}

/**
 * Why a VISS `set` on a lock the car has is refused, or null. The car's doors and trunk lock
 * together (`lock`/`unlock`), and the driver's door speaks for them, as `lock.locked`: a set on any
 * other one would lock or unlock the whole car when the client named one door, so it is refused
 * with where to go instead, and nothing changes.
 */
export function lockSetRefusal(path: string): string | null {
  const door = DOOR_NAMES.find((d) => d !== 'front_driver' && path === VSS.doorLocked(d));
  if (!door && path !== VSS.trunkLocked) return null;
  return `${path} cannot be set on its own: this car's doors and trunk lock together; use the central lock (set ${VSS.doorLocked('front_driver')}, or the vehicle's lock and unlock actions)`;
}

/**
 * The command a VISS `set` on the hub's vehicle stands for, so a VISS client's write goes through
 * the same command path (and safety rules) as the API's. Null: no command sets this path so.
 */
export function commandFor(
  path: string,
  value: SignalValue,
): { action: string; input: Record<string, unknown> } | null {
  // The central lock (see lockSetRefusal for the other doors).
  if (path === VSS.doorLocked('front_driver')) return { action: value === true ? 'lock' : 'unlock', input: {} };
  const window = DOOR_NAMES.find((d) => path === VSS.window(d));
  if (window) return { action: 'set_window', input: { window, position: value } };
  switch (path) {
    case VSS.hvacActive:
      return { action: 'set_mode', input: { mode: value === true ? 'auto' : 'off' } };
    case VSS.driverSetPoint:
      return { action: 'set_target_temperature', input: { temperature: value } };
    case VSS.startStopCharging:
      return { action: value === 'START' ? 'start' : 'stop', input: {} };
    case VSS.chargeLimit:
      return { action: 'set_limit', input: { limit: value } };
    case VSS.horn:
      return value === true ? { action: 'honk', input: {} } : null;
    case VSS.hazard:
      return value === true ? { action: 'flash', input: {} } : null;
    default:
      return null;
  }
}
