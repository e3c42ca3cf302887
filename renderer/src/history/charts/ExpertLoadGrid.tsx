/**
 * Expert load per layer as a heat grid: one row per layer, one cell per expert, shaded by the share of
 * routed token-slots it received (uniform = 1/E). Over-used and idle experts stand out at a glance.
 */
import type { ReactElement } from 'react';
import { EXPERT_COLORS } from '../../canvas/NodeResults';
import type { LayerRouting } from '../../util/metrics';

export function ExpertLoadGrid({ layers, title }: { layers: LayerRouting[]; title?: string }): ReactElement | null {
  if (!layers.length) return null;
  const E = Math.max(...layers.map((l) => l.load.length));
  const uniform = 1 / E;
  const max = Math.max(...layers.flatMap((l) => l.load), uniform);
  return (
    <div className="heat" data-testid="expert-load-grid">
      {title && <div className="heat-title">{title}</div>}
      <div className="heat-grid" style={{ gridTemplateColumns: `56px repeat(${E}, minmax(38px, 1fr))` }}>
        <div />
        {Array.from({ length: E }, (_, e) => (
          <div key={e} className="heat-col"><span className="heat-dot" style={{ background: EXPERT_COLORS[e % EXPERT_COLORS.length] }} />expert {e}</div>
        ))}
        {layers.map((l) => (
          <div className="heat-row" key={l.layer} style={{ display: 'contents' }}>
            <div className="heat-layer">layer {l.layer}</div>
            {Array.from({ length: E }, (_, e) => {
              const v = l.load[e] ?? 0;
              const pct = Math.round((v / max) * 85);
              return (
                <div key={e} className={`heat-cell${v > uniform * 1.6 ? ' hot' : v < uniform * 0.4 ? ' cold' : ''}`} style={{ background: `color-mix(in srgb, var(--accent) ${pct}%, var(--surface-2))` }} title={`layer ${l.layer}, expert ${e}: ${(v * 100).toFixed(1)}% of routed slots (uniform ${(uniform * 100).toFixed(0)}%)`}>
                  {(v * 100).toFixed(0)}%
                </div>
              );
            })}
          </div>
        ))}
      </div>
      <div className="heat-legend"><span>share of routed token-slots · uniform = {(uniform * 100).toFixed(0)}%</span></div>
    </div>
  );
}
