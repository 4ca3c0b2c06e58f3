import type { SupabaseClient } from '@supabase/supabase-js';
import { useEffect, useState } from 'react';
import { type DemoDb, openDemoDb } from './db.js';
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
  const [state, setState] = useState<{ db: DemoDb | null; error: string | null }>({ db: null, error: null });
  useEffect(() => {
    if (userId === undefined) return;
    let cancelled = false;
    let opened: DemoDb | null = null;
    openDemoDb(supabase, userId, network).then(
      (db) => {
        opened = db;
        if (cancelled) void db.close();
        else setState({ db, error: null });
      },
      (e: unknown) => {
        if (!cancelled) setState({ db: null, error: e instanceof Error ? e.message : String(e) });
      },
    );
    return () => {
      cancelled = true;
      setState({ db: null, error: null });
      void opened?.close();
    };
  }, [supabase, userId, network]);
  return state;
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
