import { type FormEvent, useState } from 'react';
import { useQuery } from 'supabase-userdb/react';
import type { DemoDb } from './db.js';
import { newId, type Project } from './schema.js';

export function TaskList({ db, project }: { db: DemoDb; project: Project }) {
  const tasks = useQuery(
    () => db.table('tasks').query().where('project_id', '==', project.id).orderBy('title').observe(),
    [db, project.id],
  );
  const [title, setTitle] = useState('');

  const add = (e: FormEvent): void => {
    e.preventDefault();
    const t = title.trim();
    if (t === '') return;
    setTitle('');
    void db.table('tasks').insert({ id: newId('t'), project_id: project.id, title: t });
  };

  return (
    <section className="tasks">
      <h2 data-testid="tasks-heading">{project.title}</h2>
      <form onSubmit={add} className="add">
        <input
          data-testid="new-task"
          placeholder="New task"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
        />
        <button type="submit" data-testid="add-task">
          Add
        </button>
      </form>
      <ul>
        {(tasks ?? []).map((t) => (
          <li key={t.id} data-testid="task" data-title={t.title} data-done={t.done}>
            <label className={t.done ? 'done' : undefined}>
              <input
                type="checkbox"
                data-testid="task-done"
                checked={t.done}
                onChange={() => void db.table('tasks').update(t.id, { done: !t.done })}
              />
              {t.title}
            </label>
            <button
              type="button"
              className="icon danger"
              aria-label={`Delete ${t.title}`}
              onClick={() => void db.table('tasks').delete(t.id)}
            >
              ×
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
