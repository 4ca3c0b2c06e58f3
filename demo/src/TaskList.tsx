import { type FormEvent, useState } from 'react';
import { useQuery } from 'supabase-userdb/react';
import type { DemoDb } from './db.js';
import { RenameForm } from './RenameForm.js';
import { newId, type Project, type Task } from './schema.js';

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
          <TaskRow key={t.id} db={db} task={t} />
        ))}
      </ul>
    </section>
  );
}

function TaskRow({ db, task }: { db: DemoDb; task: Task }) {
  const [renaming, setRenaming] = useState(false);
  return (
    <li data-testid="task" data-title={task.title} data-done={task.done}>
      {renaming ? (
        <RenameForm
          title={task.title}
          onRename={(title) => void db.table('tasks').update(task.id, { title })}
          onClose={() => setRenaming(false)}
        />
      ) : (
        <>
          <label className={task.done ? 'done' : undefined}>
            <input
              type="checkbox"
              data-testid="task-done"
              checked={task.done}
              onChange={() => void db.table('tasks').update(task.id, { done: !task.done })}
            />
            {task.title}
          </label>
          <button type="button" className="icon" data-testid="rename" onClick={() => setRenaming(true)}>
            Rename
          </button>
          <button
            type="button"
            className="icon danger"
            aria-label={`Delete ${task.title}`}
            onClick={() => void db.table('tasks').delete(task.id)}
          >
            ×
          </button>
        </>
      )}
    </li>
  );
}
