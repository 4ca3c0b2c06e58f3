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

/** Opens the user's database while `userId` is set; closes it when the user changes or signs out. */
function useDemoDb(supabase: SupabaseClient, userId: string | undefined, network: DemoNetwork) {
  const [state, setState] = useState<{ opened: OpenedDb | null; error: string | null }>({
    opened: null,
    error: null,
  });

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
  }, [supabase, userId, network]);

  return { db: state.opened?.db ?? null, error: state.error };
}

export function App({ supabase, network }: AppProps) {
  const [user, setUser] = useState<DemoUser | null>(rememberedUser);
  useEffect(
    () => watchUser(supabase, (next) => setUser((prev) => (prev?.id === next?.id ? prev : next))),
    [supabase],
  );
  const { db, error } = useDemoDb(supabase, user?.id, network);

  if (user === null) return <SignIn supabase={supabase} />;
  if (error !== null) return <p className="fatal">Cannot open the local database: {error}</p>;
  if (db === null) return <p className="loading">Opening your data…</p>;
  return (
    <Workspace
      db={db}
      user={user}
      network={network}
      onSignOut={() => {
        void signOut(supabase).then(() => setUser(null));
      }}
    />
  );
}
