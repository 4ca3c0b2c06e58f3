import { useEffect, useState } from 'react';
import type { ConflictView, DemoDb } from './db.js';

interface Toast {
  id: number;
  text: string;
}

const TOAST_MS = 8000;

export function describeConflict(c: ConflictView): string {
  const where = [c.table, c.key, c.field].filter((x) => x !== undefined).join(' › ');
  const outcome =
    c.resolution === 'dropped'
      ? 'your change was replaced by a newer one'
      : c.resolution === 'merged'
        ? 'the changes were merged'
        : 'your change was kept';
  return `Conflict on ${where}: ${outcome}.`;
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
