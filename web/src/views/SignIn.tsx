import { type FormEvent, useState } from 'react';
import { ApiError, checkCredentials, signInWithPassword } from '../api/client.ts';
import type { Credentials } from '../auth.ts';

interface SignInProps {
  /** Why the user is here again (an expired token or session, say); shown above the form. */
  message: string | null;
  onSignedIn(credentials: Credentials, remember: boolean): void;
}

/**
 * Sign-in with a token (the owner's, an API token or a guest pass), or with a user name and
 * password (`POST /api/session`), which starts a cookie session: the page never holds a token then.
 */
export function SignIn({ message, onSignedIn }: SignInProps) {
  const [token, setToken] = useState('');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  /** Asked only when the hub says several households have a user of that name. */
  const [household, setHousehold] = useState<string | null>(null);
  const [remember, setRemember] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    setBusy(true);
    try {
      if (token.trim()) {
        const credentials: Credentials = { kind: 'token', token: token.trim() };
        const error = await checkCredentials(credentials);
        if (error)
          setProblem(error.status === 401 ? 'That token is not valid. Check it and try again.' : error.message);
        else onSignedIn(credentials, remember);
        return;
      }
      if (!user.trim() || !password) {
        setProblem('Enter the token, or a user name and password.');
        return;
      }
      await signInWithPassword({
        name: user.trim(),
        password,
        ...(household?.trim() ? { household: household.trim() } : {}),
      });
      onSignedIn({ kind: 'session' }, remember);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        setProblem('That user name and password did not match. Check them and try again.');
      } else if (error instanceof ApiError && /several households/.test(error.message)) {
        setHousehold((h) => h ?? '');
        setProblem('Several households have a user of that name: enter your household too.');
      } else if (error instanceof ApiError && error.status === 404) {
        setProblem('This hub has no user accounts yet. Sign in with the owner token.');
      } else {
        setProblem(error instanceof Error ? error.message : String(error));
      }
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
            The first owner is <code>owner</code>; their password is in <code>owner.password</code> in the hub's data
            folder.
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
          {household !== null ? (
            <>
              <label htmlFor="household">Household</label>
              <input
                id="household"
                name="household"
                autoComplete="off"
                value={household}
                onChange={(e) => setHousehold(e.currentTarget.value)}
              />
            </>
          ) : null}
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
