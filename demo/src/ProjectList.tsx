import { type FormEvent, useState } from 'react';
import { useQuery } from 'supabase-userdb/react';
import type { DemoDb } from './db.js';
import { RenameForm } from './RenameForm.js';
import { newId, type Project } from './schema.js';

interface ProjectListProps {
  db: DemoDb;
  projects: readonly Project[];
  selectedId: string | undefined;
  onSelect: (id: string) => void;
}

export function ProjectList({ db, projects, selectedId, onSelect }: ProjectListProps) {
  const [title, setTitle] = useState('');
  const tasks = useQuery(() => db.table('tasks').query().observe(), [db]);

  const add = (e: FormEvent): void => {
    e.preventDefault();
    const t = title.trim();
    if (t === '') return;
    const id = newId('p');
    setTitle('');
    void db.table('projects').insert({ id, title: t, created_at: new Date().toISOString() });
    onSelect(id);
  };

  return (
    <section className="projects">
      <h2>Projects</h2>
      <form onSubmit={add} className="add">
        <input
          data-testid="new-project"
          placeholder="New project"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
        />
        <button type="submit" data-testid="add-project">
          Add
        </button>
      </form>
      <ul>
        {projects.map((p) => {
          const mine = tasks?.filter((t) => t.project_id === p.id) ?? [];
          const done = mine.filter((t) => t.done).length;
          return (
            <ProjectRow
              key={p.id}
              db={db}
              project={p}
              selected={p.id === selectedId}
              progress={mine.length === 0 ? '' : `${done}/${mine.length}`}
              onSelect={() => onSelect(p.id)}
            />
          );
        })}
      </ul>
    </section>
  );
}

interface ProjectRowProps {
  db: DemoDb;
  project: Project;
  selected: boolean;
  progress: string;
  onSelect: () => void;
}

function ProjectRow({ db, project, selected, progress, onSelect }: ProjectRowProps) {
  const [renaming, setRenaming] = useState(false);

  const remove = (): void => {
    void db.transaction(async () => {
      const tasks = await db.table('tasks').query().where('project_id', '==', project.id).toArray();
      for (const t of tasks) await db.table('tasks').delete(t.id);
      await db.table('projects').delete(project.id);
    });
  };

  return (
    <li className={selected ? 'selected' : undefined} data-testid="project" data-title={project.title}>
      {renaming ? (
        <RenameForm
          title={project.title}
          onRename={(title) => void db.table('projects').update(project.id, { title })}
          onClose={() => setRenaming(false)}
        />
      ) : (
        <>
          <button type="button" className="title" data-testid="project-title" onClick={onSelect}>
            {project.title}
          </button>
          <span className="muted">{progress}</span>
          <button type="button" className="icon" data-testid="rename" onClick={() => setRenaming(true)}>
            Rename
          </button>
          <button type="button" className="icon danger" data-testid="delete" onClick={remove}>
            Delete
          </button>
        </>
      )}
    </li>
  );
}
