import { createContext, useCallback, useContext, useEffect, useState, useSyncExternalStore } from 'react';
import { type ApiClient, ApiError, type Me } from '../api/client.ts';
import type { LiveHub, LiveState } from './live-hub.ts';

export interface Session {
  client: ApiClient;
  live: LiveHub;
  /** Who is signed in; null until the hub has said. */
  me: Me | null;
  /** Asks the hub again who this is and what they may run (a new thing, a changed grant). */
  refreshMe(): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession is only for views inside a signed-in session');
  return session;
}

/** The live household; the component re-renders on every change it receives. */
export function useLive(): LiveState {
  const { live } = useSession();
  return useSyncExternalStore(
    (listener) => live.on(listener),
    () => live.current,
  );
}

export type Resource<T> =
  | { state: 'loading' }
  /** The hub does not serve this yet (that part of Triad is not installed or not started). */
  | { state: 'missing' }
  /** The hub has it, but not for this person (a guest is given things, not the household's records). */
  | { state: 'not-shared' }
  | { state: 'error'; message: string }
  | { state: 'ready'; data: T };

/**
 * Loads `path` once `route` (an OpenAPI path such as `/api/vehicles/{id}/trips`) is known to the
 * hub, so parts of Triad that are not there show an empty state instead of a failed request, and
 * parts this person may not read say so (`not-shared`) rather than that the hub lacks them.
 * `reload` fetches again, e.g. after an edit.
 */
export function useResource<T>(route: string, path: string | null): [Resource<T>, () => void] {
  const { client } = useSession();
  const [resource, setResource] = useState<Resource<T>>({ state: 'loading' });
  const [round, setRound] = useState(0);
  const reload = useCallback(() => setRound((n) => n + 1), []);

  useEffect(() => {
    let current = true;
    void round;
    if (path === null) {
      setResource({ state: 'missing' });
      return;
    }
    const load = async (): Promise<Resource<T>> => {
      try {
        if (!(await client.routes()).has(route))
          return (await client.serves(route)) ? { state: 'not-shared' } : { state: 'missing' };
        return { state: 'ready', data: await client.get<T>(path) };
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return { state: 'missing' };
        // The hub's own word that this is not for them.
        if (error instanceof ApiError && error.status === 403) return { state: 'not-shared' };
        return { state: 'error', message: error instanceof Error ? error.message : String(error) };
      }
    };
    void load().then((next) => {
      if (current) setResource(next);
    });
    return () => {
      current = false;
    };
  }, [client, route, path, round]);

  return [resource, reload];
}

/** Whether the hub serves an OpenAPI route; null while that is being found out. */
export function useRoute(route: string): boolean | null {
  const { client } = useSession();
  const [known, setKnown] = useState<boolean | null>(null);
  useEffect(() => {
    let current = true;
    void client.routes().then((routes) => {
      if (current) setKnown(routes.has(route));
    });
    return () => {
      current = false;
    };
  }, [client, route]);
  return known;
}
