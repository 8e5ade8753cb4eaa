import { useEffect, useMemo, useRef, useState } from 'react';
import { createApiClient } from './api/client.ts';
import { forgetToken, keepToken, storedToken } from './auth.ts';
import { SessionContext, useLive } from './live/context.ts';
import { LiveHub } from './live/live-hub.ts';
import { Automations } from './views/Automations.tsx';
import { Car } from './views/Car.tsx';
import { History } from './views/History.tsx';
import { Home } from './views/Home.tsx';
import { Overview } from './views/Overview.tsx';
import { SignIn } from './views/SignIn.tsx';

const VIEWS = [
  { path: '', title: 'Overview', render: () => <Overview /> },
  { path: 'home', title: 'Home', render: () => <Home /> },
  { path: 'car', title: 'Car', render: () => <Car /> },
  { path: 'automations', title: 'Automations', render: () => <Automations /> },
  { path: 'history', title: 'History', render: () => <History /> },
] as const;

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
  const [token, setToken] = useState<string | null>(storedToken);
  const [message, setMessage] = useState<string | null>(null);

  if (!token) {
    return (
      <SignIn
        message={message}
        onSignedIn={(next, remember) => {
          keepToken(next, remember);
          setMessage(null);
          setToken(next);
        }}
      />
    );
  }
  return (
    <SignedIn
      key={token}
      token={token}
      onSignOut={(why) => {
        forgetToken();
        setMessage(why);
        setToken(null);
      }}
    />
  );
}

function SignedIn({ token, onSignOut }: { token: string; onSignOut(why: string | null): void }) {
  // The session lives as long as the token; a new callback from the parent must not rebuild it.
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
    const client = createApiClient({ token, onUnauthorized: unauthorized });
    return { client, live: new LiveHub(client, unauthorized) };
  }, [token]);

  useEffect(() => {
    session.live.start();
    return () => session.live.stop();
  }, [session]);

  const path = useHashPath();
  const view = VIEWS.find((v) => v.path === path) ?? VIEWS[0];
  useEffect(() => {
    document.title = `${view.title} · Triad`;
  }, [view]);

  return (
    <SessionContext.Provider value={session}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Triad</span>
        <nav aria-label="Views">
          <ul>
            {VIEWS.map((v) => (
              <li key={v.path}>
                <a href={`#/${v.path}`} aria-current={v === view ? 'page' : undefined}>
                  {v.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <ConnectionBadge />
        <button type="button" className="link" onClick={() => onSignOut(null)}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {view.render()}
      </main>
    </SessionContext.Provider>
  );
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
