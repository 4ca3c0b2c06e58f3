import { useState } from 'react';
import { useQuery } from 'supabase-userdb/react';
import type { DemoDb } from './db.js';
import type { DemoNetwork } from './network.js';
import { ProjectList } from './ProjectList.js';
import { OfflineSwitch, SyncBadge } from './SyncBadge.js';
import type { DemoUser } from './session.js';
import { TaskList } from './TaskList.js';
import { ConflictToasts } from './Toasts.js';

interface WorkspaceProps {
  db: DemoDb;
  /** Opened without sync (no session yet); see `useDemoDb`. */
  user: DemoUser;
  network: DemoNetwork;
  onSignOut: () => void;
}

export function Workspace({ db, user, network, onSignOut }: WorkspaceProps) {
  const projects = useQuery(() => db.table('projects').query().orderBy('created_at').observe(), [db]);
  // The selected project lives in the URL hash, so a reload keeps it.
  const [selectedId, setSelectedId] = useState<string | null>(() => location.hash.slice(1) || null);
  const select = (id: string): void => {
    setSelectedId(id);
    history.replaceState(null, '', `#${id}`);
  };
  const selected = projects?.find((p) => p.id === selectedId) ?? projects?.[0];

  return (
    <div className="app">
      <header>
        <h1>Projects &amp; Tasks</h1>
        <SyncBadge db={db} />
        <OfflineSwitch network={network} />
        <span className="user" data-testid="user">
          {user.email ?? 'anonymous'}
        </span>
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main>
        <ProjectList db={db} projects={projects ?? []} selectedId={selected?.id} onSelect={select} />
        {selected === undefined ? (
          <section className="tasks empty">Add a project to start.</section>
        ) : (
          <TaskList db={db} project={selected} />
        )}
      </main>
      <ConflictToasts db={db} />
    </div>
  );
}
