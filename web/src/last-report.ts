import { useEffect, useRef, useState } from 'react';
import type { Person, Thing } from './api/types.ts';
import { isOffline } from './format.ts';
import { useResource, useSession } from './live/context.ts';

/**
 * When a person's phones last reported, for every view that shows someone whose phones have all
 * gone silent (the hub marks such a person offline once every tracker of theirs is stale) as last
 * known: the Overview's people and the car's map say it the same way, from the same source.
 */

/** How often "last report 14 h ago" is worked out again while it is shown. */
export const AGE_REFRESH_MS = 30_000;

/** Whether the person is shown as last known: the hub took them offline, their phones all silent. */
export const isLastKnown = (person: Thing) => person.kind === 'person' && isOffline(person);

/**
 * The time of the person's position: the fix that last placed them (its own time, which a phone
 * that queued it while offline sends along), or null before their first. Every reader of the
 * person thing sees it, a guest too.
 */
export function positionTime(person: Thing | undefined): string | null {
  return person?.properties['location.latitude']?.ts ?? null;
}

/** The later of two ISO times, either of which may be missing. */
function later(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return a ?? b;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/**
 * When each of these people last reported, for those shown as last known (null for the others):
 * GET /api/people's `presence.lastReport`, the newest fix from any of their trackers, even one too
 * coarse to move them. A guest may not read that (a pass shows the things given, as they are), so
 * for them it is the time of the person's own position, which they may read: the same moment, but
 * for fixes too coarse to count, which it leaves out. Either is read again whenever someone goes
 * offline or comes back, as a fix at the very spot they were makes no change the stream would tell.
 */
export function useLastReports(people: Thing[]): (person: Thing) => string | null {
  const { me } = useSession();
  const offline = people
    .filter(isLastKnown)
    .map((p) => p.id)
    .join(' ');
  const guest = me?.role === 'guest';
  const [reports, reloadReports] = useResource<Person[]>('/api/people', offline && me && !guest ? '/api/people' : null);
  const [things, reloadThings] = useResource<Thing[]>(
    '/api/things',
    offline && me && guest ? '/api/things?kind=person' : null,
  );
  const seen = useRef(offline);
  useEffect(() => {
    if (seen.current === offline) return;
    const before = seen.current;
    seen.current = offline;
    // From nobody offline the path itself appears, and that reads it; otherwise read it again.
    if (before && offline) {
      reloadReports();
      reloadThings();
    }
  }, [offline, reloadReports, reloadThings]);
  return (person) => {
    if (!isLastKnown(person)) return null;
    const report =
      reports.state === 'ready' ? reports.data.find((p) => p.id === person.id)?.presence.lastReport : undefined;
    if (report !== undefined) return report;
    // Until the reports are read, and where they may not be (a guest, an older hub): the position's time.
    const read = things.state === 'ready' ? things.data.find((t) => t.id === person.id) : undefined;
    return later(positionTime(person), positionTime(read));
  };
}

/** The time now, worked out again every AGE_REFRESH_MS while `ticking`, so ages shown keep up. */
export function useNow(ticking = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!ticking) return;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), AGE_REFRESH_MS);
    return () => clearInterval(timer);
  }, [ticking]);
  return now;
}
