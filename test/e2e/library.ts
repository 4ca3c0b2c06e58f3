/**
 * The library itself in headless Chromium (no demo app): `src/index.ts` and supabase-js bundled with
 * esbuild into one script that sets `window.lib`, served with an empty page from a local origin.
 * Pages call `openDb(…)` (below) through `page.evaluate`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Bundles the library for the browser (IIFE, `window.lib = { createClient, createUserDb, defineSchema, z }`). */
export async function bundleLibrary(): Promise<string> {
  const result = await build({
    stdin: {
      contents: `
        import { createClient } from '@supabase/supabase-js';
        import { createUserDb, defineSchema } from './src/index.ts';
        import { z } from 'zod';
        window.lib = { createClient, createUserDb, defineSchema, z };`,
      resolveDir: ROOT,
      loader: 'ts',
    },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]?.text ?? '';
}

/** Serves `/` (an empty page loading the bundle) and `/lib.js`; resolves to its origin. */
export async function serveLibrary(bundle: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === '/lib.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(bundle);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><meta charset="utf-8"><title>userdb</title><script src="/lib.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, server };
}

/**
 * Page-side source of `openDb(url, anonKey, email, password)`: signs in, opens the user's database
 * with a `projects` table, and keeps it on `window.db`, its statuses on `window.statuses`. A string
 * (not a function) so that nothing of the test's transpilation leaks into the page.
 */
export const OPEN_DB = `
  window.openDb = async (url, anonKey, email, password) => {
    const { createClient, createUserDb, defineSchema, z } = window.lib;
    const supabase = createClient(url, anonKey, { realtime: { reconnectAfterMs: () => 50 } });
    const { error } = await supabase.auth.signInWithPassword({ email, password });
    if (error) throw new Error(String(error.message));
    const schema = defineSchema({
      projects: { fields: { id: z.string(), title: z.string() }, primaryKey: ['id'] },
    });
    const db = await createUserDb({ supabase, schema, sync: { pushDebounceMs: 5, pollIntervalMs: 0 } });
    window.db = db;
    window.statuses = [];
    db.status$.subscribe((s) => window.statuses.push({ state: s.state, leader: s.leader, pendingCount: s.pendingCount }));
    return true;
  };
`;
