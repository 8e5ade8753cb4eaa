import type { CommandGuard } from '../core/commands.ts';
import { HubError } from '../core/errors.ts';
import type { Command } from '../core/events.ts';
import type { TwinRegistry } from '../core/twin.ts';

/** Below this a car is standing still, whatever GPS jitter says. */
const STANDING_KMH = 1;

/**
 * The rules no one may break from afar, whoever asks (a user, a rule, a VISS client): a moving car
 * is not unlocked and its windows are not opened. Closing and locking are always allowed.
 */
export function vehicleSafetyGuard(twins: TwinRegistry): CommandGuard {
  return (request, command) => movingRefusal(twins, request.householdId, command);
}

/**
 * Why a command may not go to the car as it is now (it opens up a car that moves), or null. Asked
 * when the command is issued, and again when one that waited for an unreachable car is about to
 * go out: the car may have driven off meanwhile.
 */
export function movingRefusal(
  twins: TwinRegistry,
  householdId: string,
  command: Pick<Command, 'thing' | 'action' | 'input'>,
): HubError | null {
  const twin = twins.get(householdId, command.thing);
  if (twin?.thing.kind !== 'vehicle') return null;
  const opensUp =
    command.action === 'unlock' ||
    (command.action === 'set_window' && typeof command.input.position === 'number' && command.input.position > 0);
  if (!opensUp) return null;
  const moving = twin.state.get('vehicle.moving')?.value === true;
  const speed = Number(twin.state.get('location.speed')?.value ?? 0);
  if (!moving && !(speed >= STANDING_KMH)) return null;
  const what = command.action === 'unlock' ? 'unlock' : 'open the windows of';
  return new HubError(
    409,
    'vehicle_moving',
    `refusing to ${what} ${twin.thing.name} while it is moving (${Math.round(speed)} km/h); try again once it has stopped`,
  );
}
