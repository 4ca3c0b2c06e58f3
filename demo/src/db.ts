/**
 * Opens the signed-in user's database with sync. The sync engine gets the demo's online signal,
 * so "simulate offline" pauses it the way a lost network would.
 *
 * Offline-first start: `createUserDb({ supabase })` first asks supabase-js for the session, and
 * with an expired access token and no network supabase-js keeps retrying the refresh for up to
 * ~30 s and then has no session. So when the synced database is not there within a moment, the
 * user's local database opens local-only at once (the app shows the data and takes edits), and is
 * swapped for the synced one as soon as that opens, or, if there was no session, when supabase-js
 * has one again.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import { AuthError, createUserDb, type UserDb } from 'userdb';
import type { OnlineSignal } from './network.js';
import { type DemoSchema, schema } from './schema.js';

export type { SyncConflict as ConflictView, SyncStatus as SyncStatusView } from 'userdb';

/** The demo's database. */
export type DemoDb = UserDb<DemoSchema>;

/** An open database, and whether it syncs. */
export interface OpenedDb {
  db: DemoDb;
  /** False while it is open local-only for want of a session (see the module documentation). */
  syncing: boolean;
}

/** How long the synced database may take to open before the local-only one is shown. */
export const SESSION_GRACE_MS = 1500;

/** What {@link openDemoDb} reports. */
export interface DemoDbEvents {
  /** A database to show (first the local-only one, if it came to that, then the synced one). */
  opened(opened: OpenedDb): void;
  /** The database cannot be opened at all. */
  failed(error: unknown): void;
}

/**
 * Opens `userId`'s database (see the module documentation) and reports each database to show;
 * returns the function that closes everything. Call it again (after closing) to retry sync once
 * supabase-js has a session.
 */
export function openDemoDb(
  supabase: SupabaseClient,
  userId: string,
  online: OnlineSignal,
  events: DemoDbEvents,
): () => void {
  let closed = false;
  let local: DemoDb | null = null;
  let synced: DemoDb | null = null;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;

  const openLocal = (): void => {
    if (local !== null || synced !== null || closed) return;
    createUserDb({ userId, schema }).then(
      (db) => {
        if (closed || synced !== null) {
          void db.close();
          return;
        }
        local = db;
        events.opened({ db, syncing: false });
      },
      (e: unknown) => {
        if (!closed && synced === null) events.failed(e);
      },
    );
  };

  graceTimer = setTimeout(openLocal, SESSION_GRACE_MS);
  createUserDb({ userId, schema, supabase, sync: { online } }).then(
    (db) => {
      clearTimeout(graceTimer);
      if (closed) {
        void db.close();
        return;
      }
      synced = db;
      events.opened({ db, syncing: true });
      void local?.close();
      local = null;
    },
    (e: unknown) => {
      clearTimeout(graceTimer);
      if (e instanceof AuthError) openLocal();
      else if (!closed) events.failed(e);
    },
  );

  return () => {
    closed = true;
    clearTimeout(graceTimer);
    void local?.close();
    void synced?.close();
  };
}
