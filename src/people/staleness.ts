import type { Clock } from '../core/clock.ts';
import type { HubCore } from '../core/core.ts';
import type { Logger } from '../core/log.ts';
import type { TwinRegistry } from '../core/twin.ts';
import type { Thing } from '../model/thing.ts';
import type { Store } from '../store/store.ts';
import { type PeopleDirectory, trackerMeta } from './directory.ts';

/**
 * The owner of each tracker's stored last-report time: one row per tracker, kept beside the
 * presence timers. The twin keeps a fix's time only when the position changed (a ping repeating
 * the phone's cached position is not history), so after a restart it could make a tracker look
 * older than it is.
 */
export const REPORT_OWNER = 'presence-reports';
/** A newer report is stored only once the stored one is this old: a phone in move mode reports often. */
const STORE_EVERY_MS = 60_000;

const key = (householdId: string, id: string) => `${householdId}\u0000${id}`;
const rowId = (householdId: string, tracker: string) => `${REPORT_OWNER}:${householdId}:${tracker}`;

interface LastReport {
  householdId: string;
  tracker: string;
  /** The newest accepted fix's own time (`tst`), ms. */
  ts: number;
}

export interface ReportAgeOptions {
  core: HubCore;
  twins: TwinRegistry;
  clock: Clock;
  timers: Pick<Store, 'saveTimer' | 'deleteTimer' | 'listTimers'>;
  log: Logger;
  directory: PeopleDirectory;
}

/**
 * How old each tracker's last report is, and what follows when it is too old.
 *
 * A phone in HTTP mode has no last will: when it stops reporting (app killed, battery dead, phone
 * left in a drawer) nothing says so, and its person stayed "home" for good, with nothing to show
 * that this rested on a report from days ago. But silence is not absence. OwnTracks' default,
 * significant-change mode, reports only after a move of some 500 m: a phone that sits still at home
 * overnight (or a Sunday) can be silent for many hours, with at most an occasional ping. Turning
 * silence into "away", or into an unknown that is not "home", would empty the house every night
 * and fire what `presence.last_left` and `presence.everyone_away` drive: the alarm, the heating.
 *
 * So the decided presence is left alone (`presence.home`, `presence.zone`, the household's
 * `presence.anyone_home` and `presence.everyone_away`: only evidence moves them), and the
 * staleness is said where it is true, about the reports: after the household's `staleAfter`
 * (default 12 h, longer than a night's silence) without a fix, the tracker goes offline (an
 * `availability` event rules can trigger on), a person all of whose trackers are stale goes
 * offline too, and the API shows each person's last report and whether it is stale. The next fix
 * brings them back online.
 *
 * Deadlines are kept the way presence keeps its own across a restart: each tracker's last report
 * time is stored, and a start re-arms from it (from the twin's, if newer), so a restart neither
 * forgets a deadline nor moves it.
 */
export class ReportAge {
  private readonly last = new Map<string, LastReport>();
  private readonly timers = new Map<string, () => void>();
  /** Trackers this marked offline; only those does a longer `staleAfter` bring back. */
  private readonly stale = new Set<string>();
  private readonly stored = new Map<string, number>();
  /** Stored-row writes in the order they were decided, so a delete never overtakes its save. */
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly options: ReportAgeOptions) {}

  /** Reads the stored report times and arms every tracker's deadline; call once at start. */
  async restore(households: string[]): Promise<void> {
    const { timers, twins, directory } = this.options;
    const rows = new Map<string, number>();
    for (const row of await timers.listTimers(REPORT_OWNER)) {
      const { tracker, ts } = row.payload;
      const thing = typeof tracker === 'string' ? twins.get(row.householdId, tracker)?.thing : undefined;
      if (!thing || !trackerMeta(thing) || typeof ts !== 'number') {
        this.write(() => timers.deleteTimer(row.id));
        continue;
      }
      rows.set(key(row.householdId, thing.id), ts);
      this.stored.set(key(row.householdId, thing.id), ts);
    }
    for (const householdId of households) {
      for (const person of directory.people(householdId)) {
        const trackers = directory.trackersOf(householdId, person.id);
        // Availability is not stored: one left without trackers is offline again, as at their removal.
        if (!trackers.length) this.options.core.setAvailability(householdId, person.id, false);
        for (const tracker of trackers) {
          // Trackers that reported before these rows were kept have only the twin's time.
          const seen = twins.get(householdId, tracker.id)?.state.get('location.latitude')?.ts;
          const times = [rows.get(key(householdId, tracker.id)), seen].filter((t): t is number => t !== undefined);
          if (!times.length) continue;
          this.last.set(key(householdId, tracker.id), { householdId, tracker: tracker.id, ts: Math.max(...times) });
          this.arm(householdId, tracker.id);
        }
        this.updatePerson(householdId, person.id);
      }
    }
  }

  /**
   * A tracker's fix was accepted (`ts` is its own time): the tracker is online unless even this
   * fix is older than `staleAfter` (a phone sending what it queued offline).
   */
  reported(tracker: Thing, ts: number): void {
    const k = key(tracker.householdId, tracker.id);
    const previous = this.last.get(k);
    if (previous && previous.ts >= ts) {
      if (!this.stale.has(k)) this.options.core.setAvailability(tracker.householdId, tracker.id, true);
      return;
    }
    this.last.set(k, { householdId: tracker.householdId, tracker: tracker.id, ts });
    const stored = this.stored.get(k);
    if (stored === undefined || ts - stored >= STORE_EVERY_MS) {
      this.stored.set(k, ts);
      const due = ts + this.maxAgeMs(tracker.householdId);
      this.write(() =>
        this.options.timers.saveTimer({
          id: rowId(tracker.householdId, tracker.id),
          householdId: tracker.householdId,
          owner: REPORT_OWNER,
          due,
          payload: { tracker: tracker.id, ts },
        }),
      );
    }
    if (this.arm(tracker.householdId, tracker.id))
      this.options.core.setAvailability(tracker.householdId, tracker.id, true);
    const meta = trackerMeta(tracker);
    if (meta) this.updatePerson(tracker.householdId, meta.person);
  }

  /** Judges every tracker of a household again, after its `staleAfter` changed. */
  rearm(householdId: string): void {
    for (const entry of [...this.last.values()]) {
      if (entry.householdId === householdId) this.arm(householdId, entry.tracker);
    }
    for (const person of this.options.directory.people(householdId)) this.updatePerson(householdId, person.id);
  }

  /** A tracker was removed: its deadline and stored time go, and its person is judged without it. */
  forgetTracker(householdId: string, id: string, person?: string): void {
    const k = key(householdId, id);
    this.timers.get(k)?.();
    this.timers.delete(k);
    this.last.delete(k);
    this.stale.delete(k);
    this.stored.delete(k);
    this.write(() => this.options.timers.deleteTimer(rowId(householdId, id)));
    if (!person || !this.options.core.getThing(householdId, person)) return;
    // Their last tracker gone, nothing will report for them again: offline, as when all are stale.
    if (this.options.directory.trackersOf(householdId, person).length) this.updatePerson(householdId, person);
    else this.options.core.setAvailability(householdId, person, false);
  }

  /** The newest report among a person's trackers, and whether it is older than `staleAfter`. */
  personReport(householdId: string, person: string): { lastReport: number | null; stale: boolean } {
    const reports = this.reportsOf(householdId, person);
    if (!reports.length) return { lastReport: null, stale: false };
    return {
      lastReport: Math.max(...reports.map((r) => r.ts)),
      stale: reports.every((r) => this.stale.has(key(householdId, r.tracker))),
    };
  }

  isStale(householdId: string, tracker: string): boolean {
    return this.stale.has(key(householdId, tracker));
  }

  /** Waits until every stored-row write decided so far is done. */
  async flush(): Promise<void> {
    await this.writes;
  }

  /** Stops the in-memory timers; the stored times stay for the next start. */
  async stop(): Promise<void> {
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
    await this.flush();
  }

  private maxAgeMs(householdId: string): number {
    return this.options.directory.presenceSettings(householdId).staleAfter * 1000;
  }

  /** Sets the tracker's deadline from its last report: stale now, or fresh until a timer (or for good). */
  private arm(householdId: string, tracker: string): boolean {
    const { clock, core } = this.options;
    const k = key(householdId, tracker);
    const entry = this.last.get(k);
    this.timers.get(k)?.();
    this.timers.delete(k);
    if (!entry) return false;
    const maxAge = this.maxAgeMs(householdId);
    const left = entry.ts + maxAge - clock.now();
    if (maxAge > 0 && left <= 0) {
      this.markStale(entry);
      return false;
    }
    // Stale by an older report or a shorter setting: online again. A tracker this never marked
    // stale keeps what it had (offline by its last will, or not yet known since the start).
    if (this.stale.delete(k)) core.setAvailability(householdId, tracker, true);
    if (maxAge > 0) {
      this.timers.set(
        k,
        clock.setTimeout(() => {
          this.timers.delete(k);
          if (this.last.get(k) !== entry) return;
          this.markStale(entry);
          const meta = this.trackerMetaOf(householdId, tracker);
          if (meta) this.updatePerson(householdId, meta.person);
        }, left),
      );
    }
    return true;
  }

  private markStale(entry: LastReport): void {
    const { core, log } = this.options;
    const k = key(entry.householdId, entry.tracker);
    if (!this.stale.has(k)) {
      this.stale.add(k);
      log.info('tracker stale: no report within staleAfter', {
        householdId: entry.householdId,
        tracker: entry.tracker,
        lastReport: new Date(entry.ts).toISOString(),
      });
    }
    core.setAvailability(entry.householdId, entry.tracker, false);
  }

  /**
   * A person is offline while every tracker of theirs that ever reported is stale. They are put
   * back online only after being offline, so a person's availability stays unset (as it always
   * was) on hubs where nothing goes stale.
   */
  private updatePerson(householdId: string, person: string): void {
    const { core, twins } = this.options;
    const { lastReport, stale } = this.personReport(householdId, person);
    if (lastReport === null) return;
    if (stale) core.setAvailability(householdId, person, false);
    else if (twins.get(householdId, person)?.online === false) core.setAvailability(householdId, person, true);
  }

  private reportsOf(householdId: string, person: string): LastReport[] {
    return this.options.directory
      .trackersOf(householdId, person)
      .map((t) => this.last.get(key(householdId, t.id)))
      .filter((r): r is LastReport => r !== undefined);
  }

  private trackerMetaOf(householdId: string, tracker: string) {
    const thing = this.options.core.getThing(householdId, tracker);
    return thing ? trackerMeta(thing) : undefined;
  }

  private write(step: () => Promise<void>): void {
    this.writes = this.writes.then(step).catch((error: unknown) => {
      this.options.log.error("could not store a tracker's last report", { error });
    });
  }
}
