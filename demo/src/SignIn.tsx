import type { SupabaseClient } from '@supabase/supabase-js';
import { type FormEvent, useState } from 'react';
import { type SignInMode, signInAnonymously, signInWithPassword } from './session.js';

export function SignIn({ supabase }: { supabase: SupabaseClient }) {
  const [mode, setMode] = useState<SignInMode>('sign-in');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const run = async (action: () => Promise<string | null>): Promise<void> => {
    setBusy(true);
    setError(null);
    const message = await action().catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
    setBusy(false);
    setError(message);
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    void run(() => signInWithPassword(supabase, mode, email, password));
  };

  return (
    <main className="sign-in">
      <h1>Projects &amp; Tasks</h1>
      <p className="muted">
        An offline-first demo of userdb: your data lives in this browser and syncs to Supabase.
      </p>
      <form onSubmit={submit}>
        <label>
          Email
          <input
            data-testid="email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            data-testid="password"
            type="password"
            autoComplete={mode === 'sign-up' ? 'new-password' : 'current-password'}
            required
            minLength={6}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button data-testid="submit" type="submit" disabled={busy}>
          {mode === 'sign-up' ? 'Create account' : 'Sign in'}
        </button>
        <button
          type="button"
          className="link"
          data-testid="toggle-mode"
          onClick={() => setMode(mode === 'sign-up' ? 'sign-in' : 'sign-up')}
        >
          {mode === 'sign-up' ? 'I have an account' : 'Create an account'}
        </button>
      </form>
      <div className="or">or</div>
      <button
        type="button"
        data-testid="anonymous"
        disabled={busy}
        onClick={() => void run(() => signInAnonymously(supabase))}
      >
        Continue without an account
      </button>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </main>
  );
}
