import type { SupabaseClient } from '@supabase/supabase-js';
import { useEffect, useState } from 'react';
import { type OpenedDb, openDemoDb } from './db.js';
import type { DemoNetwork } from './network.js';
import { SignIn } from './SignIn.js';
import { type DemoUser, rememberedUser, signOut, watchUser } from './session.js';
import { Workspace } from './Workspace.js';

interface AppProps {
  supabase: SupabaseClient;
  network: DemoNetwork;
}

/**
 * Opens the user's database while `userId` is set; closes it when the user changes or signs out.
 * A database opened local-only (no usable session offline) is reopened with sync once supabase-js
 * has a session again (it refreshes the token when the network is back).
 */
function useDemoDb(supabase: SupabaseClient, userId: string | undefined, network: DemoNetwork) {
  const [state, setState] = useState<{ opened: OpenedDb | null; error: string | null }>({
    opened: null,
    error: null,
  });
  const [attempt, setAttempt] = useState(0);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `attempt` reopens the database (with sync, once a session is back).
  useEffect(() => {
    if (userId === undefined) return;
    const close = openDemoDb(supabase, userId, network, {
      opened: (opened) => setState({ opened, error: null }),
      failed: (e) => setState({ opened: null, error: e instanceof Error ? e.message : String(e) }),
    });
    return () => {
      close();
      setState({ opened: null, error: null });
    };
  }, [supabase, userId, network, attempt]);

  const localOnly = state.opened !== null && !state.opened.syncing;
  useEffect(() => {
    if (!localOnly) return;
    const { data } = supabase.auth.onAuthStateChange((_event, session) => {
      if (session?.user.id === userId) setAttempt((n) => n + 1);
    });
    // Back online: have supabase-js refresh the expired token (its own timer may take a while).
    const retry = (): void => void supabase.auth.getSession();
    window.addEventListener('online', retry);
    return () => {
      data.subscription.unsubscribe();
      window.removeEventListener('online', retry);
    };
  }, [supabase, userId, localOnly]);

  return { db: state.opened?.db ?? null, localOnly, error: state.error };
}

export function App({ supabase, network }: AppProps) {
  const [user, setUser] = useState<DemoUser | null>(rememberedUser);
  useEffect(
    () => watchUser(supabase, (next) => setUser((prev) => (prev?.id === next?.id ? prev : next))),
    [supabase],
  );
  const { db, localOnly, error } = useDemoDb(supabase, user?.id, network);

  if (user === null) return <SignIn supabase={supabase} />;
  if (error !== null) return <p className="fatal">Cannot open the local database: {error}</p>;
  if (db === null) return <p className="loading">Opening your data…</p>;
  return (
    <Workspace
      db={db}
      localOnly={localOnly}
      user={user}
      network={network}
      onSignOut={() => {
        void signOut(supabase).then(() => setUser(null));
      }}
    />
  );
}
