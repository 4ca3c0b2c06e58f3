/**
 * Who is signed in. The user is remembered in localStorage as soon as supabase-js reports a
 * session, so an offline start opens that user's local database at once, without waiting for the
 * auth server; supabase-js restores and refreshes the tokens in the background.
 */
import type { Session, SupabaseClient } from '@supabase/supabase-js';

export interface DemoUser {
  id: string;
  /** `null` for an anonymous user. */
  email: string | null;
}

const STORAGE_KEY = 'userdb-demo:user';

export function rememberedUser(): DemoUser | null {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    if (typeof parsed !== 'object' || parsed === null) return null;
    const v = parsed as Record<string, unknown>;
    if (typeof v.id !== 'string') return null;
    return { id: v.id, email: typeof v.email === 'string' ? v.email : null };
  } catch {
    return null;
  }
}

function remember(user: DemoUser | null): void {
  if (user === null) localStorage.removeItem(STORAGE_KEY);
  else localStorage.setItem(STORAGE_KEY, JSON.stringify(user));
}

function userOf(session: Session): DemoUser {
  const { id, email, is_anonymous } = session.user;
  return { id, email: is_anonymous === true || !email ? null : email };
}

/** Follows supabase-js' auth state; calls `onUser` when the user changes (sign-in, sign-out). */
export function watchUser(supabase: SupabaseClient, onUser: (user: DemoUser | null) => void): () => void {
  const { data } = supabase.auth.onAuthStateChange((event, session) => {
    if (session !== null) {
      const user = userOf(session);
      remember(user);
      onUser(user);
    } else if (event === 'SIGNED_OUT') {
      remember(null);
      onUser(null);
    }
  });
  return () => data.subscription.unsubscribe();
}

export type SignInMode = 'sign-in' | 'sign-up';

/** Signs in (or up) with email and password; resolves with an error message, or `null` on success. */
export async function signInWithPassword(
  supabase: SupabaseClient,
  mode: SignInMode,
  email: string,
  password: string,
): Promise<string | null> {
  const { error } =
    mode === 'sign-up'
      ? await supabase.auth.signUp({ email, password })
      : await supabase.auth.signInWithPassword({ email, password });
  return error === null ? null : error.message;
}

/** Signs in as a new anonymous user; resolves with an error message, or `null` on success. */
export async function signInAnonymously(supabase: SupabaseClient): Promise<string | null> {
  const { error } = await supabase.auth.signInAnonymously();
  return error === null ? null : error.message;
}

/** Signs out (locally even when offline) and forgets the user. */
export async function signOut(supabase: SupabaseClient): Promise<void> {
  remember(null);
  await supabase.auth.signOut({ scope: 'local' });
}
