import type { Hub } from '../../src/core/hub.ts';
import { vocabularyActions, vocabularyProperties } from '../../src/model/thing.ts';

/**
 * The two devices the guest-pass suites hand out: the front door (a lock, whose `unlock` only a
 * pass that names it may run) and the hall light, in the hub's own household.
 */
export async function addFrontDoorAndHallLight(hub: Hub): Promise<void> {
  const householdId = hub.householdId;
  await hub.core.upsertThing({
    id: 'front-door',
    householdId,
    kind: 'device',
    name: 'Front door',
    adapter: 'test',
    properties: vocabularyProperties(['lock.locked']),
    actions: vocabularyActions('lock'),
  });
  await hub.core.upsertThing({
    id: 'hall-light',
    householdId,
    kind: 'device',
    name: 'Hall light',
    adapter: 'test',
    properties: vocabularyProperties(['light.on']),
    actions: vocabularyActions('light'),
  });
}
