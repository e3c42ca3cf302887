/**
 * The dotted canvas background, only where the dots can be seen. Below ~45 % zoom xyflow still draws a
 * dot every 20 flow units (thousands of sub-pixel dots) and re-rasterises them on every pan frame; the
 * nodes give enough sense of motion there. Subscribes to a boolean, so zooming re-renders it only when
 * the threshold is crossed.
 */
import { Background, BackgroundVariant, useStore, type ReactFlowState } from '@xyflow/react';
import type { ReactElement } from 'react';

const MIN_ZOOM = 0.45;
const dotsVisible = (s: ReactFlowState): boolean => s.transform[2] >= MIN_ZOOM;

export function CanvasBackground(): ReactElement | null {
  return useStore(dotsVisible) ? <Background variant={BackgroundVariant.Dots} gap={20} size={1.2} /> : null;
}
