import { useEffect, useState } from 'react';
import type { ConflictView, DemoDb } from './db.js';

interface Toast {
  id: number;
  text: string;
}

const TOAST_MS = 8000;

function show(value: unknown): string {
  return typeof value === 'string' ? `“${value}”` : JSON.stringify(value ?? null);
}

/**
 * One sentence per conflict, naming the row by its title, e.g.
 * `Conflict on title of task “Ship v2”: kept your “Ship v2” over “Ship it”.`
 * `title` is the row's title as this window shows it now (the row may be gone: then `undefined`).
 */
export function describeConflict(c: ConflictView, title?: string): string {
  const noun = c.table === 'projects' ? 'project' : c.table === 'tasks' ? 'task' : `table ${c.table}`;
  const name = title ?? titleInConflict(c);
  const row = c.key === undefined ? noun : name === undefined ? `a ${noun}` : `${noun} ${show(name)}`;
  const what = c.field === undefined ? row : `${c.field} of ${row}`;
  if (c.resolution === 'dropped') {
    return `Conflict on ${what}: your ${show(c.local)} was replaced by ${show(c.remote)}.`;
  }
  if (c.resolution === 'merged') return `Conflict on ${what}: the edits were merged.`;
  return c.remote === undefined
    ? `Conflict on ${what}: your edit was kept.`
    : `Conflict on ${what}: kept your ${show(c.local)} over ${show(c.remote)}.`;
}

/** A title the conflict itself carries (a whole row, or the title field), for a row that is gone. */
function titleInConflict(c: ConflictView): string | undefined {
  for (const value of [c.local, c.remote]) {
    if (c.field === 'title' && typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const t = (value as Record<string, unknown>).title;
      if (typeof t === 'string') return t;
    }
  }
  return undefined;
}

/** The title of the conflict's row in the local database, if it still exists. */
async function currentTitle(db: DemoDb, c: ConflictView): Promise<string | undefined> {
  if (c.key === undefined || (c.table !== 'projects' && c.table !== 'tasks')) return undefined;
  const row = await db.table(c.table).get(c.key);
  return row?.title;
}

/** One toast per conflict reported by `db.conflicts$`. */
export function ConflictToasts({ db }: { db: DemoDb }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  useEffect(() => {
    let next = 0;
    const timers = new Set<ReturnType<typeof setTimeout>>();
    let live = true;
    const sub = db.conflicts$.subscribe(async (c) => {
      const title = await currentTitle(db, c).catch(() => undefined);
      if (!live) return;
      const id = ++next;
      setToasts((list) => [...list, { id, text: describeConflict(c, title) }]);
      const timer = setTimeout(() => {
        timers.delete(timer);
        setToasts((list) => list.filter((t) => t.id !== id));
      }, TOAST_MS);
      timers.add(timer);
    });
    return () => {
      live = false;
      sub.unsubscribe();
      for (const t of timers) clearTimeout(t);
    };
  }, [db]);
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <div key={t.id} className="toast" data-testid="toast" role="status">
          {t.text}
          <button
            type="button"
            aria-label="Dismiss"
            onClick={() => setToasts((list) => list.filter((x) => x.id !== t.id))}
          >
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
