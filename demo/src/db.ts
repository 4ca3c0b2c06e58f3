/**
 * Opens the signed-in user's database with sync. The sync engine gets the demo's online signal,
 * so "simulate offline" pauses it the way a lost network would.
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import type { Observable } from 'rxjs';
import { createUserDb, type UserDb } from 'userdb';
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
  resolution: string;
}

/** The demo's database: the typed local database plus the sync API. */
export type DemoDb = UserDb<DemoSchema> & {
  readonly status$: Observable<SyncStatusView>;
  readonly conflicts$: Observable<ConflictView>;
};

export function openDemoDb(supabase: SupabaseClient, userId: string, online: OnlineSignal): Promise<DemoDb> {
  return createUserDb({ userId, schema, supabase, sync: { online } }) as Promise<DemoDb>;
}
