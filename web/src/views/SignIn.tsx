import { type FormEvent, useState } from 'react';
import { checkToken } from '../api/client.ts';

interface SignInProps {
  /** Why the user is here again (an expired token, say); shown above the form. */
  message: string | null;
  onSignedIn(token: string, remember: boolean): void;
}

/**
 * Sign-in with the owner's token, or with a user name and password once the hub has accounts
 * (`POST /api/session`); until then the hub answers that route with 404 and we say so.
 */
export function SignIn({ message, onSignedIn }: SignInProps) {
  const [token, setToken] = useState('');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [remember, setRemember] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setBusy(true);
    try {
      const chosen = token.trim() ? token.trim() : await tokenForAccount(user, password);
      const error = await checkToken(chosen);
      if (error) setProblem(error.status === 401 ? 'That token is not valid. Check it and try again.' : error.message);
      else onSignedIn(chosen, remember);
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="sign-in">
      <form onSubmit={submit} aria-labelledby="sign-in-heading" noValidate>
        <h1 id="sign-in-heading">Sign in to Triad</h1>
        {message ? (
          <p className="notice" role="alert">
            {message}
          </p>
        ) : null}
        <label htmlFor="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={token}
          onChange={(e) => setToken(e.currentTarget.value)}
          aria-describedby="token-help"
        />
        <p id="token-help" className="help">
          The owner token is in <code>owner.token</code> in the hub's data folder.
        </p>
        <fieldset>
          <legend>Or with an account</legend>
          <p className="help" id="account-help">
            Needs user accounts on the hub; until they exist, use the token.
          </p>
          <label htmlFor="user">User name</label>
          <input
            id="user"
            name="username"
            autoComplete="username"
            value={user}
            onChange={(e) => setUser(e.currentTarget.value)}
            aria-describedby="account-help"
          />
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            aria-describedby="account-help"
          />
        </fieldset>
        <label className="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} /> Keep me
          signed in on this device
        </label>
        {problem ? (
          <p className="error" role="alert">
            {problem}
          </p>
        ) : null}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

async function tokenForAccount(user: string, password: string): Promise<string> {
  if (!user.trim() || !password) throw new Error('Enter the token, or a user name and password.');
  // Asking the API's description first avoids a failed request (and a console error) on hubs without accounts.
  const doc = (await fetch('/api/openapi.json').then((r) => r.json())) as { paths?: Record<string, unknown> };
  if (!doc.paths?.['/api/session']) throw new Error('This hub has no user accounts yet. Sign in with the owner token.');
  const response = await fetch('/api/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: user.trim(), password }),
  });
  if (response.status === 404) throw new Error('This hub has no user accounts yet. Sign in with the owner token.');
  const body = (await response.json().catch(() => ({}))) as { token?: string; error?: { message?: string } };
  if (response.status === 401) throw new Error('That user name and password did not match.');
  if (!response.ok || !body.token) throw new Error(body.error?.message ?? `Sign-in failed (${response.status}).`);
  return body.token;
}
