/**
 * React bindings of userdb (`supabase-userdb/react`): live queries and the sync status as hook values, built
 * on `useSyncExternalStore` (no tearing in concurrent rendering; a component renders again only when
 * the value changes by reference, and userdb's live queries keep unchanged results and rows
 * identical).
 *
 * @example
 * ```tsx
 * import { useQuery, useSyncStatus } from 'supabase-userdb/react';
 *
 * function Projects({ db }: { db: UserDb<typeof schema.definition> }) {
 *   const projects = useQuery(() => db.table('projects').query().orderBy('created_at').observe(), [db]);
 *   const status = useSyncStatus(db);
 *   return <p>{projects?.length ?? 0} projects, {status?.pendingCount ?? 0} pending</p>;
 * }
 * ```
 */
import { type DependencyList, useMemo, useSyncExternalStore } from 'react';
import type { Observable } from 'rxjs';
import { ObservableStore } from './store.js';

export { ObservableStore, type ReleaseScheduler, UNCLAIMED_RELEASE_MS } from './store.js';

/**
 * What {@link useQuery} accepts: an observable, or a function that makes one.
 *
 * @example
 * ```ts
 * const source: QuerySource<Project[]> = () => db.table('projects').query().observe();
 * ```
 */
export type QuerySource<T> = Observable<T> | (() => Observable<T>);

function isFactory<T>(source: QuerySource<T>): source is () => Observable<T> {
  return typeof source === 'function';
}

/**
 * The latest value of an observable, typically a live query (`query.observe()`); the component
 * renders again each time a new value arrives, and never for a value identical to the current one.
 * `undefined` until the first value (a userdb live query has its first value at once, so it is there
 * on the first render). An error of the observable is thrown during render, to the nearest error
 * boundary.
 *
 * `source` is either an observable, subscribed as long as the same object is passed, or a factory
 * called again only when `deps` change (like `useMemo`; no `deps` means once per component). Pass a
 * factory when building the query inline: `query.observe()` makes a new observable each call.
 *
 * @example
 * ```tsx
 * function Tasks({ db, projectId }: { db: Db; projectId: string }) {
 *   const tasks = useQuery(
 *     () => db.table('tasks').query().where('project_id', '==', projectId).observe(),
 *     [db, projectId],
 *   );
 *   return <ul>{tasks?.map((t) => <li key={t.id}>{t.title}</li>)}</ul>;
 * }
 * ```
 */
export function useQuery<T>(source: Observable<T>): T | undefined;
export function useQuery<T>(factory: () => Observable<T>, deps?: DependencyList): T | undefined;
export function useQuery<T>(source: QuerySource<T>, deps?: DependencyList): T | undefined {
  const key = isFactory(source) ? (deps ?? []) : [source];
  const store = useMemo(
    () => new ObservableStore(isFactory(source) ? source() : source),
    // biome-ignore lint/correctness/useExhaustiveDependencies: the key is `deps` for a factory, else the observable.
    key,
  );
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/**
 * Anything with a `status$` observable, such as a `UserDb` with sync.
 *
 * @example
 * ```ts
 * const withStatus: HasSyncStatus<SyncStatus> = db;
 * ```
 */
export interface HasSyncStatus<S> {
  readonly status$: Observable<S>;
}

/**
 * The sync status of a database (`db.status$`: online, leader, state, pendingCount, lastSyncedAt,
 * lastError): the component renders again when it changes. `undefined` before the first value
 * (`status$` has one at once).
 *
 * @example
 * ```tsx
 * function SyncBadge({ db }: { db: Db }) {
 *   const status = useSyncStatus(db);
 *   if (status === undefined) return null;
 *   if (!status.online) return <span>offline</span>;
 *   return <span>{status.pendingCount > 0 ? `${status.pendingCount} pending` : 'synced'}</span>;
 * }
 * ```
 */
export function useSyncStatus<S>(db: HasSyncStatus<S>): S | undefined {
  return useQuery(() => db.status$, [db]);
}
