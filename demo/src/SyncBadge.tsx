import { useSyncExternalStore } from 'react';
import { useSyncStatus } from 'supabase-userdb/react';
import type { DemoDb, SyncStatusView } from './db.js';
import type { DemoNetwork } from './network.js';

const time = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** What the badge says: offline / syncing / N pending / synced at hh:mm:ss. */
export function describeStatus(s: SyncStatusView | undefined): { kind: string; text: string } {
  if (s === undefined) return { kind: 'local', text: 'local only' };
  const pending = s.pendingCount > 0 ? ` · ${s.pendingCount} pending` : '';
  // No usable session (offline with an expired token): sync resumes once supabase-js refreshes it.
  if (s.lastError?.code === 'auth' && s.state !== 'error') {
    return { kind: 'offline', text: `offline · waiting to sign in again${pending}` };
  }
  if (!s.online) return { kind: 'offline', text: `offline${pending}` };
  if (s.state === 'error') return { kind: 'error', text: `sync stopped: ${s.lastError?.message ?? 'error'}` };
  if (s.state === 'pushing' || s.state === 'pulling') return { kind: 'syncing', text: `syncing${pending}` };
  if (s.pendingCount > 0) return { kind: 'pending', text: `${s.pendingCount} pending` };
  // Another tab of this browser leads and syncs for every tab; this one only writes.
  if (!s.leader) return { kind: 'synced', text: 'synced by another tab' };
  if (s.lastSyncedAt !== null) return { kind: 'synced', text: `synced at ${time.format(s.lastSyncedAt)}` };
  return { kind: 'syncing', text: 'connecting' };
}

export function SyncBadge({ db }: { db: DemoDb }) {
  const status = useSyncStatus(db);
  const { kind, text } = describeStatus(status);
  return (
    <span
      className={`badge badge-${kind}`}
      data-testid="sync-badge"
      data-kind={kind}
      data-pending={status?.pendingCount ?? 0}
      data-synced-at={status?.lastSyncedAt ?? ''}
      title={status?.lastError?.message}
    >
      {text}
    </span>
  );
}

export function OfflineSwitch({ network }: { network: DemoNetwork }) {
  const offline = useSyncExternalStore(
    (onChange) => network.subscribeSwitch(onChange),
    () => network.simulatedOffline,
  );
  return (
    <label className="switch">
      <input
        type="checkbox"
        data-testid="simulate-offline"
        checked={offline}
        onChange={(e) => network.setSimulatedOffline(e.target.checked)}
      />
      simulate offline
    </label>
  );
}
