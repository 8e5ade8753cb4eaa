import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { Store, StoredTimer } from '../store/store.ts';
import type { Zone, ZoneEvidence } from './zones.ts';

/** A person who has now arrived in, or left, a zone: the delay has run out and nothing contradicted it. */
export interface PresenceChange {
  householdId: string;
  person: string;
  zone: string;
  inside: boolean;
  ts: number;
}

export interface PresenceTrackerOptions {
  clock: Clock;
  timers: Pick<Store, 'saveTimer' | 'deleteTimer' | 'listTimers'>;
  log: Logger;
  onChange: (change: PresenceChange) => void;
}

/** The owner of presence's stored timers, so only ours are reloaded after a restart. */
export const TIMER_OWNER = 'presence';
/**
 * The owner of each person's stored zone membership: one row per person, never due, kept beside
 * the timers so one ordered queue writes both. `presence.zone` names only one zone, so a person
 * home and inside a zone around it (a town) would otherwise come back from a restart outside the
 * town: arriving there again at the next fix, and never leaving it.
 */
export const MEMBERSHIP_OWNER = 'presence-zones';

interface PendingChange {
  householdId: string;
  person: string;
  zone: string;
  inside: boolean;
  due: number;
  /**
   * The trackers whose evidence this change rests on. Empty when that is not known (a change a
   * moved zone started, or one stored before they were kept): then removing any of the person's
   * trackers drops it, and the next fix from one still there starts it again if it still holds.
   */
  trackers: Set<string>;
  cancel: () => void;
}

interface PendingPayload {
  person: string;
  zone: string;
  inside: boolean;
  trackers: string[];
}

const personKey = (householdId: string, person: string) => `${householdId}\u0000${person}`;
const pendingKey = (householdId: string, person: string, zone: string) => `${householdId}\u0000${person}\u0000${zone}`;
const timerId = (householdId: string, person: string, zone: string) => `presence:${householdId}:${person}:${zone}`;
const membershipId = (householdId: string, person: string) => `presence-zones:${householdId}:${person}`;

/**
 * Decides, per person and zone, when evidence becomes presence: a change waits out the zone's
 * arrive or leave delay and is dropped when a fix says the opposite in the meantime. Pending
 * changes are stored timers, so a restart neither forgets nor repeats them.
 */
export class PresenceTracker {
  private readonly membership = new Map<string, Set<string>>();
  private readonly pending = new Map<string, PendingChange>();
  /** Stored-timer writes in the order they were decided, so a delete never overtakes its save. */
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly options: PresenceTrackerOptions) {}

  /** Sets what is already known (from the twin at start-up) without announcing anything. */
  seed(householdId: string, person: string, zones: Iterable<string>): void {
    this.membership.set(personKey(householdId, person), new Set(zones));
  }

  /**
   * Reads the membership stored at each change, which knows every zone someone is in; it replaces
   * what seed() guessed from the person's state. Zones or people that are gone are left out.
   * Call before restore(), which compares waiting changes with it.
   */
  async loadMembership(stillExists: (householdId: string, person: string, zone: string) => boolean): Promise<void> {
    for (const row of await this.options.timers.listTimers(MEMBERSHIP_OWNER)) {
      const { person, zones } = row.payload;
      if (typeof person !== 'string' || !Array.isArray(zones)) continue;
      const kept = zones.filter((z): z is string => typeof z === 'string' && stillExists(row.householdId, person, z));
      this.membership.set(personKey(row.householdId, person), new Set(kept));
    }
  }

  isInside(householdId: string, person: string, zone: string): boolean {
    return this.membership.get(personKey(householdId, person))?.has(zone) ?? false;
  }

  zonesOf(householdId: string, person: string): string[] {
    return [...(this.membership.get(personKey(householdId, person)) ?? [])];
  }

  /** When a change for this person and zone will happen, if one is waiting. */
  pendingFor(householdId: string, person: string, zone: string): { inside: boolean; due: number } | null {
    const pending = this.pending.get(pendingKey(householdId, person, zone));
    return pending ? { inside: pending.inside, due: pending.due } : null;
  }

  /** Takes one fix's evidence about one zone; `source` is the tracker it came from, if any. */
  observe(householdId: string, person: string, zone: Zone, evidence: ZoneEvidence, source?: string): void {
    if (evidence === 'unsure') return;
    const inside = evidence === 'inside';
    const key = pendingKey(householdId, person, zone.id);
    const waiting = this.pending.get(key);
    if (inside === this.isInside(householdId, person, zone.id)) {
      if (waiting) this.drop(waiting);
      return;
    }
    // The same change already waiting keeps its original deadline: more evidence does not restart it,
    // but another tracker saying so keeps it standing should the first one be removed.
    if (waiting?.inside === inside) {
      if (source !== undefined && !waiting.trackers.has(source)) {
        waiting.trackers.add(source);
        this.store(waiting);
      }
      return;
    }
    if (waiting) this.drop(waiting);
    const delay = inside ? zone.arriveDelayMs : zone.leaveDelayMs;
    if (delay <= 0) {
      this.commit(householdId, person, zone.id, inside);
      return;
    }
    const trackers = new Set(source === undefined ? [] : [source]);
    this.schedule({ householdId, person, zone: zone.id, inside, trackers }, this.options.clock.now() + delay, true);
  }

  /**
   * Re-arms the changes that were waiting when the hub stopped. Those whose person or zone is gone,
   * or every tracker they rested on, are dropped; those already due happen now.
   */
  async restore(
    stillExists: (householdId: string, person: string, zone: string) => boolean,
    isTracker: (householdId: string, id: string) => boolean,
  ): Promise<number> {
    let restored = 0;
    for (const timer of await this.options.timers.listTimers(TIMER_OWNER)) {
      const payload = readPayload(timer);
      const trackers = payload?.trackers.filter((id) => isTracker(timer.householdId, id)) ?? [];
      if (
        !payload ||
        !stillExists(timer.householdId, payload.person, payload.zone) ||
        payload.inside === this.isInside(timer.householdId, payload.person, payload.zone) ||
        // Their trackers removed while the hub went down before this row was updated.
        (payload.trackers.length > 0 && trackers.length === 0)
      ) {
        this.write(() => this.options.timers.deleteTimer(timer.id));
        continue;
      }
      const { person, zone, inside } = payload;
      this.schedule(
        { householdId: timer.householdId, person, zone, inside, trackers: new Set(trackers) },
        timer.due,
        false,
      );
      restored++;
    }
    return restored;
  }

  /** Forgets a person (deleted): their waiting changes are cancelled, nothing is announced. */
  forgetPerson(householdId: string, person: string): void {
    for (const waiting of [...this.pending.values()]) {
      if (waiting.householdId === householdId && waiting.person === person) this.drop(waiting);
    }
    this.membership.delete(personKey(householdId, person));
    this.write(() => this.options.timers.deleteTimer(membershipId(householdId, person)));
  }

  /**
   * Forgets a tracker (removed): the changes it alone was waiting for are cancelled, nothing is
   * announced. One another of the person's trackers also reported still happens.
   */
  forgetTracker(householdId: string, person: string, tracker: string): void {
    for (const waiting of [...this.pending.values()]) {
      if (waiting.householdId !== householdId || waiting.person !== person) continue;
      const rested = waiting.trackers.delete(tracker);
      if (!waiting.trackers.size) this.drop(waiting);
      else if (rested) this.store(waiting);
    }
  }

  /** Forgets a zone (deleted); returns the people who were in it, so their presence can be redone. */
  forgetZone(householdId: string, zone: string): string[] {
    for (const waiting of [...this.pending.values()]) {
      if (waiting.householdId === householdId && waiting.zone === zone) this.drop(waiting);
    }
    const affected: string[] = [];
    for (const [key, zones] of this.membership) {
      const [hh, person] = key.split('\u0000');
      if (hh === householdId && zones.delete(zone)) affected.push(person);
    }
    for (const person of affected) this.storeMembership(householdId, person);
    return affected;
  }

  /** Waits until every stored-timer write decided so far is done. */
  async flush(): Promise<void> {
    await this.writes;
  }

  /** Stops the in-memory timers; the stored ones stay for the next start. */
  async stop(): Promise<void> {
    for (const waiting of this.pending.values()) waiting.cancel();
    this.pending.clear();
    await this.flush();
  }

  private schedule(change: Omit<PendingChange, 'due' | 'cancel'>, due: number, store: boolean): void {
    const { householdId, person, zone, inside } = change;
    const key = pendingKey(householdId, person, zone);
    const cancel = this.options.clock.setTimeout(
      () => {
        if (this.pending.get(key) !== pending) return;
        this.pending.delete(key);
        this.commit(householdId, person, zone, inside);
      },
      Math.max(0, due - this.options.clock.now()),
    );
    const pending: PendingChange = { ...change, due, cancel };
    this.pending.set(key, pending);
    if (store) this.store(pending);
  }

  /** Stores a waiting change as it is now, so a restart re-arms it with the trackers it rests on. */
  private store(waiting: PendingChange): void {
    const { householdId, person, zone, inside, due } = waiting;
    const payload: PendingPayload = { person, zone, inside, trackers: [...waiting.trackers] };
    this.write(() =>
      this.options.timers.saveTimer({
        id: timerId(householdId, person, zone),
        householdId,
        owner: TIMER_OWNER,
        due,
        payload: { ...payload },
      }),
    );
  }

  private drop(waiting: PendingChange): void {
    waiting.cancel();
    this.pending.delete(pendingKey(waiting.householdId, waiting.person, waiting.zone));
    this.write(() => this.options.timers.deleteTimer(timerId(waiting.householdId, waiting.person, waiting.zone)));
  }

  private commit(householdId: string, person: string, zone: string, inside: boolean): void {
    const key = personKey(householdId, person);
    let zones = this.membership.get(key);
    if (!zones) {
      zones = new Set();
      this.membership.set(key, zones);
    }
    if (inside) zones.add(zone);
    else zones.delete(zone);
    this.write(() => this.options.timers.deleteTimer(timerId(householdId, person, zone)));
    this.storeMembership(householdId, person);
    this.options.onChange({ householdId, person, zone, inside, ts: this.options.clock.now() });
  }

  private storeMembership(householdId: string, person: string): void {
    const zones = this.zonesOf(householdId, person);
    this.write(() =>
      this.options.timers.saveTimer({
        id: membershipId(householdId, person),
        householdId,
        owner: MEMBERSHIP_OWNER,
        due: 0,
        payload: { person, zones },
      }),
    );
  }

  private write(step: () => Promise<void>): void {
    this.writes = this.writes.then(step).catch((error: unknown) => {
      this.options.log.error('could not store a presence timer', { error });
    });
  }
}

function readPayload(timer: StoredTimer): PendingPayload | null {
  const { person, zone, inside, trackers } = timer.payload;
  if (typeof person !== 'string' || typeof zone !== 'string' || typeof inside !== 'boolean') return null;
  // Rows stored before trackers were kept have none: known to rest on no tracker in particular.
  const ids = Array.isArray(trackers) ? trackers.filter((id): id is string => typeof id === 'string') : [];
  return { person, zone, inside, trackers: ids };
}
