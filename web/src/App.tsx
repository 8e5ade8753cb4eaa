import { type ReactElement, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { type ApiClient, createApiClient, type Me, signOutSession } from './api/client.ts';
import { type Credentials, forgetSession, forgetToken, keepToken, storedCredentials } from './auth.ts';
import { Loading } from './components/states.tsx';
import { SessionContext, useLive } from './live/context.ts';
import { LiveHub } from './live/live-hub.ts';
import { Automations } from './views/Automations.tsx';
import { Car } from './views/Car.tsx';
import { History } from './views/History.tsx';
import { Home } from './views/Home.tsx';
import { Overview } from './views/Overview.tsx';
import { SignIn } from './views/SignIn.tsx';

interface View {
  path: string;
  title: string;
  render(): ReactElement;
  /** Guests reach only the things they were given: no rules, no history. */
  guests: boolean;
}

/** How often the hub is asked again what this person may run: an owner may grant them more meanwhile. */
const PERMISSIONS_REFRESH_MS = 60_000;

const VIEWS: readonly View[] = [
  { path: '', title: 'Overview', render: () => <Overview />, guests: true },
  { path: 'home', title: 'Home', render: () => <Home />, guests: true },
  { path: 'car', title: 'Car', render: () => <Car />, guests: true },
  { path: 'automations', title: 'Automations', render: () => <Automations />, guests: false },
  { path: 'history', title: 'History', render: () => <History />, guests: false },
];

/** The view in the address (`#/car`), so views can be bookmarked and the back button works. */
const readHashPath = () => location.hash.replace(/^#\/?/, '').split(/[/?]/, 1)[0] ?? '';

function useHashPath(): string {
  const [path, setPath] = useState(readHashPath);
  useEffect(() => {
    const changed = () => setPath(readHashPath());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return path;
}

export function App() {
  const [credentials, setCredentials] = useState<Credentials | null>(storedCredentials);
  const [message, setMessage] = useState<string | null>(null);

  if (!credentials) {
    return (
      <SignIn
        message={message}
        onSignedIn={(next, remember) => {
          if (next.kind === 'token') keepToken(next.token, remember);
          setMessage(null);
          setCredentials(next);
        }}
      />
    );
  }
  return (
    <SignedIn
      key={credentials.kind === 'token' ? credentials.token : 'session'}
      credentials={credentials}
      onSignOut={(why) => {
        forgetToken();
        // A session the hub refused leaves its readable cookie behind; without it the next visit starts at sign-in.
        if (why !== null && credentials.kind === 'session') forgetSession();
        setMessage(why);
        setCredentials(null);
      }}
    />
  );
}

function SignedIn({ credentials, onSignOut }: { credentials: Credentials; onSignOut(why: string | null): void }) {
  // The session lives as long as the credentials; a new callback from the parent must not rebuild it.
  const signOut = useRef(onSignOut);
  signOut.current = onSignOut;
  const session = useMemo(() => {
    let out = false;
    // Several requests can fail with 401 at once; the user is sent back to sign-in once.
    const unauthorized = (why: string) => {
      if (out) return;
      out = true;
      signOut.current(why);
    };
    const client = createApiClient({ credentials, onUnauthorized: unauthorized });
    return { client, live: new LiveHub(client, unauthorized) };
  }, [credentials]);
  const [me, setMe] = useState<Me | null>(null);
  const [signingOut, setSigningOut] = useState(false);

  useEffect(() => {
    session.live.start();
    let current = true;
    const ask = () =>
      session.client.me().then(
        (who) => {
          if (current) setMe(who);
        },
        // A 401 has already sent the user to sign-in; anything else (the hub restarting) is asked again.
        () => {
          if (current) setTimeout(ask, 2000);
        },
      );
    void ask();
    return () => {
      current = false;
      session.live.stop();
    };
  }, [session]);
  const refreshMe = useRefreshMe(session.client, setMe);

  const path = useHashPath();
  const views = VIEWS.filter((v) => me?.role !== 'guest' || v.guests);
  const view = views.find((v) => v.path === path) ?? views[0];
  useEffect(() => {
    document.title = `${view.title} · Triad`;
  }, [view]);

  const leave = async () => {
    setSigningOut(true);
    // A cookie session is ended on the hub, so the cookie is worthless even if it was copied.
    if (credentials.kind === 'session') await signOutSession().catch(() => undefined);
    onSignOut(null);
  };

  return (
    <SessionContext.Provider value={{ ...session, me, refreshMe }}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Triad</span>
        <nav aria-label="Views">
          <ul>
            {views.map((v) => (
              <li key={v.path}>
                <a href={`#/${v.path}`} aria-current={v === view ? 'page' : undefined}>
                  {v.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <ConnectionBadge />
        {me?.name ? (
          <span className="who">
            {me.name}
            {me.role !== 'owner' ? ` (${me.role})` : ''}
          </span>
        ) : null}
        <button type="button" className="link" onClick={leave} disabled={signingOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {me ? view.render() : <Loading what="your household" />}
      </main>
    </SessionContext.Provider>
  );
}

/**
 * Asks the hub again who this is and what they may run: now and then, and when a view meets a thing
 * the last answer did not cover (one question at a time; a failure waits for the next).
 */
function useRefreshMe(client: ApiClient, setMe: (me: Me) => void): () => void {
  const asking = useRef<'no' | 'yes' | 'again'>('no');
  const refreshMe = useCallback(() => {
    // Asked while asking: the answer on its way may predate what prompted this, so ask once more.
    if (asking.current !== 'no') {
      asking.current = 'again';
      return;
    }
    asking.current = 'yes';
    client
      .me({ fresh: true })
      .then(setMe, () => undefined)
      .finally(() => {
        const again = asking.current === 'again';
        asking.current = 'no';
        if (again) refreshMe();
      });
  }, [client, setMe]);
  useEffect(() => {
    const timer = setInterval(refreshMe, PERMISSIONS_REFRESH_MS);
    return () => clearInterval(timer);
  }, [refreshMe]);
  return refreshMe;
}

function ConnectionBadge() {
  const { connection } = useLive();
  const words = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' }[connection];
  return (
    <span className={`badge connection ${connection}`} role="status" aria-label={`Connection: ${words}`}>
      {words}
    </span>
  );
}
