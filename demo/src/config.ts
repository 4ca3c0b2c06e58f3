/**
 * Where the backend is. A build for a real Supabase project bakes in `VITE_SUPABASE_URL` and
 * `VITE_SUPABASE_ANON_KEY`; otherwise the app asks the server that serves it (`npm run demo`
 * answers `/config.json` with the local dev server's URL and anon key, so no rebuild is needed when
 * the port changes). The last answer is kept for offline starts.
 */
export interface DemoConfig {
  supabaseUrl: string;
  anonKey: string;
}

const STORAGE_KEY = 'userdb-demo:config';

function isConfig(value: unknown): value is DemoConfig {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.supabaseUrl === 'string' && typeof v.anonKey === 'string';
}

function remembered(): DemoConfig | undefined {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null');
    return isConfig(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The backend to use; rejects when none is configured and none was ever seen. */
export async function loadConfig(): Promise<DemoConfig> {
  const url = import.meta.env.VITE_SUPABASE_URL as string | undefined;
  const anonKey = import.meta.env.VITE_SUPABASE_ANON_KEY as string | undefined;
  if (url && anonKey) return { supabaseUrl: url, anonKey };
  try {
    const res = await fetch(new URL('config.json', document.baseURI), { cache: 'no-store' });
    if (res.ok) {
      const body: unknown = await res.json();
      if (isConfig(body)) {
        localStorage.setItem(STORAGE_KEY, JSON.stringify(body));
        return body;
      }
    }
  } catch {
    // Offline: fall back to the last known backend.
  }
  const last = remembered();
  if (last !== undefined) return last;
  throw new Error(
    'No backend configured: run `npm run demo`, or build with VITE_SUPABASE_URL and VITE_SUPABASE_ANON_KEY.',
  );
}
