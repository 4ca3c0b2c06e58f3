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

/** One sentence per conflict, e.g. `title of project p_1: kept your “A” over “B”.` */
export function describeConflict(c: ConflictView): string {
  const noun = c.table === 'projects' ? 'project' : c.table === 'tasks' ? 'task' : `table ${c.table}`;
  const row = c.key === undefined ? noun : `${noun} ${c.key}`;
  const what = c.field === undefined ? row : `${c.field} of ${row}`;
  if (c.resolution === 'dropped') {
    return `Conflict on ${what}: your ${show(c.local)} was replaced by ${show(c.remote)}.`;
  }
  if (c.resolution === 'merged') return `Conflict on ${what}: the edits were merged.`;
  return c.remote === undefined
    ? `Conflict on ${what}: your edit was kept.`
    : `Conflict on ${what}: kept your ${show(c.local)} over ${show(c.remote)}.`;
}

/** One toast per conflict reported by `db.conflicts$`. */
export function ConflictToasts({ db }: { db: DemoDb }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  useEffect(() => {
    let next = 0;
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const sub = db.conflicts$.subscribe((c) => {
      const id = ++next;
      setToasts((list) => [...list, { id, text: describeConflict(c) }]);
      const timer = setTimeout(() => {
        timers.delete(timer);
        setToasts((list) => list.filter((t) => t.id !== id));
      }, TOAST_MS);
      timers.add(timer);
    });
    return () => {
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
