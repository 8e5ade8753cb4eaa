import type { HubServices } from '../../core/hub.ts';
import type { StoredTrace } from '../../store/store.ts';
import type { Trace } from '../runtime/trace.ts';
import type { AutomationWorld, CommandRecord } from '../runtime/world.ts';
import type { GeoPoint } from '../time/sun.ts';

export interface RetentionPolicy {
  /** Traces kept per rule. */
  perRule: number;
  /** Traces older than this are deleted. */
  maxAgeMs: number;
}

/** Reads a household's location from its settings: `home: {latitude, longitude}` (or lat/lon). */
export function locationFromSettings(settings: Record<string, unknown>): GeoPoint | null {
  for (const candidate of [settings.home, settings.location]) {
    if (!candidate || typeof candidate !== 'object') continue;
    const o = candidate as Record<string, unknown>;
    const latitude = o.latitude ?? o.lat;
    const longitude = o.longitude ?? o.lon;
    if (
      typeof latitude === 'number' &&
      typeof longitude === 'number' &&
      Math.abs(latitude) <= 90 &&
      Math.abs(longitude) <= 180
    ) {
      return { latitude, longitude };
    }
  }
  return null;
}

/**
 * The live world: the hub's twin, command service, bus and store. Locations are cached and
 * refreshed by the engine, because sun schedules ask for them synchronously.
 */
export function liveWorld(
  hub: HubServices,
  options: { retention: RetentionPolicy; locations: Map<string, GeoPoint | null>; webhookTimeoutMs: number },
): AutomationWorld {
  const { store, clock } = hub;
  let saves = 0;
  return {
    clock,
    log: hub.log.child('automations'),
    thing: (householdId, id) => hub.twins.get(householdId, id)?.thing,
    value: (householdId, thing, property) => hub.twins.value(householdId, thing, property),
    location: (householdId) => options.locations.get(householdId) ?? null,
    async dispatch(order): Promise<CommandRecord> {
      const command = await hub.commands.dispatch(order);
      return {
        id: command.id,
        thing: command.thing,
        action: command.action,
        input: command.input,
        status: command.status,
        error: command.error ?? null,
      };
    },
    publish: (event) => hub.bus.publish(event),
    async postWebhook(url, body) {
      // An HTTP timeout bounds a slow receiver; it is about the network, not a rule's timing.
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.webhookTimeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`answered ${response.status}`);
    },
    timers: {
      save: (timer) => store.saveTimer(timer),
      delete: (id) => store.deleteTimer(id),
    },
    traces: {
      async save(trace: Trace) {
        await store.saveTrace(toStored(trace));
        // Retention runs every few saves, not every one: a busy rule should not pay a DELETE per run.
        if (trace.finishedAt !== null && saves++ % 10 === 0) {
          await store.pruneTraces({
            householdId: trace.householdId,
            rule: trace.rule,
            keep: options.retention.perRule,
            olderThan: clock.now() - options.retention.maxAgeMs,
          });
        }
      },
      async load(householdId, id) {
        const stored = await store.getTrace(householdId, id);
        return stored ? (stored.body as unknown as Trace) : null;
      },
    },
  };
}

export function toStored(trace: Trace): StoredTrace {
  return {
    id: trace.id,
    householdId: trace.householdId,
    rule: trace.rule,
    startedAt: trace.startedAt,
    status: trace.status,
    body: trace as unknown as Record<string, unknown>,
  };
}
