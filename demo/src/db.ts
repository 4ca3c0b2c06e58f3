/**
 * Opens the signed-in user's database with sync. The sync engine gets the demo's online signal,
 * so "simulate offline" pauses it the way a lost network would.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import type { Observable } from 'rxjs';
import { createUserDb, type UserDb } from 'userdb';
// The engine is wired here by hand until `createUserDb` takes `supabase` and sync options itself.
import { SupabaseRemote } from '../../src/remote/index.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { syncStoreOf } from '../../src/sync/store-adapter.js';
import type { OnlineSignal } from './network.js';
import { type DemoSchema, schema } from './schema.js';

/** The sync status as `db.status$` reports it (the fields the demo shows). */
export interface SyncStatusView {
  state: 'idle' | 'pushing' | 'pulling' | 'backoff' | 'offline' | 'error';
  online: boolean;
  leader: boolean;
  pendingCount: number;
  lastSyncedAt: number | null;
  lastError: { message: string } | null;
}

/** A conflict as `db.conflicts$` reports it. */
export interface ConflictView {
  kind: string;
  table: string;
  key?: string | undefined;
  field?: string | undefined;
  local?: unknown;
  remote?: unknown;
  resolution: string;
}

/** The demo's database: the typed local database plus the sync API. */
export type DemoDb = UserDb<DemoSchema> & {
  readonly status$: Observable<SyncStatusView>;
  readonly conflicts$: Observable<ConflictView>;
};

export async function openDemoDb(
  supabase: SupabaseClient,
  userId: string,
  online: OnlineSignal,
): Promise<DemoDb> {
  const db = await createUserDb({ userId, schema });
  const engine = new SyncEngine({
    store: syncStoreOf(db.localStore),
    remote: new SupabaseRemote(supabase, { userId }),
    userId,
    options: { online },
  });
  const closeLocal = db.close.bind(db);
  return Object.assign(db, {
    status$: engine.status$,
    conflicts$: engine.conflicts$,
    close: async () => {
      await engine.close();
      await closeLocal();
    },
  }) as DemoDb;
}
