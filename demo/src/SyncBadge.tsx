import { useSyncExternalStore } from 'react';
import { useSyncStatus } from 'userdb/react';
import type { DemoDb, SyncStatusView } from './db.js';
import type { DemoNetwork } from './network.js';

const time = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

/** What the badge says: offline / syncing / N pending / synced at hh:mm:ss. */
export function describeStatus(
  s: SyncStatusView | undefined,
  localOnly: boolean,
): { kind: string; text: string } {
  if (s === undefined) return { kind: 'local', text: 'local only' };
  // Opened without a session (offline with an expired token): sync starts once it is refreshed.
  if (localOnly) return { kind: 'offline', text: 'offline · waiting to sign in again' };
  const pending = s.pendingCount > 0 ? ` · ${s.pendingCount} pending` : '';
  if (!s.online) return { kind: 'offline', text: `offline${pending}` };
  if (s.state === 'error') return { kind: 'error', text: `sync stopped: ${s.lastError?.message ?? 'error'}` };
  if (s.state === 'pushing' || s.state === 'pulling') return { kind: 'syncing', text: `syncing${pending}` };
  if (s.pendingCount > 0) return { kind: 'pending', text: `${s.pendingCount} pending` };
  // Another tab of this browser leads and syncs for every tab; this one only writes.
  if (!s.leader) return { kind: 'synced', text: 'synced by another tab' };
  if (s.lastSyncedAt !== null) return { kind: 'synced', text: `synced at ${time.format(s.lastSyncedAt)}` };
  return { kind: 'syncing', text: 'connecting' };
}

export function SyncBadge({ db, localOnly }: { db: DemoDb; localOnly: boolean }) {
  const status = useSyncStatus(db);
  const { kind, text } = describeStatus(status, localOnly);
  return (
    <span
      className={`badge badge-${kind}`}
      data-testid="sync-badge"
      data-kind={kind}
      data-pending={status?.pendingCount ?? 0}
      title={status?.lastError?.message}
    >
      {text}
    </span>
  );
}

export function OfflineSwitch({ network }: { network: DemoNetwork }) {
  const offline = useSyncExternalStore(
    (onChange) => network.subscribe(onChange),
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
