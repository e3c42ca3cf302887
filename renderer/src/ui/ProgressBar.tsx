/** A determinate progress bar with phase, percentage and ETA. */
import type { ReactElement } from 'react';
import { eta } from '../util/format';

export function ProgressBar({ phase, fraction, etaSeconds, detail, compact }: { phase?: string; fraction?: number; etaSeconds?: number | null; detail?: string; compact?: boolean }): ReactElement {
  const pct = Math.max(0, Math.min(1, fraction ?? 0)) * 100;
  return (
    <div className={`progress${compact ? ' compact' : ''}`} data-testid="node-progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)}>
      <div className="progress-text">
        <span className="progress-phase" title={detail}>{phase ?? 'working'}</span>
        <span className="progress-num">{pct.toFixed(0)}%{etaSeconds ? ` · ${eta(etaSeconds)}` : ''}</span>
      </div>
      <div className="progress-track">
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}
