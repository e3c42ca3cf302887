/**
 * While an edge is being drawn over a port that refuses it, says why right at the cursor (the same
 * reason `validateEdge` gives: port types, arity, cycles).
 */
import { useConnection, ViewportPortal } from '@xyflow/react';
import type { ReactElement } from 'react';
import { docStore } from '../state/document';
import { connectionProblem } from './connection';

export function ConnectionHint(): ReactElement | null {
  const c = useConnection();
  if (!c.inProgress || !c.toHandle || c.isValid !== false) return null;
  const reason = connectionProblem(docStore.get().doc, c.fromHandle, c.toHandle);
  if (!reason) return null;
  return (
    <ViewportPortal>
      <div className="connection-hint" data-testid="connection-hint" style={{ transform: `translate(${c.to.x + 14}px, ${c.to.y + 10}px)` }}>
        {reason}
      </div>
    </ViewportPortal>
  );
}
