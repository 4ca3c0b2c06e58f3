/**
 * Opens the signed-in user's database with sync. The sync engine gets the demo's online signal,
 * so "simulate offline" pauses it the way a lost network would.
 *
 * Offline-first start: the user id remembered from the last sign-in is passed along, so the
 * database opens from IndexedDB at once even offline with an expired access token (when supabase-js
 * cannot refresh the session); sync resumes when supabase-js has a session again.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import { createUserDb, type UserDb } from 'supabase-userdb';
import type { OnlineSignal } from './network.js';
import { type DemoSchema, schema } from './schema.js';

export type { SyncConflict as ConflictView, SyncStatus as SyncStatusView } from 'supabase-userdb';

/** The demo's database. */
export type DemoDb = UserDb<DemoSchema>;

/** An open database, and whether it syncs. */
export interface OpenedDb {
  db: DemoDb;
  /** Whether it syncs (always, in this demo: it opens offline too, and syncs once it can). */
  syncing: boolean;
}

/** What {@link openDemoDb} reports. */
export interface DemoDbEvents {
  /** The database to show. */
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
  let opened: DemoDb | null = null;
  // With `userId` given, createUserDb opens from IndexedDB at once, without waiting for the session
  // or the network; sync starts (or waits for a session of this user) in the background.
  createUserDb({ userId, schema, supabase, sync: { online } }).then(
    (db) => {
      if (closed) {
        void db.close();
        return;
      }
      opened = db;
      events.opened({ db, syncing: true });
    },
    (e: unknown) => {
      if (!closed) events.failed(e);
    },
  );

  return () => {
    closed = true;
    void opened?.close();
  };
}
