/**
 * Type tests (checked by `npm run typecheck`, never executed): the sync surface of the public API.
 */
import { createClient } from '@supabase/supabase-js';
import { expectTypeOf, it } from 'vitest';
import { createUserDb, type SyncConflict, type SyncStatus } from '../../src/index.js';

interface Database {
  public: {
    Tables: {
      todos: { Row: { id: number }; Insert: { id?: number }; Update: { id?: number }; Relationships: [] };
    };
    Views: Record<never, never>;
    Functions: Record<never, never>;
    Enums: Record<never, never>;
    CompositeTypes: Record<never, never>;
  };
}

it('accepts a typed supabase client and exposes typed sync members', async () => {
  const supabase = createClient<Database>('http://localhost', 'key');
  const db = await createUserDb({ supabase });
  expectTypeOf(db.status$).toEqualTypeOf<import('rxjs').Observable<SyncStatus>>();
  expectTypeOf(db.conflicts$).toEqualTypeOf<import('rxjs').Observable<SyncConflict>>();
  expectTypeOf(db.flush()).toEqualTypeOf<Promise<void>>();
  expectTypeOf(db.pull()).toEqualTypeOf<Promise<void>>();
});
