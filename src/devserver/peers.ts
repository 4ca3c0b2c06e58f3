/**
 * The dev server's engines are optional peer dependencies of `supabase-userdb`: a browser app
 * that only uses the library never installs them. They are imported here, lazily, when the dev
 * server (or its CLI) starts; a missing one is a {@link MissingPeerDependencyError} that names
 * the packages to install.
 */

/** The optional packages the dev server loads. */
export type DevServerPeer = '@electric-sql/pglite' | 'pg' | 'ws';

/** What each package is for, in error messages. */
const PURPOSE: Readonly<Record<DevServerPeer, string>> = {
  '@electric-sql/pglite': 'the in-process PostgreSQL (--db memory or a directory)',
  pg: 'connecting to a PostgreSQL server (a postgres:// URL)',
  ws: 'the Realtime websocket endpoint',
};

/**
 * The dev server needs packages that are not installed. `packages` lists them all;
 * `installCommand` is the line that installs them.
 *
 * @example
 * ```ts
 * try {
 *   await startDevServer({ database: 'memory' });
 * } catch (e) {
 *   if (e instanceof MissingPeerDependencyError) console.error(e.installCommand); // npm install --save-dev @electric-sql/pglite ws
 * }
 * ```
 */
export class MissingPeerDependencyError extends Error {
  override readonly name = 'MissingPeerDependencyError';
  readonly packages: readonly DevServerPeer[];
  readonly installCommand: string;

  constructor(packages: readonly DevServerPeer[], options?: { cause?: unknown }) {
    const list = packages.map((p) => `  ${p}: ${PURPOSE[p]}`).join('\n');
    const installCommand = `npm install --save-dev ${packages.join(' ')}`;
    super(
      `the supabase-userdb dev server needs ${packages.length === 1 ? 'a package' : 'packages'} that ${packages.length === 1 ? 'is' : 'are'} not installed (optional peer dependencies, left out of browser apps):\n${list}\nInstall ${packages.length === 1 ? 'it' : 'them'} next to supabase-userdb: ${installCommand}`,
      options,
    );
    this.packages = packages;
    this.installCommand = installCommand;
  }
}

/** True when `error` says that `name` itself (not something inside it) cannot be found. */
function isMissing(error: unknown, name: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return typeof message === 'string' && new RegExp(`['"]${name.replace(/[/.]/g, '\\$&')}['"]`).test(message);
}

const loaders = {
  '@electric-sql/pglite': () => import('@electric-sql/pglite'),
  pg: () => import('pg'),
  ws: () => import('ws'),
} satisfies Record<DevServerPeer, () => Promise<unknown>>;

type Loaded = { [K in DevServerPeer]: Awaited<ReturnType<(typeof loaders)[K]>> };

/**
 * Imports the named packages; throws one {@link MissingPeerDependencyError} naming every one
 * that is not installed. Other import errors are rethrown as they are.
 *
 * @example
 * ```ts
 * const { ws } = await loadPeers(['ws']);
 * const server = new ws.WebSocketServer({ noServer: true });
 * ```
 */
export async function loadPeers<const P extends DevServerPeer>(
  names: readonly P[],
): Promise<Pick<Loaded, P>> {
  const results = await Promise.allSettled(names.map((name) => loaders[name]()));
  const missing: DevServerPeer[] = [];
  const out: Partial<Loaded> = {};
  for (const [i, result] of results.entries()) {
    const name = names[i] as P;
    if (result.status === 'fulfilled') {
      (out as Record<string, unknown>)[name] = result.value;
    } else if (isMissing(result.reason, name)) {
      missing.push(name);
    } else {
      throw result.reason;
    }
  }
  if (missing.length > 0) throw new MissingPeerDependencyError(missing);
  return out as Pick<Loaded, P>;
}

/**
 * The packages the dev server needs for a database `location` (see `startDevServer`).
 *
 * @example
 * ```ts
 * peersFor('memory'); // ['@electric-sql/pglite', 'ws']
 * ```
 */
export function peersFor(location: string): DevServerPeer[] {
  return [/^postgres(ql)?:\/\//.test(location) ? 'pg' : '@electric-sql/pglite', 'ws'];
}
