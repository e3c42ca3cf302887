/** Run / node status as a small coloured pill. */
import type { ReactElement } from 'react';

const LABEL: Record<string, string> = {
  queued: 'queued', pending: 'pending', running: 'running', succeeded: 'done', failed: 'failed', cached: 'cached',
  skipped: 'skipped', cancelled: 'cancelled', interrupted: 'interrupted',
};

export function StatusBadge({ status }: { status: string }): ReactElement {
  return (
    <span className={`badge badge-${status}`} data-status={status}>
      {status === 'running' && <span className="badge-spinner" />}
      {LABEL[status] ?? status}
    </span>
  );
}
